"""Signing up and signing in with a one-time email link."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlmodel import select

from tests.web.auth.conftest import Auth
from vault.accounts import create_account, email_lookup, find_account
from vault.citizens import create_citizen
from vault.errors import InvalidValue
from vault.models import Account, Citizen
from vault.records import current_data_points
from vault.signin import issue_link, redeem_link
from web.state import unit_of_work

DEAD = "This link has expired or has been used. Ask for a new one."


def _accounts(app: Any) -> list[Account]:
    with app.app_context(), unit_of_work() as (session, _vault):
        return list(session.exec(select(Account)).all())


def _visible_text(html: str) -> str:
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r'value="[^"]*"', "", html)  # CSRF tokens differ per page view
    html = re.sub(r'data-csrf="[^"]*"', "", html)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_sign_up_by_link_makes_a_citizen_keeps_the_email_and_signs_in(app: Any, auth: Auth) -> None:
    answer = auth.ask("New.Person@Example.org")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/sign-in/check-your-email")
    message = auth.outbox()[-1]
    assert message["To"] == "new.person@example.org"
    assert "finish making your Tell Once account" in message.get_content()
    assert _accounts(app) == []  # nothing is made until the link is used

    response = auth.use(auth.token_of(auth.last_link()))
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    accounts = _accounts(app)
    assert len(accounts) == 1 and accounts[0].citizen_id is not None
    with app.app_context(), unit_of_work() as (session, vault):
        assert session.get(Citizen, accounts[0].citizen_id) is not None
        points = current_data_points(session, vault, accounts[0].citizen_id, ["contact.email"])
    assert [p.value for p in points] == ["new.person@example.org"]
    home = auth.client.get("/")
    assert home.status_code == 200, "the new person is signed in"


def test_sign_in_by_link_for_an_existing_account(app: Any, auth: Auth) -> None:
    auth.sign_up_or_in("sam@example.org")
    auth.client.get("/sign-out")
    assert auth.client.get("/").status_code == 302

    auth.ask("SAM@example.org")
    assert "Use this link to sign in" in auth.outbox()[-1].get_content()
    response = auth.use(auth.token_of(auth.last_link()))
    assert response.status_code == 303
    assert auth.client.get("/").status_code == 200
    assert len(_accounts(app)) == 1, "signing in again makes no second account"


def test_a_link_works_only_once(auth: Auth) -> None:
    auth.ask("sam@example.org")
    token = auth.token_of(auth.last_link())
    assert auth.use(token).status_code == 303
    auth.client.get("/sign-out")
    again = auth.use(token)
    assert again.status_code == 400
    assert DEAD in again.get_data(as_text=True)
    assert 'href="/sign-in"' in again.get_data(as_text=True), "a way to get a new link"
    assert auth.client.get("/").status_code == 302


def test_opening_the_link_does_not_use_it_up(auth: Auth) -> None:
    # Mail scanners open links; only pressing the button signs in.
    auth.ask("sam@example.org")
    token = auth.token_of(auth.last_link())
    for _ in range(2):
        page = auth.client.get(f"/sign-in/link?token={token}")
        assert page.status_code == 200
        assert page.headers["Referrer-Policy"] == "strict-origin"  # the token stays here
    assert auth.use(token).status_code == 303


def test_a_link_dies_after_15_minutes(auth: Auth, clock: Any) -> None:
    auth.ask("sam@example.org")
    token = auth.token_of(auth.last_link())
    clock.advance(minutes=14, seconds=59)
    assert auth.client.get(f"/sign-in/link?token={token}").status_code == 200
    clock.advance(seconds=1)
    response = auth.use(token)
    assert response.status_code == 400
    assert DEAD in response.get_data(as_text=True)
    assert auth.cookie() is None


def test_forged_and_tampered_tokens_are_refused(auth: Auth) -> None:
    auth.ask("sam@example.org")
    token = auth.token_of(auth.last_link())
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (tampered, "not-a-token", ""):
        page = auth.client.get(f"/sign-in/link?token={bad}")
        assert page.status_code == 400 and DEAD in page.get_data(as_text=True)
        assert auth.use(bad).status_code == 400
    assert auth.use(token).status_code == 303, "the real link still works"


def test_a_link_is_bound_to_its_purpose(app: Any, vault: Any) -> None:
    with app.app_context(), unit_of_work() as (session, v):
        token = issue_link(session, v, "sam@example.org", "sign_in")
    with app.app_context(), unit_of_work() as (session, v):
        with pytest.raises(InvalidValue) as refused:
            redeem_link(session, v, token, "sign_up")
        assert refused.value.message == DEAD
    with app.app_context(), unit_of_work() as (session, v):
        assert redeem_link(session, v, token, "sign_in") == email_lookup(v, "sam@example.org")
    with app.app_context(), unit_of_work() as (session, v), pytest.raises(InvalidValue):
        redeem_link(session, v, token, "sign_in")


def test_an_invitation_link_finishes_an_account(app: Any, auth: Auth) -> None:
    # Assisted sign-up: an operator or worker started it, the person finishes it.
    with app.app_context(), unit_of_work() as (session, vault):
        token = issue_link(session, vault, "helped@example.org", "invite")
    assert auth.use(token).status_code == 303
    assert auth.client.get("/").status_code == 200
    assert [a.citizen_id is not None for a in _accounts(app)] == [True]


def test_an_invitation_for_an_account_made_already_signs_in(app: Any, auth: Auth) -> None:
    with app.app_context(), unit_of_work() as (session, vault):
        person = create_citizen(session, vault)
        made = create_account(session, vault, "helped@example.org", citizen_id=person.id)
        made_id = made.id
        token = issue_link(session, vault, "helped@example.org", "invite")
    assert auth.use(token).status_code == 303
    assert [a.id for a in _accounts(app)] == [made_id]


def test_known_and_unknown_emails_get_the_same_answer(app: Any, auth: Auth) -> None:
    auth.sign_up_or_in("known@example.org")
    auth.client.get("/sign-out")
    answers = []
    for email in ("known@example.org", "nobody@example.org"):
        response = auth.ask(email)
        page = auth.client.get(response.headers["Location"])
        text = _visible_text(page.get_data(as_text=True)).replace(email, "EMAIL")
        answers.append((response.status_code, response.headers["Location"], page.status_code, text))
    assert answers[0] == answers[1]
    assert "Check your email" in answers[0][3]
    assert len(auth.outbox()) == 3, "both got an email (a sign-in link, a sign-up link)"


def test_no_email_or_token_in_any_address_we_send_people_to(auth: Auth) -> None:
    email = "private.person@example.org"
    asked = auth.ask(email)
    token = auth.token_of(auth.last_link())
    used = auth.use(token)
    for response in (asked, used):
        location = response.headers["Location"]
        assert "private" not in location and "%40" not in location and "@" not in location
        assert token not in location


def test_empty_and_badly_shaped_emails_get_clear_errors(app: Any, auth: Auth) -> None:
    for typed, message in (
        ("", "Enter your email address"),
        ("not an email", "Enter an email address in the right format, like name@example.com"),
        ("sam@localhost", "Enter an email address in the right format, like name@example.com"),
    ):
        response = auth.ask(typed)
        html = response.get_data(as_text=True)
        assert response.status_code == 400
        assert message in html
        assert "govuk-error-summary" in html and "<title>Error:" in html
    assert auth.outbox() == []


def test_a_form_sent_without_its_csrf_token_is_refused(app: Any, client: Any) -> None:
    response = client.post("/sign-in", data={"email": "sam@example.org"})
    assert response.status_code == 400
    assert "This page timed out" in response.get_data(as_text=True)
    with app.app_context(), unit_of_work() as (session, vault):
        assert find_account(session, vault, "sam@example.org") is None
    assert client.post("/sign-in/link", data={"token": "x"}).status_code == 400


def test_redeeming_at_exactly_15_minutes_is_refused(app: Any, clock: Any) -> None:
    with app.app_context(), unit_of_work() as (session, vault):
        token = issue_link(session, vault, "sam@example.org", "sign_in")
    clock.advance(minutes=15)
    with app.app_context(), unit_of_work() as (session, vault), pytest.raises(InvalidValue):
        redeem_link(session, vault, token, "sign_in")
