"""A fetch planned without the writer lock is served only if nothing it read has changed.

Each test plans a fetch, changes one thing the plan relied on (as another request could in
between), and checks the plan is not served: the careful path then decides afresh and
records what really happened.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from consent.access import Refused, Served, fetch_for_department
from consent.grants import revoke_grant
from consent.models import AccessEvent, Grant
from consent.planned_fetch import FetchPlan, plan_fetch, serve_planned
from tests.consent.factories import CASE, DEPARTMENT, OTHER_DEPARTMENT, Person
from tests.consent.test_access import OFFICER, give
from tests.consent.test_access import told as told  # the fixture
from vault.lifecycle import erase_citizen
from vault.models import DataPoint
from vault.records import record_data_point, record_story_section
from vault.services import Vault


def plan(db: Any, vault: Vault, grant: Grant, **kw: Any) -> FetchPlan | None:
    with db.tx() as session:
        return plan_fetch(
            session,
            vault,
            grant.id,
            kw.get("department", DEPARTMENT),
            acting_officer=OFFICER,
            case_reference=kw.get("case", CASE),
        )


def serve(db: Any, vault: Vault, planned: FetchPlan) -> Served | None:
    with db.tx() as session:
        return serve_planned(session, vault, planned, acting_officer=OFFICER, case_reference=CASE)


def careful(db: Any, vault: Vault, grant: Grant) -> Served | Refused:
    with db.tx() as session:
        return fetch_for_department(
            session, vault, grant.id, DEPARTMENT, acting_officer=OFFICER, case_reference=CASE
        )


def accesses(db: Any, grant: Grant) -> list[str]:
    with db.tx() as session:
        found = session.execute(
            select(col(AccessEvent.result)).where(col(AccessEvent.grant_id) == grant.id)
        )
        return list(found.scalars())


def test_an_unchanged_plan_is_served_counted_and_recorded(db, vault, told):
    grant = give(db, vault, told, data_points=["contact.phone", "housing.status"])
    planned = plan(db, vault, grant)
    assert planned is not None
    served = serve(db, vault, planned)
    assert isinstance(served, Served)
    assert [p.key for p in served.data_points] == ["contact.phone", "housing.status"]
    assert served.grant.fetch_count == 1
    assert accesses(db, grant) == ["served"]
    # The same plan cannot be served twice: the count it read has moved on.
    assert serve(db, vault, planned) is None
    assert accesses(db, grant) == ["served"]


@pytest.mark.parametrize(
    "why", ["wrong department", "wrong case", "revoked", "ended", "used up", "erased"]
)
def test_what_would_be_refused_is_never_planned(db, vault, clock, told, why):
    grant = give(db, vault, told, max_fetches=1)
    kw: dict[str, str] = {}
    if why == "wrong department":
        kw["department"] = OTHER_DEPARTMENT
    elif why == "wrong case":
        kw["case"] = "SOMETHING-ELSE"
    elif why == "revoked":
        with db.tx() as session:
            revoke_grant(session, vault, told.me, grant.id)
    elif why == "ended":
        clock.advance(days=400)
    elif why == "used up":
        assert isinstance(careful(db, vault, grant), Served)
    else:
        with db.tx() as session:
            erase_citizen(session, vault, told.citizen_id)
    assert plan(db, vault, grant, **kw) is None


def _stop(db: Any, vault: Vault, told: Person, grant: Grant) -> None:
    with db.tx() as session:
        revoke_grant(session, vault, told.me, grant.id)


def _new_version(db: Any, vault: Vault, told: Person, grant: Grant) -> None:
    with db.tx() as session:
        record_data_point(
            session, vault, told.citizen_id, "contact.phone", "+447700900999", recorded_by="self"
        )


def _contested(db: Any, vault: Vault, told: Person, grant: Grant) -> None:
    with db.tx() as session:
        session.execute(
            update(DataPoint)
            .where(
                col(DataPoint.citizen_id) == told.citizen_id, col(DataPoint.key) == "contact.phone"
            )
            .values(status="contested")
        )


def _story_made_private(db: Any, vault: Vault, told: Person, grant: Grant) -> None:
    with db.tx() as session:
        record_story_section(
            session,
            vault,
            told.citizen_id,
            "housing",
            "Only when I am asked.",
            recorded_by="self",
            sensitivity="ask_me_each_time",
        )


def _fetched_meanwhile(db: Any, vault: Vault, told: Person, grant: Grant) -> None:
    assert isinstance(careful(db, vault, grant), Served)


def _erased(db: Any, vault: Vault, told: Person, grant: Grant) -> None:
    with db.tx() as session:
        erase_citizen(session, vault, told.citizen_id)


CHANGES = {
    "the person stopped sharing": _stop,
    "a newer version was recorded": _new_version,
    "a fact was challenged": _contested,
    "a story part was made private": _story_made_private,
    "another fetch used the grant": _fetched_meanwhile,
    "the person deleted their account": _erased,
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_plan_is_not_served_once_something_it_read_has_changed(db, vault, told, change):
    grant = give(db, vault, told, data_points=["contact.phone"], story_topics=["housing"])
    planned = plan(db, vault, grant)
    assert planned is not None and planned.story and planned.data_points
    CHANGES[change](db, vault, told, grant)
    before = accesses(db, grant)
    assert serve(db, vault, planned) is None
    assert accesses(db, grant) == before  # nothing counted, nothing recorded


def test_the_time_limit_is_checked_again_when_serving(db, vault, clock, told):
    grant = give(db, vault, told, duration_days=1)
    planned = plan(db, vault, grant)
    assert planned is not None
    clock.advance(days=1, seconds=1)
    assert serve(db, vault, planned) is None
    refused = careful(db, vault, grant)
    assert isinstance(refused, Refused) and refused.reason == "This permission has ended."


def test_an_ask_me_each_time_part_still_goes_only_on_the_first_use(db, vault, told):
    grant = give(db, vault, told, story_topics=["housing", "health"], explicit_topics=["health"])
    first, second = plan(db, vault, grant), plan(db, vault, grant)
    assert first is not None and second is not None
    assert "health" in [s.topic for s in second.story]  # both were planned as first uses
    assert isinstance(serve(db, vault, first), Served)
    assert serve(db, vault, second) is None  # the second is refused its plan...
    again = careful(db, vault, grant)  # ...and decided afresh: health is withheld now
    assert isinstance(again, Served)
    assert [s.topic for s in again.story] == ["housing"]
    assert again.withheld == ["story:health"]


def test_a_story_added_after_planning_is_not_a_reason_to_refuse(db, vault, told):
    grant = give(db, vault, told, story_topics=["housing", "family"])
    planned = plan(db, vault, grant)
    assert planned is not None
    with db.tx() as session:
        record_story_section(
            session, vault, told.citizen_id, "family", "My sister helps.", recorded_by="self"
        )
    served = serve(db, vault, planned)
    assert isinstance(served, Served)  # served what was planned; the next fetch gets more
    assert [s.topic for s in served.story] == ["housing"]


def test_the_grant_clause_agrees_with_grant_status(db, vault, clock, told):
    """``active_grant_clause`` in SQL and ``grant_status`` in Python, at every edge."""
    from consent.grants import active_grant_clause, grant_status

    grant = give(db, vault, told, duration_days=1)
    start, end = grant.starts_at, grant.ends_at
    moments = [start - timedelta(seconds=1), start, end - timedelta(seconds=1), end]
    moments.append(end + timedelta(seconds=1))
    for stopped in (False, True):
        if stopped:
            _stop(db, vault, told, grant)
        for moment in moments:
            with db.tx() as session:
                stored = session.get(Grant, grant.id)
                assert stored is not None
                in_sql = session.execute(
                    select(col(Grant.id)).where(
                        col(Grant.id) == grant.id, *active_grant_clause(moment)
                    )
                ).first()
                assert (in_sql is not None) == (grant_status(stored, moment) == "active"), (
                    stopped,
                    moment,
                )


def test_parallel_fetches_of_one_grant_are_each_served_and_counted_once(db, vault, told):
    """Many caseworkers of one department at once: none refused, the count exact."""
    import threading

    grant = give(db, vault, told, max_fetches=50)
    results: list[object] = []
    start = threading.Barrier(8)

    def caseworker() -> None:
        start.wait(10)
        for _ in range(3):
            results.append(careful(db, vault, grant))

    threads = [threading.Thread(target=caseworker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 24
    refused = [r.reason for r in results if isinstance(r, Refused)]
    assert refused == []
    assert sorted(r.grant.fetch_count for r in results if isinstance(r, Served)) == list(
        range(1, 25)
    )
    assert accesses(db, grant).count("served") == 24
