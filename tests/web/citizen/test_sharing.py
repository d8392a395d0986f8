"""Sharing: see each permission, stop one after confirming; who has seen it, paged and filtered."""

from __future__ import annotations

import re
from typing import Any

from consent.access import Refused, fetch_for_department
from consent.grants import get_grant
from tests.web.citizen.conftest import Person, csrf_of, grant_for, sign_in
from vault.clock import FrozenClock
from vault.services import Vault

CARD = '<h2 class="govuk-summary-card__title">'


def test_sharing_page_says_who_what_why_until_and_how_often(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    grant_for(db, vault, person)
    html = signed_in.get("/sharing").get_data(as_text=True)
    assert "housing-dept" in html
    assert "Your address" in html and "Your name" in html
    assert "To find you a place to stay tonight." in html
    assert "HOU-2291" in html
    assert "31 January 2026" in html  # 30 days from 1 January
    assert "Up to 100 times" in html
    assert "Sharing" in html and "Stop sharing" in html


def test_stop_sharing_asks_first_then_stops(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    grant_id = grant_for(db, vault, person)
    confirm = signed_in.get(f"/sharing/{grant_id}/stop")
    html = confirm.get_data(as_text=True)
    assert "Stop sharing with housing-dept?" in html
    with db.tx() as session:
        assert get_grant(session, grant_id).revoked_at is None  # asking changes nothing

    done = signed_in.post(f"/sharing/{grant_id}/stop", data={"csrf_token": csrf_of(html)})
    assert done.status_code == 302 and done.headers["Location"] == "/sharing"
    page = signed_in.get("/sharing").get_data(as_text=True)
    assert "You stopped sharing with housing-dept." in page
    assert "Stopped" in page and f"/sharing/{grant_id}/stop" not in page
    with db.tx() as session:
        assert get_grant(session, grant_id).revoked_by == f"citizen:{person.account_id}"
        refused = fetch_for_department(
            session,
            vault,
            grant_id,
            "housing-dept",
            acting_officer="A. Officer",
            case_reference="HOU-2291",
        )
    assert isinstance(refused, Refused)


def test_someone_elses_grant_is_not_found(
    signed_in: Any, db: Any, vault: Vault, person: Person, client: Any
) -> None:
    assert signed_in.get("/sharing/not-a-grant/stop").status_code == 404


def _uses(
    db: Any, vault: Vault, clock: FrozenClock, grant_id: str, department: str, n: int
) -> None:
    with db.tx() as session:
        for i in range(n):
            clock.advance(minutes=1)
            fetch_for_department(
                session,
                vault,
                grant_id,
                department,
                acting_officer=f"Officer {i}",
                case_reference="HOU-2291",
            )


def test_access_list_pages_newest_first_and_filters(
    signed_in: Any, db: Any, vault: Vault, person: Person, clock: FrozenClock
) -> None:
    housing = grant_for(db, vault, person)
    benefits = grant_for(db, vault, person, department="benefits-dept", case_reference="BEN-1")
    _uses(db, vault, clock, housing, "housing-dept", 25)
    with db.tx() as session:
        clock.advance(minutes=1)
        fetch_for_department(
            session,
            vault,
            benefits,
            "benefits-dept",
            acting_officer="B. Officer",
            case_reference="WRONG-REF",
        )

    first = signed_in.get("/who-has-seen-it").get_data(as_text=True)
    assert first.count(CARD) == 20
    assert first.index("benefits-dept") < first.index("Officer 24")  # newest first
    assert "Refused: The case reference does not match this permission." in first
    assert "Your address (version 1)" in first and "Your name (version 1)" in first
    assert "To find you a place to stay tonight." in first
    assert "Newer" not in first
    older = re.search(r'href="([^"]*before_at[^"]*)"', first)
    assert older
    second = signed_in.get(older.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert second.count(CARD) == 6
    assert "Officer 0" in second and "Officer 24" not in second
    assert "Older" not in second
    newer = re.search(r'href="([^"]*after_at[^"]*)"', second)
    assert newer
    back = signed_in.get(newer.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert back.count(CARD) == 20 and "Officer 24" in back
    assert "Officer 5" not in back.replace("Officer 5 ", "")

    only = signed_in.get("/who-has-seen-it?department=benefits-dept").get_data(as_text=True)
    assert only.count(CARD) == 1 and "B. Officer" in only
    assert '<option value="benefits-dept" selected>' in only


def test_access_list_with_no_uses_says_so(signed_in: Any) -> None:
    assert "Nobody has seen your information yet." in signed_in.get("/who-has-seen-it").get_data(
        as_text=True
    )


def test_bad_paging_cursor_is_a_plain_error(signed_in: Any) -> None:
    assert signed_in.get("/who-has-seen-it?before_at=nope&before_id=x").status_code == 400


def test_ended_grant_shows_as_ended(
    signed_in: Any, db: Any, vault: Vault, person: Person, clock: FrozenClock
) -> None:
    grant_id = grant_for(db, vault, person)
    clock.advance(days=31)
    sign_in(signed_in, db, vault, person.account_id)  # the old session timed out meanwhile
    html = signed_in.get("/sharing").get_data(as_text=True)
    assert "Ended" in html and f"/sharing/{grant_id}/stop" not in html
    assert signed_in.get(f"/sharing/{grant_id}/stop").status_code == 302
