"""``POST /api/v1/grants/{id}/deletion``: once a permission has ended, the department confirms
it deleted what it received; before that, or twice, is a conflict; another's is not found.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from consent.grants import revoke_grant
from consent.models import Grant
from tests.oauth.harness import DepartmentSide, whole_flow
from tests.oauth.test_api_decisions import call, department_token, ledger_verifies, refused
from tests.web.citizen.conftest import Person
from vault.clock import FrozenClock
from vault.services import Vault


@pytest.fixture(autouse=True)
def ledger_still_verifies(db: Any, vault: Vault) -> Iterator[None]:
    yield
    ledger_verifies(db, vault)


@pytest.fixture
def grant_id(department: DepartmentSide, sam: Any) -> str:
    """Sam's permission to Anytown housing, used once."""
    tokens = whole_flow(sam, department)
    fetched = department.fetch(tokens["access_token"])
    assert fetched.status_code == 200, fetched.get_json()
    return str(fetched.get_json()["grant_id"])


def sam_stops(db: Any, vault: Vault, person: Person, grant_id: str) -> None:
    with db.tx() as session:
        revoke_grant(session, vault, person.actor, grant_id)


def confirm(side: DepartmentSide, grant_id: str, **kw: Any) -> Any:
    path = f"/api/v1/grants/{grant_id}/deletion"
    return call(side, "POST", path, department_token(side), **kw)


def grant_row(db: Any, grant_id: str) -> Grant:
    with db.tx() as session:
        found = session.get(Grant, grant_id)
        assert found is not None
        return found


def test_the_department_confirms_deletion_after_the_person_stopped_sharing(
    db: Any,
    vault: Vault,
    person: Person,
    openapi: dict[str, Any],
    department: DepartmentSide,
    grant_id: str,
) -> None:
    sam_stops(db, vault, person, grant_id)
    confirmed = confirm(department, grant_id, officer="Data Protection Lead")
    assert confirmed.status_code == 200, confirmed.get_json()
    body = confirmed.get_json()
    assert set(body) == set(openapi["components"]["schemas"]["DeletionOut"]["properties"])
    assert body["grant_id"] == grant_id
    row = grant_row(db, grant_id)
    assert row.deletion_confirmed_at is not None
    assert body["deletion_confirmed_at"] == row.deletion_confirmed_at.isoformat()
    assert row.deletion_confirmed_by == f"department:{department.client_id}/Data Protection Lead"


def test_the_department_confirms_deletion_after_the_permission_ran_out(
    db: Any, clock: FrozenClock, department: DepartmentSide, grant_id: str
) -> None:
    clock.advance(days=31)  # the permission was for 30 days
    confirmed = confirm(department, grant_id)
    assert confirmed.status_code == 200, confirmed.get_json()
    assert grant_row(db, grant_id).deletion_confirmed_at is not None


def test_a_permission_that_has_not_ended_is_a_conflict(
    db: Any, department: DepartmentSide, grant_id: str
) -> None:
    body = refused(confirm(department, grant_id), 409, "conflict")
    assert body["message"] == "This permission has not ended yet."
    assert grant_row(db, grant_id).deletion_confirmed_at is None


def test_confirming_twice_is_a_conflict(
    db: Any, vault: Vault, person: Person, department: DepartmentSide, grant_id: str
) -> None:
    sam_stops(db, vault, person, grant_id)
    assert confirm(department, grant_id, officer="First Officer").status_code == 200
    refused(confirm(department, grant_id, officer="Second Officer"), 409, "conflict")
    assert str(grant_row(db, grant_id).deletion_confirmed_by).endswith("/First Officer")


def test_another_departments_permission_looks_like_a_missing_one(
    db: Any,
    vault: Vault,
    person: Person,
    other_department: DepartmentSide,
    grant_id: str,
) -> None:
    sam_stops(db, vault, person, grant_id)
    theirs = refused(confirm(other_department, grant_id), 404, "not_found")
    assert refused(confirm(other_department, "no-such-grant"), 404) == theirs
    assert grant_row(db, grant_id).deletion_confirmed_at is None


def test_a_confirmation_without_the_acting_officer_is_refused(
    db: Any, vault: Vault, person: Person, department: DepartmentSide, grant_id: str
) -> None:
    sam_stops(db, vault, person, grant_id)
    assert refused(confirm(department, grant_id, officer=None), 422)["message"].startswith(
        "Acting-Officer"
    )
    assert grant_row(db, grant_id).deletion_confirmed_at is None


def test_a_confirmation_without_a_token_is_refused(
    vault: Vault, db: Any, person: Person, department: DepartmentSide, grant_id: str
) -> None:
    sam_stops(db, vault, person, grant_id)
    answer = department.client.post(
        f"/api/v1/grants/{grant_id}/deletion", headers={"Acting-Officer": "A. Officer"}
    )
    refused(answer, 401, "invalid_token")
    assert grant_row(db, grant_id).deletion_confirmed_at is None


@pytest.fixture
def openapi(client: Any) -> dict[str, Any]:
    return dict(client.get("/api/v1/openapi.json").get_json())
