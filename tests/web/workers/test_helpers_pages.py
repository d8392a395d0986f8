"""The citizen's "People helping me" pages: list, invite, check answers, remove, change."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from consent.actors import active_delegation
from consent.invitations import accept_invitation
from consent.models import Delegation, Invitation
from tests.web.workers.conftest import Browser, Person
from vault.services import Vault
from web.mail import read_outbox

CODE = re.compile(r'data-testid="invite-code">([A-Z0-9-]{14})<')


def invitations(db: Any) -> int:
    with db.tx() as session:
        return int(session.execute(select(func.count()).select_from(Invitation)).scalar_one())


def choose(browser: Browser, *scopes: str) -> Any:
    return browser.post("/helpers/invite", {"scopes": list(scopes)})


def until(browser: Browser, day: str, month: str, year: str) -> Any:
    return browser.post("/helpers/invite/until", {"ends_on": [day, month, year]})


def test_the_list_shows_each_helper_in_plain_words(
    sam: Person, jo: str, delegate: Callable[..., str], signed_in: Callable[..., Browser]
) -> None:
    delegate(sam, jo, "view", "answer_requests", days=30)
    page = signed_in(sam.account_id).get("/helpers")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert "jo@example.org" in text
    assert "See your information" in text
    assert "Say yes or no to requests for you" in text
    assert "Help write your story" not in text
    assert "31 January 2026" in text
    assert 'href="/helpers"' in signed_in(sam.account_id).text("/")


def test_nobody_helping_says_so(sam: Person, signed_in: Callable[..., Browser]) -> None:
    assert "Nobody is helping you" in signed_in(sam.account_id).text("/helpers")


def test_the_invite_journey_shows_a_code_once_after_checking_answers(
    db: Any, vault: Vault, sam: Person, jo: str, signed_in: Callable[..., Browser]
) -> None:
    browser = signed_in(sam.account_id)
    assert choose(browser, "view", "challenge").headers["Location"] == "/helpers/invite/until"
    assert until(browser, "1", "6", "2026").headers["Location"] == "/helpers/invite/check"
    check = browser.text("/helpers/invite/check")
    assert "See your information" in check
    assert "Say something is wrong for you" in check
    assert "1 June 2026" in check
    # Nothing is saved until they confirm.
    assert invitations(db) == 0
    shown = browser.post("/helpers/invite/check").get_data(as_text=True)
    found = CODE.search(shown)
    assert found, shown
    assert "We will not show this code again" in shown
    assert invitations(db) == 1
    # The journey is over: going back does not make a second code.
    assert browser.get("/helpers/invite/check").headers["Location"] == "/helpers/invite"
    with db.tx() as session:
        delegation = accept_invitation(session, vault, found.group(1), jo)
        assert delegation.scopes == ["view", "challenge"]
        assert delegation.ends_at.date().isoformat() == "2026-06-01"


def test_choosing_nothing_is_an_error(sam: Person, signed_in: Callable[..., Browser]) -> None:
    page = choose(signed_in(sam.account_id))
    assert page.status_code == 200
    assert "Choose at least one thing they can do" in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("day", "month", "year", "message"),
    [
        ("", "", "", "Enter the date their help should end"),
        ("3", "", "2026", "The date must include a month"),
        ("31", "2", "2026", "The date must be a real date"),
        ("1", "1", "2026", "The date must be in the future"),
        ("2", "1", "2027", "The date must be within one year from today"),
    ],
)
def test_the_date_is_checked(
    sam: Person, signed_in: Callable[..., Browser], day: str, month: str, year: str, message: str
) -> None:
    browser = signed_in(sam.account_id)
    choose(browser, "view")
    page = until(browser, day, month, year).get_data(as_text=True)
    assert message in page
    assert "There is a problem" in page


def test_the_code_can_be_sent_by_email(
    app: Any, sam: Person, signed_in: Callable[..., Browser]
) -> None:
    browser = signed_in(sam.account_id)
    choose(browser, "view")
    until(browser, "1", "3", "2026")
    code = CODE.search(browser.post("/helpers/invite/check").get_data(as_text=True))
    assert code
    sent = browser.post(
        "/helpers/invite/send",
        {"code": code.group(1), "email": "Jo@Example.org"},
        form="/helpers/invite",
    )
    assert sent.headers["Location"] == "/helpers"
    (message,) = read_outbox(app.config["MAIL_DIR"])
    assert message["To"] == "jo@example.org"
    body = message.get_content()
    assert f"/help/accept?code={code.group(1)}" in body
    assert "Sam" not in body


def test_sending_a_made_up_code_sends_nothing(
    app: Any, sam: Person, signed_in: Callable[..., Browser]
) -> None:
    page = signed_in(sam.account_id).post(
        "/helpers/invite/send",
        {"code": "ABCD-EFGH-JKMN", "email": "x@example.org"},
        form="/helpers/invite",
    )
    assert page.status_code == 404
    assert read_outbox(app.config["MAIL_DIR"]) == []


def test_removing_a_helper_asks_first_then_ends_their_help(
    db: Any,
    vault: Vault,
    sam: Person,
    jo: str,
    delegate: Callable[..., str],
    signed_in: Callable[..., Browser],
) -> None:
    delegation = delegate(sam, jo, "view")
    browser = signed_in(sam.account_id)
    confirm = browser.text(f"/helpers/{delegation}/remove")
    assert "Remove this helper?" in confirm
    assert "jo@example.org" in confirm
    with db.tx() as session:
        assert active_delegation(session, sam.citizen_id, jo, vault.clock()) is not None
    done = browser.post(f"/helpers/{delegation}/remove", follow_redirects=True)
    assert "Your helper has been removed" in done.get_data(as_text=True)
    assert "jo@example.org" not in done.get_data(as_text=True)
    with db.tx() as session:
        assert active_delegation(session, sam.citizen_id, jo, vault.clock()) is None
        assert session.get(Delegation, delegation).revoked_by == f"citizen:{sam.account_id}"
    assert browser.get(f"/helpers/{delegation}/remove").status_code == 404


def test_changing_what_a_helper_can_do_explains_and_checks_first(
    db: Any,
    vault: Vault,
    sam: Person,
    jo: str,
    delegate: Callable[..., str],
    signed_in: Callable[..., Browser],
) -> None:
    delegation = delegate(sam, jo, "view", "answer_requests")
    browser = signed_in(sam.account_id)
    page = browser.text(f"/helpers/{delegation}/change")
    assert "any yes they gave for you will stop" in page
    assert re.search(r'value="answer_requests"\s+checked', page)
    moved = browser.post(f"/helpers/{delegation}/change", {"scopes": ["view"]})
    assert moved.headers["Location"] == f"/helpers/{delegation}/change/check"
    with db.tx() as session:
        assert active_delegation(session, sam.citizen_id, jo, vault.clock()).id == delegation
    browser.post(f"/helpers/{delegation}/change/check")
    with db.tx() as session:
        live = active_delegation(session, sam.citizen_id, jo, vault.clock())
        assert live is not None and live.id != delegation
        assert live.scopes == ["view"]


def test_an_unused_code_can_be_stopped(
    db: Any, vault: Vault, sam: Person, jo: str, signed_in: Callable[..., Browser]
) -> None:
    browser = signed_in(sam.account_id)
    choose(browser, "view")
    until(browser, "1", "3", "2026")
    browser.post("/helpers/invite/check")
    with db.tx() as session:
        invitation = session.execute(select(Invitation)).scalar_one().id
    assert "Codes nobody has used yet" in browser.text("/helpers")
    browser.post(f"/helpers/codes/{invitation}/cancel", form="/helpers")
    with db.tx() as session:
        assert session.get(Invitation, invitation).revoked_at is not None
    assert "Codes nobody has used yet" not in browser.text("/helpers")


PAGES = [
    ("get", "/helpers"),
    ("get", "/helpers/invite"),
    ("post", "/helpers/invite"),
    ("get", "/helpers/invite/until"),
    ("get", "/helpers/invite/check"),
    ("post", "/helpers/invite/check"),
    ("post", "/helpers/invite/send"),
    ("get", "/helpers/{d}/remove"),
    ("post", "/helpers/{d}/remove"),
    ("get", "/helpers/{d}/change"),
    ("post", "/helpers/{d}/change/check"),
    ("post", "/helpers/codes/x/cancel"),
]


def test_a_helper_acting_for_someone_is_refused_on_every_page(
    db: Any,
    vault: Vault,
    sam: Person,
    jo: str,
    delegate: Callable[..., str],
    signed_in: Callable[..., Browser],
) -> None:
    delegation = delegate(sam, jo, "view", "answer_requests", "manage_story", "challenge")
    browser = signed_in(jo, acting_for=sam.citizen_id)
    for method, path in PAGES:
        url = path.format(d=delegation)
        # POSTs carry a real CSRF token, so it is our rule that refuses them, not CSRF.
        response = browser.get(url) if method == "get" else browser.post(url, form="/help/accept")
        assert response.status_code == 403, (method, path)
        assert "Only the person you help can choose who helps them" in response.get_data(
            as_text=True
        )
    with db.tx() as session:
        assert session.get(Delegation, delegation).revoked_at is None
    assert invitations(db) == 0
    assert "People helping me" not in browser.text("/people")
