"""Refresh (bound, not rotated, dies with the grant), revocation (RFC 7009) and introspection
(RFC 7662), as a department's software sees them; and the person's "stop sharing" ending it all.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from consent.grants import revoke_grant
from consent.models import AccessEvent
from tests.connectors.dpop_client import new_key
from tests.oauth.harness import DepartmentSide, whole_flow
from tests.web.citizen.conftest import Person, csrf_of
from vault.clock import FrozenClock
from vault.services import Vault


def invalid_grant(response: Any) -> None:
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"] == "invalid_grant"


def works(side: DepartmentSide, access_token: str) -> bool:
    response = side.fetch(access_token)
    assert response.status_code in (200, 401, 403), response.get_data(as_text=True)
    return bool(response.status_code == 200)


def stop_sharing(browser: Any, grant_id: str) -> None:
    """The person presses "Stop sharing" on their sharing page, and confirms."""
    confirm = browser.get(f"/sharing/{grant_id}/stop").get_data(as_text=True)
    done = browser.post(f"/sharing/{grant_id}/stop", data={"csrf_token": csrf_of(confirm)})
    assert done.status_code == 302, done.get_data(as_text=True)


# --- Refresh ------------------------------------------------------------------------------------


def test_a_refresh_with_the_same_dpop_key_gives_a_working_access_token(
    department: DepartmentSide, sam: Any
) -> None:
    tokens = whole_flow(sam, department)
    refreshed = department.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.get_json()
    body = refreshed.get_json()
    assert body["token_type"] == "DPoP"
    assert body["access_token"] != tokens["access_token"]
    assert body["grant_id"] == tokens["grant_id"]
    assert body["authorization_details"] == tokens["authorization_details"]
    assert works(department, body["access_token"])


def test_a_refresh_token_is_not_rotated(department: DepartmentSide, sam: Any) -> None:
    tokens = whole_flow(sam, department)
    first = department.refresh(tokens["refresh_token"]).get_json()
    assert "refresh_token" not in first
    second = department.refresh(tokens["refresh_token"])
    assert second.status_code == 200
    assert works(department, second.get_json()["access_token"])


def test_a_refresh_with_another_dpop_key_is_refused(department: DepartmentSide, sam: Any) -> None:
    tokens = whole_flow(sam, department)
    invalid_grant(department.refresh(tokens["refresh_token"], key=new_key("ES256")))
    # The refusal does not spoil the token for its rightful holder.
    assert department.refresh(tokens["refresh_token"]).status_code == 200


def test_a_refresh_token_outlives_its_access_token(
    department: DepartmentSide, sam: Any, clock: FrozenClock
) -> None:
    tokens = whole_flow(sam, department)
    clock.advance(seconds=301)
    assert not works(department, tokens["access_token"])
    refreshed = department.refresh(tokens["refresh_token"])
    assert refreshed.status_code == 200
    assert works(department, refreshed.get_json()["access_token"])


def test_another_department_cannot_use_a_refresh_token(
    department: DepartmentSide, other_department: DepartmentSide, sam: Any
) -> None:
    tokens = whole_flow(sam, department)
    other_department.dpop_key = department.dpop_key  # even with the stolen DPoP key
    invalid_grant(other_department.refresh(tokens["refresh_token"]))


def test_a_refresh_token_dies_when_the_grant_ends(
    department: DepartmentSide, sam: Any, clock: FrozenClock
) -> None:
    tokens = whole_flow(sam, department)
    clock.advance(days=30, seconds=1)
    invalid_grant(department.refresh(tokens["refresh_token"]))


def test_an_access_token_is_not_a_refresh_token(department: DepartmentSide, sam: Any) -> None:
    tokens = whole_flow(sam, department)
    invalid_grant(department.refresh(tokens["access_token"]))


# --- The person stops sharing -------------------------------------------------------------------


def test_after_the_person_stops_sharing_refresh_and_fetch_fail_and_the_refusal_is_recorded(
    department: DepartmentSide, sam: Any, db: Any, person: Person
) -> None:
    tokens = whole_flow(sam, department)
    assert works(department, tokens["access_token"])

    stop_sharing(sam, tokens["grant_id"])

    invalid_grant(department.refresh(tokens["refresh_token"]))
    refused = department.fetch(tokens["access_token"])
    assert refused.status_code == 403
    body = refused.get_json()
    assert body["error"] == "grant_not_usable"
    assert body["message"] == "The person stopped this permission."
    with db.tx() as session:
        events = session.exec(
            select(AccessEvent).where(AccessEvent.grant_id == tokens["grant_id"])
        ).all()
    assert sorted(e.result for e in events) == ["refused", "served"]
    (refusal,) = [e for e in events if e.result == "refused"]
    assert refusal.reason == "The person stopped this permission."
    assert refusal.data_points == [] and refusal.story == []
    assert refusal.department_id == department.client_id


def test_a_grant_stopped_by_the_consent_layer_kills_its_tokens_at_once(
    department: DepartmentSide, sam: Any, db: Any, vault: Vault, person: Person
) -> None:
    tokens = whole_flow(sam, department)
    with db.tx() as session:
        revoke_grant(session, vault, person.actor, tokens["grant_id"])
    assert department.fetch(tokens["access_token"]).status_code == 403
    invalid_grant(department.refresh(tokens["refresh_token"]))
    assert department.introspect(tokens["access_token"]).get_json() == {"active": False}


# --- Revocation (RFC 7009) ----------------------------------------------------------------------


def test_revoking_the_access_token_stops_it_at_the_api(
    department: DepartmentSide, sam: Any
) -> None:
    tokens = whole_flow(sam, department)
    response = department.revoke(tokens["access_token"], "access_token")
    assert response.status_code == 200
    refused = department.fetch(tokens["access_token"])
    assert refused.status_code == 401
    assert refused.get_json()["error"] == "invalid_token"


def test_revoking_the_refresh_token_ends_the_whole_authorization(
    department: DepartmentSide, sam: Any
) -> None:
    tokens = whole_flow(sam, department)
    refreshed = department.refresh(tokens["refresh_token"]).get_json()["access_token"]
    assert department.revoke(tokens["refresh_token"], "refresh_token").status_code == 200
    invalid_grant(department.refresh(tokens["refresh_token"]))
    assert not works(department, tokens["access_token"])
    assert not works(department, refreshed)


def test_revoking_without_a_hint_finds_the_token(department: DepartmentSide, sam: Any) -> None:
    tokens = whole_flow(sam, department)
    assert department.revoke(tokens["refresh_token"]).status_code == 200
    invalid_grant(department.refresh(tokens["refresh_token"]))


def test_revoking_another_departments_token_says_ok_but_revokes_nothing(
    department: DepartmentSide, other_department: DepartmentSide, sam: Any
) -> None:
    tokens = whole_flow(sam, department)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert other_department.revoke(token).status_code == 200
    assert works(department, tokens["access_token"])
    assert department.refresh(tokens["refresh_token"]).status_code == 200


def test_revoking_an_unknown_token_says_ok(department: DepartmentSide) -> None:
    assert department.revoke("never-issued").status_code == 200


def test_revoking_needs_client_authentication(department: DepartmentSide, sam: Any) -> None:
    tokens = whole_flow(sam, department)
    response = department.client.post("/oauth/revoke", data={"token": tokens["access_token"]})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert works(department, tokens["access_token"])


# --- Introspection (RFC 7662) -------------------------------------------------------------------


def test_introspecting_an_active_token_says_who_what_and_which_key(
    department: DepartmentSide, sam: Any, app: Any
) -> None:
    tokens = whole_flow(sam, department)
    body = department.introspect(tokens["access_token"]).get_json()
    assert body["active"] is True
    assert body["client_id"] == department.client_id
    assert body["token_type"] == "DPoP"
    assert body["iss"] == app.config["BASE_URL"]
    assert body["cnf"] == {"jkt": department.dpop_key.thumbprint()}
    assert body["authorization_details"] == tokens["authorization_details"]
    assert body["grant_id"] == tokens["grant_id"]
    assert body["exp"] - body["iat"] == 300
    fetched = department.fetch(tokens["access_token"]).get_json()
    assert body["sub"] == fetched["subject"]  # the same pairwise id the API uses


def test_introspecting_a_refresh_token_says_it_is_active(
    department: DepartmentSide, sam: Any
) -> None:
    tokens = whole_flow(sam, department)
    body = department.introspect(tokens["refresh_token"]).get_json()
    assert body["active"] is True
    assert body["cnf"] == {"jkt": department.dpop_key.thumbprint()}


def test_introspecting_a_revoked_token_says_only_inactive(
    department: DepartmentSide, sam: Any
) -> None:
    tokens = whole_flow(sam, department)
    department.revoke(tokens["access_token"])
    assert department.introspect(tokens["access_token"]).get_json() == {"active": False}


def test_introspecting_an_expired_token_says_only_inactive(
    department: DepartmentSide, sam: Any, clock: FrozenClock
) -> None:
    tokens = whole_flow(sam, department)
    clock.advance(seconds=301)
    assert department.introspect(tokens["access_token"]).get_json() == {"active": False}


def test_introspecting_another_departments_token_says_only_inactive(
    department: DepartmentSide, other_department: DepartmentSide, sam: Any
) -> None:
    tokens = whole_flow(sam, department)
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert other_department.introspect(token).get_json() == {"active": False}


def test_introspecting_an_unknown_token_says_only_inactive(department: DepartmentSide) -> None:
    assert department.introspect("never-issued").get_json() == {"active": False}


def test_introspecting_needs_client_authentication(department: DepartmentSide, sam: Any) -> None:
    tokens = whole_flow(sam, department)
    response = department.client.post("/oauth/introspect", data={"token": tokens["access_token"]})
    assert response.status_code == 401
    assert "active" not in response.get_json()
