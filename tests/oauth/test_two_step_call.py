"""The data API checks a call while only reading, then confirms it under the writer lock.

Whatever can change between the two steps is checked again in the second: the proof's one
use, the token and the department.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.departments import disable_department
from connectors.errors import InvalidDPoPProof, InvalidToken
from connectors.resource import check_call, confirm_call
from connectors.tokens import find_token, revoke_authorization
from tests.oauth.harness import DepartmentSide, whole_flow
from vault.services import Vault


def _checked(db: Any, vault: Vault, department: DepartmentSide, token: str) -> Any:
    proof = department.proof("GET", "/api/v1/data", access_token=token)
    with db.tx() as session:
        return check_call(
            session,
            authorization=f"DPoP {token}",
            dpop_values=[proof],
            method="GET",
            url=department.url("/api/v1/data"),
            now=vault.clock(),
            check_grant=False,
        )


@pytest.fixture
def token(sam: Any, department: DepartmentSide) -> str:
    return str(whole_flow(sam, department)["access_token"])


def test_a_checked_call_is_confirmed_once(db, vault, department, token):
    caller, proof = _checked(db, vault, department, token)
    with db.tx() as session:
        confirm_call(session, caller, proof, vault.clock())
    with pytest.raises(InvalidDPoPProof) as replay, db.tx() as session:
        confirm_call(session, caller, proof, vault.clock())
    assert replay.value.status == 401
    assert replay.value.message == "This DPoP proof has been used before."


def test_a_token_revoked_in_between_is_refused(db, vault, department, token):
    caller, proof = _checked(db, vault, department, token)
    with db.tx() as session:
        found = find_token(session, token, kinds=("access_token",))
        assert found is not None
        revoke_authorization(session, found[0], datetime.now(UTC))
    with pytest.raises(InvalidToken), db.tx() as session:
        confirm_call(session, caller, proof, vault.clock())


def test_a_department_switched_off_in_between_is_refused(db, vault, department, token):
    caller, proof = _checked(db, vault, department, token)
    with db.tx() as session:
        disable_department(session, vault, department.client_id)
    with pytest.raises(InvalidToken), db.tx() as session:
        confirm_call(session, caller, proof, vault.clock())


def test_checking_uses_nothing_up(db, vault, department, token):
    """Only reading: a check that is never confirmed leaves the proof unused."""
    proof = department.proof("GET", "/api/v1/data", access_token=token)
    for _ in range(2):
        with db.tx() as session:
            check_call(
                session,
                authorization=f"DPoP {token}",
                dpop_values=[proof],
                method="GET",
                url=department.url("/api/v1/data"),
                now=vault.clock(),
            )
    assert department.fetch(token, proof=proof).status_code == 200
    assert department.fetch(token, proof=proof).status_code == 401
