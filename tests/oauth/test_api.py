"""``GET /api/v1/data``: only a DPoP-bound token with its fresh proof gets in, and only what the
grant covers comes out — every look, served or refused for the grant's reasons, is recorded.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from connectors.departments import disable_department
from consent.models import AccessEvent
from tests.connectors.dpop_client import new_key
from tests.oauth.harness import HOUSING_DETAILS, DepartmentSide, open_consent, whole_flow
from tests.web.citizen.conftest import CANARY, Person
from vault.clock import FrozenClock
from vault.records import record_data_point
from vault.services import Vault

HEALTH_CONDITION = "Asthma. I get anxious in crowds."
HEALTH_STORY = "Anxiety."  # the sam fixture's "ask me each time" story part


def api_error(response: Any, status: int, error: str | None = None) -> dict[str, Any]:
    """Check a refusal: status, JSON ``{"error", "message"}``, nothing technical."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert "Traceback" not in text
    body = response.get_json()
    assert {"error", "message"} <= set(body), body
    assert body["message"]
    if error is not None:
        assert body["error"] == error, body
    assert response.headers["Cache-Control"] == "no-store"
    return dict(body)


def events(db: Any, grant_id: str) -> list[AccessEvent]:
    with db.tx() as session:
        found = session.exec(
            select(AccessEvent).where(AccessEvent.grant_id == grant_id).order_by(AccessEvent.at)
        ).all()
    return list(found)


@pytest.fixture
def tokens(department: DepartmentSide, sam: Any) -> dict[str, Any]:
    """Sam said yes to the housing request (keeping every optional item)."""
    return whole_flow(sam, department)


# --- The token and its proof --------------------------------------------------------------------


def test_a_bearer_token_is_refused(department: DepartmentSide, tokens: dict[str, Any]) -> None:
    response = department.fetch(tokens["access_token"], scheme="Bearer", proof=None)
    api_error(response, 401)
    # Even with a proof, the token must be presented as DPoP.
    api_error(department.fetch(tokens["access_token"], scheme="Bearer"), 401)


def test_a_dpop_token_without_its_proof_is_refused(
    department: DepartmentSide, tokens: dict[str, Any]
) -> None:
    api_error(department.fetch(tokens["access_token"], proof=None), 401)


def test_no_token_at_all_is_refused(department: DepartmentSide, tokens: dict[str, Any]) -> None:
    response = department.client.get(
        "/api/v1/data", headers={"Case-Reference": "HOU-2291", "Acting-Officer": "A. Officer"}
    )
    api_error(response, 401, "invalid_token")


def test_a_proof_made_with_another_key_is_refused(
    department: DepartmentSide, tokens: dict[str, Any]
) -> None:
    token = tokens["access_token"]
    proof = department.proof("GET", "/api/v1/data", key=new_key("ES256"), access_token=token)
    api_error(department.fetch(token, proof=proof), 401)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/data"), ("GET", "/oauth/token"), ("GET", "/api/v1/data/other")],
    ids=["wrong htm", "wrong htu", "another api path"],
)
def test_a_proof_for_another_request_is_refused(
    department: DepartmentSide, tokens: dict[str, Any], method: str, path: str
) -> None:
    token = tokens["access_token"]
    proof = department.proof(method, path, access_token=token)
    api_error(department.fetch(token, proof=proof), 401, "invalid_dpop_proof")


def test_a_replayed_proof_is_refused(department: DepartmentSide, tokens: dict[str, Any]) -> None:
    token = tokens["access_token"]
    proof = department.proof("GET", "/api/v1/data", access_token=token)
    assert department.fetch(token, proof=proof).status_code == 200
    api_error(department.fetch(token, proof=proof), 401, "invalid_dpop_proof")


def test_a_proof_for_another_access_token_is_refused(
    department: DepartmentSide, tokens: dict[str, Any]
) -> None:
    proof = department.proof("GET", "/api/v1/data", access_token="some-other-token")
    api_error(department.fetch(tokens["access_token"], proof=proof), 401, "invalid_dpop_proof")


def test_a_proof_without_ath_is_refused(department: DepartmentSide, tokens: dict[str, Any]) -> None:
    proof = department.proof("GET", "/api/v1/data")
    api_error(department.fetch(tokens["access_token"], proof=proof), 401, "invalid_dpop_proof")


def test_an_unknown_token_is_refused(department: DepartmentSide, tokens: dict[str, Any]) -> None:
    api_error(department.fetch("never-issued-token"), 401, "invalid_token")


def test_an_access_token_dies_after_5_minutes(
    department: DepartmentSide, tokens: dict[str, Any], clock: FrozenClock
) -> None:
    clock.advance(seconds=299)
    assert department.fetch(tokens["access_token"]).status_code == 200
    clock.advance(seconds=2)
    api_error(department.fetch(tokens["access_token"]), 401, "invalid_token")


def test_another_department_cannot_use_a_departments_token(
    department: DepartmentSide, other_department: DepartmentSide, tokens: dict[str, Any]
) -> None:
    # Department B presents A's token with a proof made with B's own key.
    api_error(other_department.fetch(tokens["access_token"]), 401)
    # B's attempt does not spoil the token for A.
    assert department.fetch(tokens["access_token"]).status_code == 200


def test_a_disabled_departments_tokens_stop_working(
    department: DepartmentSide, tokens: dict[str, Any], db: Any, vault: Vault
) -> None:
    with db.tx() as session:
        disable_department(session, vault, department.client_id)
    api_error(department.fetch(tokens["access_token"]), 401, "invalid_token")


def test_a_refused_token_leaves_no_access_event(
    department: DepartmentSide, tokens: dict[str, Any], db: Any
) -> None:
    department.fetch(tokens["access_token"], proof=None)
    assert events(db, tokens["grant_id"]) == []


# --- Who is looking, for which case -------------------------------------------------------------


@pytest.mark.parametrize("header", ["Case-Reference", "Acting-Officer"])
def test_a_missing_header_is_named(
    department: DepartmentSide, tokens: dict[str, Any], header: str
) -> None:
    token = tokens["access_token"]
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": department.proof("GET", "/api/v1/data", access_token=token),
        "Case-Reference": "HOU-2291",
        "Acting-Officer": "A. Officer",
    }
    del headers[header]
    body = api_error(department.client.get("/api/v1/data", headers=headers), 422)
    assert header in body["message"]


def test_a_wrong_case_reference_is_refused_and_recorded(
    department: DepartmentSide, tokens: dict[str, Any], db: Any
) -> None:
    body = api_error(
        department.fetch(tokens["access_token"], case_reference="HOU-9999"),
        403,
        "grant_not_usable",
    )
    assert "case reference" in body["message"]
    (event,) = events(db, tokens["grant_id"])
    assert event.result == "refused"
    assert event.case_reference == "HOU-9999"
    assert event.acting_officer == "A. Officer"
    assert event.data_points == []


def test_a_served_fetch_is_recorded_with_officer_and_versions(
    department: DepartmentSide, tokens: dict[str, Any], db: Any
) -> None:
    body = department.fetch(tokens["access_token"], officer="Jo Bloggs").get_json()
    (event,) = events(db, tokens["grant_id"])
    assert event.result == "served"
    assert event.acting_officer == "Jo Bloggs"
    assert body["receipt"]["access_id"] == event.id
    assert {p["key"] for p in event.data_points} == {p["key"] for p in body["data_points"]}


# --- Only what the grant covers -----------------------------------------------------------------


def test_unticked_and_unasked_facts_are_never_served(
    department: DepartmentSide, sam: Any, db: Any, vault: Vault, person: Person
) -> None:
    with db.tx() as session:
        record_data_point(
            session,
            vault,
            person.citizen_id,
            "health.conditions",
            HEALTH_CONDITION,
            recorded_by="citizen:x",
        )
    tokens = whole_flow(sam, department, keep=[])  # money.income_monthly unticked
    response = department.fetch(tokens["access_token"])
    assert response.status_code == 200
    body = response.get_json()
    assert {p["key"] for p in body["data_points"]} == {"identity.name", "contact.address"}
    text = response.get_data(as_text=True)
    assert "income" not in text and "125050" not in text
    assert "health.conditions" not in text and "Asthma" not in text
    assert CANARY in text  # the name was granted, so it is there


def test_a_served_fact_carries_version_source_and_contested(
    department: DepartmentSide, tokens: dict[str, Any]
) -> None:
    body = department.fetch(tokens["access_token"]).get_json()
    (name,) = [p for p in body["data_points"] if p["key"] == "identity.name"]
    assert name["value"] == CANARY
    assert name["version"] == 1 and name["source"] == "self" and name["contested"] is False


ASK_HEALTH = {**HOUSING_DETAILS, "story_topics": ["housing", "health"]}


def test_the_consent_page_marks_an_ask_me_each_time_part(
    department: DepartmentSide, sam: Any
) -> None:
    pushed = department.par(ASK_HEALTH).get_json()
    page = open_consent(sam, department, pushed["request_uri"]).get_data(as_text=True)
    assert "we ask you first" in page
    assert 'name="explicit" type="checkbox" value="health"' in page
    assert 'value="health" checked' not in page  # never ticked for them


def test_an_ask_me_each_time_story_part_is_withheld_without_a_second_yes(
    department: DepartmentSide, sam: Any
) -> None:
    tokens = whole_flow(sam, department, ASK_HEALTH)
    body = department.fetch(tokens["access_token"]).get_json()
    assert [s["topic"] for s in body["story"]] == ["housing"]
    assert body["withheld"] == ["story:health"]
    assert HEALTH_STORY not in str(body)


def test_an_ask_me_each_time_story_part_is_served_once_with_a_second_yes(
    department: DepartmentSide, sam: Any
) -> None:
    tokens = whole_flow(sam, department, ASK_HEALTH, explicit=["health"])
    first = department.fetch(tokens["access_token"]).get_json()
    assert {s["topic"]: s["text"] for s in first["story"]} == {
        "housing": "I sleep on a sofa.",
        "health": HEALTH_STORY,
    }
    assert first["withheld"] == []
    # The yes was for this request: a later look under the standing grant does not get it.
    again = department.fetch(tokens["access_token"]).get_json()
    assert [s["topic"] for s in again["story"]] == ["housing"]
    assert again["withheld"] == ["story:health"]


# --- The grant's limits -------------------------------------------------------------------------


def test_a_grant_past_its_end_is_refused_and_recorded(
    department: DepartmentSide, sam: Any, db: Any, clock: FrozenClock
) -> None:
    tokens = whole_flow(sam, department, {**HOUSING_DETAILS, "duration_days": 1})
    # An access token refreshed a minute before the end still lives when the grant ends.
    clock.advance(days=1, minutes=-1)
    fresh = department.refresh(tokens["refresh_token"]).get_json()["access_token"]
    clock.advance(minutes=2)
    body = api_error(department.fetch(fresh), 403, "grant_not_usable")
    assert body["message"] == "This permission has ended."
    (event,) = events(db, tokens["grant_id"])
    assert event.result == "refused" and event.reason == "This permission has ended."


def test_the_fetch_limit_is_kept(department: DepartmentSide, sam: Any, db: Any) -> None:
    tokens = whole_flow(sam, department, {**HOUSING_DETAILS, "max_fetches": 2})
    assert department.fetch(tokens["access_token"]).get_json()["fetches_left"] == 1
    assert department.fetch(tokens["access_token"]).get_json()["fetches_left"] == 0
    body = api_error(department.fetch(tokens["access_token"]), 403, "grant_not_usable")
    assert "as many times as agreed" in body["message"]
    assert [e.result for e in events(db, tokens["grant_id"])] == ["served", "served", "refused"]


# --- Never a stack trace ------------------------------------------------------------------------

ODD_HEADERS = {
    "empty authorization": {"Authorization": ""},
    "scheme only": {"Authorization": "DPoP"},
    "unknown scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    "huge token": {"Authorization": "DPoP " + "A" * 5000},
    "non-ascii token": {"Authorization": "DPoP tökén"},
    "garbage proof": {"Authorization": "DPoP abc", "DPoP": "not.a.jwt"},
    "proof of dots": {"Authorization": "DPoP abc", "DPoP": ".."},
    "huge case reference": {"Authorization": "DPoP abc", "Case-Reference": "X" * 5000},
    "blank officer": {"Authorization": "DPoP abc", "Acting-Officer": "   "},
}


@pytest.mark.parametrize("headers", ODD_HEADERS.values(), ids=ODD_HEADERS.keys())
def test_odd_requests_get_a_plain_json_error_never_a_stack_trace(
    department: DepartmentSide, headers: dict[str, str]
) -> None:
    sent = {"Case-Reference": "HOU-2291", "Acting-Officer": "A. Officer", **headers}
    response = department.client.get("/api/v1/data", headers=sent)
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    api_error(response, response.status_code)
