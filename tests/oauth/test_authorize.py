"""``GET /oauth/authorize`` and the consent page's own rules, as a person's browser meets them.

A person only ever reaches a consent page from a request the department pushed first, opened
once, in the browser that opened it, and answered once within 15 minutes.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import select

from consent.models import Grant
from tests.oauth.harness import (
    REDIRECT_URI,
    DepartmentSide,
    answer,
    open_consent,
    redirect_params,
)
from tests.web.auth.conftest import Auth
from tests.web.citizen.conftest import Person, csrf_of, sign_in
from vault.clock import FrozenClock
from vault.services import Vault

NO_PAR = "The service did not send its request to us first"
ENDED = "It has ended or was already used."


def authorize(browser: Any, side: DepartmentSide, request_uri: str, **query: str) -> Any:
    return browser.get(
        "/oauth/authorize",
        query_string={"client_id": side.client_id, "request_uri": request_uri, **query},
    )


def problem_page(response: Any, words: str) -> None:
    """A plain 400 page for the person: no redirect anywhere, nothing technical."""
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "Location" not in response.headers
    assert response.mimetype == "text/html"
    page = html.unescape(response.get_data(as_text=True))
    assert words in page
    assert "Nothing was shared." in page
    assert "Traceback" not in page


def pushed_uri(side: DepartmentSide) -> str:
    pushed = side.par()
    assert pushed.status_code == 201, pushed.get_json()
    return str(pushed.get_json()["request_uri"])


def grants_of(db: Any, person: Person) -> int:
    return int(db.scalar('SELECT count(*) FROM "grant" WHERE citizen_id = :c', c=person.citizen_id))


# --- Only pushed requests ---------------------------------------------------------------------


def test_a_plain_authorization_request_without_par_is_refused_with_a_page(
    department: DepartmentSide, sam: Any
) -> None:
    response = sam.get(
        "/oauth/authorize",
        query_string={
            "response_type": "code",
            "client_id": department.client_id,
            "redirect_uri": REDIRECT_URI,
            "code_challenge": "x" * 43,
            "code_challenge_method": "S256",
            "state": "s",
        },
    )
    problem_page(response, NO_PAR)


def test_an_authorization_request_with_only_a_request_uri_is_refused(
    department: DepartmentSide, sam: Any
) -> None:
    uri = pushed_uri(department)
    problem_page(sam.get("/oauth/authorize", query_string={"request_uri": uri}), NO_PAR)


def test_a_made_up_request_uri_is_refused(department: DepartmentSide, sam: Any) -> None:
    made_up = "urn:ietf:params:oauth:request_uri:" + "A" * 43
    problem_page(authorize(sam, department, made_up), ENDED)


def test_a_request_uri_opens_once(department: DepartmentSide, sam: Any) -> None:
    uri = pushed_uri(department)
    assert authorize(sam, department, uri).status_code == 303
    problem_page(authorize(sam, department, uri), ENDED)


def test_a_request_uri_dies_after_60_seconds(
    department: DepartmentSide, sam: Any, clock: FrozenClock
) -> None:
    uri = pushed_uri(department)
    clock.advance(seconds=61)
    problem_page(authorize(sam, department, uri), ENDED)


def test_a_request_uri_still_opens_at_59_seconds(
    department: DepartmentSide, sam: Any, clock: FrozenClock
) -> None:
    uri = pushed_uri(department)
    clock.advance(seconds=59)
    assert authorize(sam, department, uri).status_code == 303


def test_another_departments_client_id_cannot_open_a_request_uri(
    department: DepartmentSide, other_department: DepartmentSide, sam: Any
) -> None:
    uri = pushed_uri(department)
    problem_page(authorize(sam, other_department, uri), ENDED)
    # The attempt does not use it up: the department it belongs to can still send the person.
    assert authorize(sam, department, uri).status_code == 303


# --- Signing in on the way --------------------------------------------------------------------


def test_a_person_not_signed_in_is_sent_to_sign_in_and_the_page_is_remembered(
    department: DepartmentSide, app: Any, person: Person
) -> None:
    browser = app.test_client()
    opened = authorize(browser, department, pushed_uri(department))
    consent_path = opened.headers["Location"]
    assert consent_path.startswith("/oauth/consent/")

    page = browser.get(consent_path)
    assert page.status_code == 302
    assert urlsplit(page.headers["Location"]).path == "/sign-in"
    with browser.session_transaction() as flask_session:
        assert flask_session["after_sign_in"] == consent_path


def test_after_signing_in_by_email_the_person_lands_on_the_consent_page(
    department: DepartmentSide, app: Any, person: Person
) -> None:
    browser = app.test_client()
    consent_path = authorize(browser, department, pushed_uri(department)).headers["Location"]
    browser.get(consent_path)

    signed_in = Auth(app, browser).sign_up_or_in("sam@example.org")
    assert signed_in.status_code == 303
    assert signed_in.headers["Location"] == consent_path
    page = browser.get(consent_path)
    assert page.status_code == 200
    assert "Anytown Council housing is asking for your information" in page.get_data(as_text=True)
    params = redirect_params(answer(browser, page, "share"))
    assert params["code"] and params["state"] == department.state


# --- One browser, one answer, within 15 minutes ----------------------------------------------


def test_a_consent_page_cannot_be_opened_in_another_browser(
    department: DepartmentSide, sam: Any, app: Any, db: Any, vault: Vault, person: Person
) -> None:
    consent_path = authorize(sam, department, pushed_uri(department)).headers["Location"]
    other_browser = app.test_client()
    sign_in(other_browser, db, vault, person.account_id)
    problem_page(other_browser.get(consent_path), ENDED)


def test_a_consent_page_cannot_be_answered_from_another_browser(
    department: DepartmentSide, sam: Any, app: Any, db: Any, vault: Vault, person: Person
) -> None:
    page = open_consent(sam, department, pushed_uri(department))
    consent_path = urlsplit(page.request.url).path
    other_browser = app.test_client()
    sign_in(other_browser, db, vault, person.account_id)
    # A valid form token of the other browser's own, so only the browser check can refuse it.
    token = csrf_of(other_browser.get("/story/family/write").get_data(as_text=True))
    refused = other_browser.post(consent_path, data={"csrf_token": token, "share": "yes"})
    problem_page(refused, ENDED)
    assert grants_of(db, person) == 0
    # The browser that opened it can still answer.
    assert redirect_params(answer(sam, page, "share"))["code"]


def test_a_consent_page_can_be_answered_only_once(
    department: DepartmentSide, sam: Any, db: Any, person: Person
) -> None:
    page = open_consent(sam, department, pushed_uri(department))
    first = answer(sam, page, "share")
    assert redirect_params(first)["code"]
    problem_page(answer(sam, page, "share"), ENDED)
    problem_page(answer(sam, page, "decline"), ENDED)
    assert grants_of(db, person) == 1


def test_a_no_cannot_be_turned_into_a_yes(
    department: DepartmentSide, sam: Any, db: Any, person: Person
) -> None:
    page = open_consent(sam, department, pushed_uri(department))
    assert redirect_params(answer(sam, page, "decline"))["error"] == "access_denied"
    problem_page(answer(sam, page, "share"), ENDED)
    assert grants_of(db, person) == 0


def test_a_consent_page_cannot_be_answered_after_15_minutes(
    department: DepartmentSide, sam: Any, db: Any, person: Person, clock: FrozenClock
) -> None:
    page = open_consent(sam, department, pushed_uri(department))
    clock.advance(minutes=15, seconds=1)
    problem_page(answer(sam, page, "share"), ENDED)
    problem_page(sam.get(urlsplit(page.request.url).path), ENDED)
    assert grants_of(db, person) == 0


def test_a_consent_page_can_still_be_answered_at_14_minutes(
    department: DepartmentSide, sam: Any, clock: FrozenClock
) -> None:
    page = open_consent(sam, department, pushed_uri(department))
    clock.advance(minutes=14)
    assert redirect_params(answer(sam, page, "share"))["code"]


def test_pressing_neither_button_answers_nothing(
    department: DepartmentSide, sam: Any, db: Any, person: Person
) -> None:
    page = open_consent(sam, department, pushed_uri(department))
    form = {"csrf_token": csrf_of(page.get_data(as_text=True))}
    again = sam.post(urlsplit(page.request.url).path, data=form)
    assert again.status_code == 200  # the page again, nothing decided
    assert grants_of(db, person) == 0


def test_a_tick_that_was_not_on_the_page_is_refused(
    department: DepartmentSide, sam: Any, db: Any, person: Person
) -> None:
    page = open_consent(sam, department, pushed_uri(department))
    smuggled = answer(sam, page, "share", keep=["health.conditions"])
    assert smuggled.status_code == 200  # the page again, with the error
    assert grants_of(db, person) == 0


def test_the_grant_records_only_what_was_pushed(
    department: DepartmentSide, sam: Any, db: Any, person: Person
) -> None:
    page = open_consent(sam, department, pushed_uri(department))
    assert redirect_params(answer(sam, page, "share", keep=[]))["code"]
    with db.tx() as session:
        grant = session.exec(select(Grant).where(Grant.citizen_id == person.citizen_id)).one()
        assert grant.data_points == ["identity.name", "contact.address"]
        assert grant.department_id == department.client_id
        assert grant.given_by == f"citizen:{person.account_id}"
