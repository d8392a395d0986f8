"""A support worker's pages: the people who invited them, acting for one, codes, sign-ups."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from consent import actors
from consent.grants import give_grant
from consent.invitations import BAD_CODE, create_invitation
from consent.models import Delegation, Grant
from tests.consent.factories import ask
from tests.web.workers.conftest import Browser, Person
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.clock import FrozenClock
from vault.models import LedgerEntry
from vault.records import current_data_points, record_data_point
from vault.services import Vault
from vault.signin_models import SignInLink, WebSession
from vault.verify import verify_ledger
from web.mail import read_outbox

ACTING = "You are acting for Sam Taylor"


@pytest.fixture
def alex(db: Any, vault: Vault) -> Person:
    """Another citizen, Alex Kim, who has not invited Jo."""
    with db.tx() as session:
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, "alex@example.org", citizen_id=citizen.id)
        by = f"citizen:{account.id}"
        record_data_point(session, vault, citizen.id, "identity.name", "Alex Kim", recorded_by=by)
        return Person(citizen.id, account.id)


def acting_for(db: Any, account_id: str) -> set[str | None]:
    with db.tx() as session:
        rows = session.execute(select(WebSession).where(WebSession.account_id == account_id))
        return {row.acting_for for row in rows.scalars()}


def test_a_worker_sees_only_the_people_who_invited_them(
    sam: Person,
    alex: Person,
    jo: str,
    db: Any,
    vault: Vault,
    delegate: Callable[..., str],
    signed_in: Callable[..., Browser],
) -> None:
    with db.tx() as session:
        other_worker = create_account(session, vault, "kit@example.org").id
    delegate(sam, jo, "view")
    delegate(alex, other_worker, "view")
    page = signed_in(jo).get("/people")
    text = page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert "Sam Taylor" in text
    assert "Alex Kim" not in text
    assert "Act for this person" in text
    assert "Start an account for someone" in text


def test_without_view_the_name_stays_hidden(
    sam: Person, jo: str, delegate: Callable[..., str], signed_in: Callable[..., Browser]
) -> None:
    delegate(sam, jo, "answer_requests")
    browser = signed_in(jo)
    people = browser.text("/people")
    assert "Someone who asked for your help" in people
    assert "Sam Taylor" not in people
    browser.post("/people/" + _only_delegation(browser, people) + "/act", form="/help/accept")
    assert "Sam Taylor" not in browser.text("/")


def _only_delegation(browser: Browser, page: str) -> str:
    start = page.index('action="/people/') + len('action="/people/')
    return page[start : page.index("/act", start)]


def test_acting_for_someone_shows_on_every_page(
    db: Any, sam: Person, jo: str, delegate: Callable[..., str], signed_in: Callable[..., Browser]
) -> None:
    delegation = delegate(sam, jo, "view", "answer_requests")
    browser = signed_in(jo)
    assert ACTING not in browser.text("/people")
    moved = browser.post(f"/people/{delegation}/act", form="/help/accept")
    assert moved.headers["Location"] == "/"
    assert acting_for(db, jo) == {sam.citizen_id}
    for path in ("/", "/people", "/help/accept", "/about-the-record"):
        assert ACTING in browser.text(path), path
    browser.post("/people/stop", form="/help/accept")
    assert acting_for(db, jo) == {None}
    assert ACTING not in browser.text("/people")


def test_acting_needs_a_live_delegation_of_ones_own(
    db: Any,
    vault: Vault,
    sam: Person,
    alex: Person,
    jo: str,
    delegate: Callable[..., str],
    signed_in: Callable[..., Browser],
) -> None:
    with db.tx() as session:
        kit = create_account(session, vault, "kit@example.org").id
    someone_elses = delegate(alex, kit, "view")
    browser = signed_in(jo)
    refused = browser.post(f"/people/{someone_elses}/act", form="/help/accept")
    assert refused.headers["Location"] == "/people"
    assert acting_for(db, jo) == {None}
    # With nobody to act for, the citizen pages send a worker back to their list.
    assert browser.get("/").headers["Location"] == "/people"


@pytest.mark.parametrize("ending", ["removed", "expired"])
def test_when_help_ends_the_worker_is_sent_back_and_stops_acting(
    db: Any,
    vault: Vault,
    clock: FrozenClock,
    sam: Person,
    jo: str,
    delegate: Callable[..., str],
    signed_in: Callable[..., Browser],
    ending: str,
) -> None:
    delegation = delegate(sam, jo, "view", days=0, minutes=10)
    browser = signed_in(jo, acting_for=sam.citizen_id)
    assert ACTING in browser.text("/")
    if ending == "removed":
        from consent.delegations import revoke_delegation

        with db.tx() as session:
            revoke_delegation(session, vault, sam.actor, delegation)
    else:
        clock.advance(minutes=11)  # (well inside the 30-minute sign-in idle timeout)
    assert browser.get("/").headers["Location"] == "/people"
    # Not even a page outside the vault names the person any more.
    assert "Sam Taylor" not in browser.text("/about-the-record")
    people = browser.text("/people")
    assert "You can no longer act for the person you were helping" in people
    assert "Sam Taylor" not in people
    assert acting_for(db, jo) == {None}
    assert browser.post(f"/people/{delegation}/act", form="/help/accept").headers["Location"] == (
        "/people"
    )


def test_accepting_a_code_makes_the_person_appear(
    db: Any, vault: Vault, sam: Person, jo: str, signed_in: Callable[..., Browser]
) -> None:
    with db.tx() as session:
        code = create_invitation(
            session, vault, sam.actor, ("view",), vault.clock() + timedelta(days=30)
        ).code
    browser = signed_in(jo)
    assert code in browser.text(f"/help/accept?code={code}")
    done = browser.post("/help/accept", {"code": code}, follow_redirects=True)
    assert "You can now help this person" in done.get_data(as_text=True)
    assert "Sam Taylor" in done.get_data(as_text=True)
    again = browser.post("/help/accept", {"code": code}).get_data(as_text=True)
    wrong = browser.post("/help/accept", {"code": "ABCD-EFGH-JKMN"}).get_data(as_text=True)
    message = BAD_CODE.replace("'", "&#39;")
    assert message in again
    assert message in wrong
    assert "Enter the code the person gave you" in browser.post("/help/accept", {"code": ""}).text


def test_a_worker_can_start_an_account_but_gets_no_access(
    app: Any, db: Any, signed_in: Callable[..., Browser], jo: str
) -> None:
    browser = signed_in(jo)
    assert "Enter their email address" in browser.post("/people/start-account", {}).text
    done = browser.post("/people/start-account", {"email": "new@example.org"})
    assert done.headers["Location"] == "/people"
    (message,) = read_outbox(app.config["MAIL_DIR"])
    assert message["To"] == "new@example.org"
    assert "/sign-in/link?token=" in message.get_content()
    with db.tx() as session:
        assert session.execute(select(SignInLink)).scalar_one().purpose == "invite"
        assert session.execute(select(func.count()).select_from(Delegation)).scalar_one() == 0


def test_a_worker_acting_for_someone_cannot_start_an_account(
    app: Any, sam: Person, jo: str, delegate: Callable[..., str], signed_in: Callable[..., Browser]
) -> None:
    delegate(sam, jo, "view")
    browser = signed_in(jo, acting_for=sam.citizen_id)
    assert browser.get("/people/start-account").headers["Location"] == "/people"
    assert read_outbox(app.config["MAIL_DIR"]) == []


def test_the_ledger_names_the_worker_and_the_person(
    db: Any, vault: Vault, sam: Person, jo: str, delegate: Callable[..., str]
) -> None:
    delegation = delegate(sam, jo, "view", "answer_requests")
    worker = actors.worker(jo, sam.citizen_id)
    with db.tx() as session:
        given = give_grant(session, vault, worker, ask())
        record_data_point(
            session,
            vault,
            sam.citizen_id,
            "housing.status",
            "rough_sleeping",
            recorded_by=worker.label,
            source=worker.label,
        )
    with db.tx() as session:
        grant = session.get(Grant, given.grant.id)
        assert grant.given_by == f"worker:{jo}"
        assert grant.delegation_id == delegation
        assert grant.citizen_id == sam.citizen_id
        leaf = session.execute(
            select(LedgerEntry).where(LedgerEntry.kind == "grant.given")
        ).scalar_one()
        assert b'"by":"worker"' in leaf.leaf
        (point,) = current_data_points(session, vault, sam.citizen_id, ["housing.status"])
        assert point.recorded_by == f"worker:{jo}"
        assert verify_ledger(session, vault).ok


def test_a_citizen_can_help_another_citizen(
    sam: Person,
    alex: Person,
    delegate: Callable[..., str],
    signed_in: Callable[..., Browser],
) -> None:
    browser = signed_in(alex.account_id)
    assert "People I help" not in browser.text("/")
    delegate(sam, alex.account_id, "view")
    home = browser.text("/")
    assert "People I help" in home
    assert "People helping me" in home
    assert "Sam Taylor" in browser.text("/people")
