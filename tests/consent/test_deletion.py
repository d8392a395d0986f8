"""When a grant ends: the department is told, confirms it deleted the data, or is overdue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from consent.delegations import give_delegation, revoke_delegation
from consent.grants import (
    confirm_deletion,
    deletion_overdue,
    expire_due_grants,
    get_grant,
    give_grant,
    revoke_grant,
    revoke_grant_with_receipt,
)
from consent.models import Grant
from consent.notices import GRANT_REVOKED, DepartmentNotice, take_notices
from tests.consent.factories import DEPARTMENT, OTHER_DEPARTMENT, Person, ask, entries, leaf_json
from vault.errors import InvalidValue, NotFound
from vault.services import Vault

CONFIRMED_BY = "Jo Reid, Data Protection Officer"
NOT_FOUND = "We could not find that permission."


def give(db: Any, vault: Vault, person: Person) -> Grant:
    with db.tx() as session:
        return give_grant(session, vault, person.me, ask()).grant


def stop(db: Any, vault: Vault, person: Person, grant: Grant) -> list[DepartmentNotice]:
    with db.tx() as session:
        revoke_grant(session, vault, person.me, grant.id)
        return take_notices(session)


def confirm(db: Any, vault: Vault, grant: Grant, **changes: Any) -> Grant:
    department = changes.pop("department", DEPARTMENT)
    with db.tx() as session:
        return confirm_deletion(
            session, vault, department, grant.id, confirmed_by=changes.get("by", CONFIRMED_BY)
        )


def test_stopping_a_grant_tells_its_department(db, vault, person):
    grant = give(db, vault, person)
    (told,) = stop(db, vault, person, grant)
    assert told == DepartmentNotice(
        DEPARTMENT, GRANT_REVOKED, person.citizen_id, {"grant_id": grant.id}
    )


def test_stopping_a_grant_with_a_receipt_tells_its_department_too(db, vault, person):
    grant = give(db, vault, person)
    with db.tx() as session:
        revoke_grant_with_receipt(session, vault, person.me, grant.id)
        told = take_notices(session)
    assert [(n.event, n.details) for n in told] == [(GRANT_REVOKED, {"grant_id": grant.id})]


def test_a_grant_stopped_twice_is_told_once(db, vault, person):
    grant = give(db, vault, person)
    stop(db, vault, person, grant)
    assert stop(db, vault, person, grant) == []


def test_grants_ended_with_a_helper_are_told_to_their_departments(
    db, vault, person, worker_account
):
    with db.tx() as session:
        delegation = give_delegation(
            session,
            vault,
            person.me,
            worker_account,
            ["answer_requests"],
            vault.clock() + timedelta(9),
        )
    with db.tx() as session:
        grant = give_grant(session, vault, person.helped_by(worker_account), ask()).grant
    with db.tx() as session:
        revoke_delegation(session, vault, person.me, delegation.id)
        told = take_notices(session)
    assert [(n.department_id, n.event, n.details) for n in told] == [
        (DEPARTMENT, GRANT_REVOKED, {"grant_id": grant.id})
    ]


def test_a_department_confirms_deletion_after_the_grant_was_stopped(db, vault, clock, person):
    grant = give(db, vault, person)
    stop(db, vault, person, grant)
    clock.advance(days=2)
    confirmed = confirm(db, vault, grant)
    assert (confirmed.deletion_confirmed_at, confirmed.deletion_confirmed_by) == (
        clock(),
        CONFIRMED_BY,
    )
    with db.tx() as session:
        (entry,) = entries(session, "grant.deletion_confirmed")
    assert entry.row_id == grant.id
    body = leaf_json(entry)
    assert (body["grant_id"], body["department_id"]) == (grant.id, DEPARTMENT)
    assert CONFIRMED_BY.encode() not in bytes(entry.leaf)


def test_a_department_confirms_deletion_once_the_grant_ran_out(db, vault, clock, person):
    grant = give(db, vault, person)  # 30 days
    clock.advance(days=30)
    assert confirm(db, vault, grant).deletion_confirmed_at == clock()


def test_a_department_confirms_deletion_after_the_grant_expired(db, vault, clock, person):
    grant = give(db, vault, person)
    clock.advance(days=31)
    with db.tx() as session:
        expire_due_grants(session, vault)
    assert confirm(db, vault, grant).deletion_confirmed_by == CONFIRMED_BY


def test_deletion_cannot_be_confirmed_while_the_grant_runs(db, vault, clock, person):
    grant = give(db, vault, person)
    clock.advance(days=29, hours=23)
    with pytest.raises(InvalidValue) as error:
        confirm(db, vault, grant)
    assert error.value.message == "This permission has not ended yet."
    with db.tx() as session:
        assert get_grant(session, grant.id).deletion_confirmed_at is None
        assert entries(session, "grant.deletion_confirmed") == []


def test_deletion_can_be_confirmed_only_once(db, vault, clock, person):
    grant = give(db, vault, person)
    stop(db, vault, person, grant)
    first = confirm(db, vault, grant)
    clock.advance(days=1)
    with pytest.raises(InvalidValue) as error:
        confirm(db, vault, grant, by="Someone else")
    assert error.value.message == "You already confirmed this."
    with db.tx() as session:
        again = get_grant(session, grant.id)
        assert len(entries(session, "grant.deletion_confirmed")) == 1
    assert (again.deletion_confirmed_at, again.deletion_confirmed_by) == (
        first.deletion_confirmed_at,
        CONFIRMED_BY,
    )


def test_another_department_cannot_confirm_or_learn_the_grant_exists(db, vault, person):
    grant = give(db, vault, person)
    stop(db, vault, person, grant)
    with pytest.raises(NotFound) as theirs:
        confirm(db, vault, grant, department=OTHER_DEPARTMENT)
    with pytest.raises(NotFound) as nobodys, db.tx() as session:
        confirm_deletion(
            session,
            vault,
            DEPARTMENT,
            "00000000-0000-4000-8000-000000000000",
            confirmed_by=CONFIRMED_BY,
        )
    assert theirs.value.message == nobodys.value.message == NOT_FOUND


@pytest.mark.parametrize("by", ["", "   ", "x" * 201], ids=["empty", "blank", "too-long"])
def test_the_confirmation_must_name_who_confirmed(db, vault, person, by):
    grant = give(db, vault, person)
    stop(db, vault, person, grant)
    with pytest.raises(InvalidValue, match="Name who confirmed the deletion"):
        confirm(db, vault, grant, by=by)


def test_deletion_is_overdue_only_after_the_data_life_without_a_confirmation(
    db, vault, clock, person
):
    grant = give(db, vault, person)  # data life 90 days
    assert not deletion_overdue(grant, clock())
    clock.advance(days=5)
    stop(db, vault, person, grant)
    with db.tx() as session:
        grant = get_grant(session, grant.id)
    clock.advance(days=90)
    assert not deletion_overdue(grant, clock())  # exactly at the end of the data life
    clock.advance(seconds=1)
    assert deletion_overdue(grant, clock())
    assert not deletion_overdue(confirm(db, vault, grant), clock())


def test_deletion_of_a_grant_that_ran_out_is_overdue_from_its_end(db, vault, clock, person):
    grant = give(db, vault, person)  # 30 days, data life 90
    clock.advance(days=120)
    assert not deletion_overdue(grant, clock())
    clock.advance(seconds=1)
    assert deletion_overdue(grant, clock())
