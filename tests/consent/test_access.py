"""Departments fetching data: exactly what the grant covers, and every fetch on the record."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from consent.access import (
    Refused,
    Served,
    access_events_for_citizen,
    fetch_for_department,
    served_versions,
)
from consent.grants import get_grant, give_grant, revoke_grant
from consent.models import AccessEvent, Grant
from tests.consent.factories import CASE, DEPARTMENT, OTHER_DEPARTMENT, Person, ask, entries
from tests.consent.factories import leaf_json as leaf_of
from vault.errors import InvalidValue, NotFound
from vault.lifecycle import erase_citizen
from vault.records import record_data_point, record_story_section
from vault.services import Vault

OFFICER = "Officer 7, Housing Options"
PHONE = "+447700900123"
NEW_PHONE = "+447700900456"
HOUSING_STORY = "I left my flat in March and have stayed with friends since."
HEALTH_STORY = "Something I only want to share when I am asked."


@pytest.fixture
def told(db: Any, vault: Vault, person: Person) -> Person:
    """A citizen who has told their story once: facts, a normal topic and a private one."""
    with db.tx() as session:
        for key, value in (
            ("contact.phone", PHONE),
            ("housing.status", "staying_with_friends"),
            ("money.income_monthly", 125_000),
        ):
            record_data_point(session, vault, person.citizen_id, key, value, recorded_by="self")
        record_story_section(
            session, vault, person.citizen_id, "housing", HOUSING_STORY, recorded_by="self"
        )
        record_story_section(
            session,
            vault,
            person.citizen_id,
            "health",
            HEALTH_STORY,
            recorded_by="self",
            sensitivity="ask_me_each_time",
        )
    return person


def give(db: Any, vault: Vault, person: Person, **changes: Any) -> Grant:
    with db.tx() as session:
        return give_grant(session, vault, person.me, ask(**changes)).grant


def fetch(
    db: Any, vault: Vault, grant: Grant, *, department: str = DEPARTMENT, case: str = CASE
) -> Served | Refused:
    with db.tx() as session:
        return fetch_for_department(
            session, vault, grant.id, department, acting_officer=OFFICER, case_reference=case
        )


def stored_event(db: Any, event_id: str) -> AccessEvent:
    with db.tx() as session:
        event = session.get(AccessEvent, event_id)
        assert event is not None
        return event


def test_a_fetch_serves_only_what_the_grant_covers_and_records_it(db, vault, clock, told):
    grant = give(db, vault, told, data_points=["housing.status", "contact.phone"])
    result = fetch(db, vault, grant)
    assert isinstance(result, Served)
    assert [(p.key, p.value, p.version) for p in result.data_points] == [
        ("contact.phone", PHONE, 1),
        ("housing.status", "staying_with_friends", 1),
    ]
    assert [(s.topic, s.text) for s in result.story] == [("housing", HOUSING_STORY)]
    assert result.withheld == []
    event = stored_event(db, result.event.id)
    assert event.result == "served" and event.reason is None
    assert event.data_points == [
        {"key": "contact.phone", "version": 1},
        {"key": "housing.status", "version": 1},
    ]
    assert event.story == [{"topic": "housing", "version": 1}]
    assert (event.acting_officer, event.case_reference) == (OFFICER, CASE)
    assert (event.grant_id, event.department_id, event.at) == (grant.id, DEPARTMENT, clock())
    with db.tx() as session:
        (entry,) = entries(session, "access.served")
        assert get_grant(session, grant.id).fetch_count == 1
    assert (entry.idx, entry.row_id) == (result.leaf.index, event.id)
    assert leaf_of(entry)["data_points"] == event.data_points
    assert leaf_of(entry)["story"] == event.story


def test_after_a_correction_the_next_fetch_serves_and_records_the_new_version(
    db, vault, clock, told
):
    grant = give(db, vault, told, data_points=["contact.phone"], story_topics=[])
    fetch(db, vault, grant)
    clock.advance(days=1)
    with db.tx() as session:
        record_data_point(
            session, vault, told.citizen_id, "contact.phone", NEW_PHONE, recorded_by="self"
        )
    result = fetch(db, vault, grant)
    assert isinstance(result, Served)
    assert [(p.value, p.version) for p in result.data_points] == [(NEW_PHONE, 2)]
    assert stored_event(db, result.event.id).data_points == [{"key": "contact.phone", "version": 2}]
    with db.tx() as session:
        assert served_versions(session, grant.id) == {("contact.phone", 1), ("contact.phone", 2)}


def test_served_versions_ignores_refusals_and_other_grants(db, vault, told):
    grant = give(db, vault, told, data_points=["contact.phone"])
    other = give(db, vault, told, data_points=["money.income_monthly"])
    fetch(db, vault, grant)
    fetch(db, vault, grant, case="WRONG-1")
    fetch(db, vault, other)
    with db.tx() as session:
        assert served_versions(session, grant.id) == {("contact.phone", 1)}
        assert served_versions(session, other.id) == {("money.income_monthly", 1)}


def _wrong_case(db: Any, vault: Vault, grant: Grant, person: Person) -> str:
    return "HOU-9999"


def _revoked(db: Any, vault: Vault, grant: Grant, person: Person) -> str:
    with db.tx() as session:
        revoke_grant(session, vault, person.me, grant.id)
    return CASE


def _expired(db: Any, vault: Vault, grant: Grant, person: Person) -> str:
    vault.clock.advance(days=30)  # type: ignore[attr-defined]
    return CASE


def _used_up(db: Any, vault: Vault, grant: Grant, person: Person) -> str:
    with db.tx() as session:
        for _ in range(grant.max_fetches):
            fetch_for_department(
                session, vault, grant.id, DEPARTMENT, acting_officer=OFFICER, case_reference=CASE
            )
    return CASE


def _erased(db: Any, vault: Vault, grant: Grant, person: Person) -> str:
    with db.tx() as session:
        erase_citizen(session, vault, person.citizen_id)
    return CASE


@pytest.mark.parametrize(
    ("arrange", "reason"),
    [
        (_wrong_case, "The case reference does not match this permission."),
        (_revoked, "The person stopped this permission."),
        (_expired, "This permission has ended."),
        (_used_up, "This permission has been used as many times as agreed."),
        (_erased, "The person has deleted their account."),
    ],
    ids=["wrong-case-reference", "revoked", "expired", "fetch-limit", "erased"],
)
def test_a_refused_fetch_returns_nothing_and_is_recorded(db, vault, told, arrange, reason):
    grant = give(db, vault, told, max_fetches=2)
    case = arrange(db, vault, grant, told)
    with db.tx() as session:
        count_before = get_grant(session, grant.id).fetch_count
    result = fetch(db, vault, grant, case=case)
    assert isinstance(result, Refused)
    assert result.reason == reason
    event = stored_event(db, result.event.id)  # the caller's commit kept the refusal
    assert (event.result, event.reason) == ("refused", reason)
    assert (event.data_points, event.story) == ([], [])
    assert event.case_reference == case
    with db.tx() as session:
        refusals = entries(session, "access.refused")
        assert get_grant(session, grant.id).fetch_count == count_before
    assert [e.row_id for e in refusals] == [event.id]
    assert refusals[0].idx == result.leaf.index


def test_another_departments_grant_is_not_found_and_reveals_nothing(db, vault, told):
    grant = give(db, vault, told)
    with pytest.raises(NotFound) as theirs:
        fetch(db, vault, grant, department=OTHER_DEPARTMENT)
    with pytest.raises(NotFound) as missing, db.tx() as session:
        fetch_for_department(
            session,
            vault,
            "00000000-0000-4000-8000-000000000000",
            OTHER_DEPARTMENT,
            acting_officer=OFFICER,
            case_reference=CASE,
        )
    assert theirs.value.message == missing.value.message
    assert db.scalar("SELECT COUNT(*) FROM access_event") == 0


@pytest.mark.parametrize(
    ("officer", "case"), [("", CASE), ("   ", CASE), ("x" * 201, CASE), (OFFICER, " ")]
)
def test_an_unnamed_officer_or_missing_case_is_refused_before_anything_happens(
    db, vault, told, officer, case
):
    grant = give(db, vault, told)
    with pytest.raises(InvalidValue), db.tx() as session:
        fetch_for_department(
            session, vault, grant.id, DEPARTMENT, acting_officer=officer, case_reference=case
        )
    assert db.scalar("SELECT COUNT(*) FROM access_event") == 0


def test_only_served_fetches_count_towards_the_limit(db, vault, told):
    grant = give(db, vault, told, max_fetches=2)
    counts = []
    for case in (CASE, "WRONG-1", "WRONG-2", CASE):
        assert isinstance(fetch(db, vault, grant, case=case), Served if case == CASE else Refused)
        with db.tx() as session:
            counts.append(get_grant(session, grant.id).fetch_count)
    assert counts == [1, 1, 1, 2]
    assert isinstance(fetch(db, vault, grant), Refused)


def test_ask_me_each_time_story_goes_once_with_an_explicit_yes_then_is_withheld(db, vault, told):
    grant = give(db, vault, told, story_topics=["housing", "health"], explicit_topics=["health"])
    first, second = fetch(db, vault, grant), fetch(db, vault, grant)
    assert isinstance(first, Served) and isinstance(second, Served)
    assert [s.topic for s in first.story] == ["housing", "health"]
    assert [s.topic for s in second.story] == ["housing"]
    assert second.withheld == ["story:health"]
    assert stored_event(db, second.event.id).story == [{"topic": "housing", "version": 1}]


def test_ask_me_each_time_story_is_withheld_without_an_explicit_yes(db, vault, told):
    grant = give(db, vault, told, story_topics=["health"])
    result = fetch(db, vault, grant)
    assert isinstance(result, Served)
    assert (result.story, result.withheld) == ([], ["story:health"])


def test_access_history_pages_newest_first_and_filters_by_department(
    db, vault, clock, told, make_person
):
    housing = give(db, vault, told)
    benefits = give(db, vault, told, department_id=OTHER_DEPARTMENT)
    give(db, vault, make_person())  # someone else's history must never appear
    for grant in (housing, benefits, housing, benefits, housing):
        fetch(db, vault, grant, department=grant.department_id)
        clock.advance(seconds=1)
    # Three at the very same instant: paging must still neither skip nor repeat one.
    for grant in (housing, benefits, housing):
        fetch(db, vault, grant, department=grant.department_id)
    with db.tx() as session:
        everything = access_events_for_citizen(session, told.citizen_id)
        pages: list[list[AccessEvent]] = []
        before = None
        for _ in range(10):  # bounded, so a paging bug fails the test instead of hanging it
            page = access_events_for_citizen(session, told.citizen_id, limit=3, before=before)
            if not page:
                break
            pages.append(page)
            before = (page[-1].at, page[-1].id)
        only_benefits = access_events_for_citizen(
            session, told.citizen_id, department_id=OTHER_DEPARTMENT
        )
    assert len(everything) == 8
    keys = [(e.at, e.id) for e in everything]
    assert keys == sorted(keys, reverse=True)
    assert everything[0].at == clock() and everything[-1].at == clock() - timedelta(seconds=5)
    assert [len(p) for p in pages] == [3, 3, 2]
    assert [e.id for p in pages for e in p] == [e.id for e in everything]
    assert [e.id for e in only_benefits] == [
        e.id for e in everything if e.department_id == OTHER_DEPARTMENT
    ]
    assert len(only_benefits) == 3
