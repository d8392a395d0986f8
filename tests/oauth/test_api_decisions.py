"""``POST /api/v1/decisions`` and ``/decisions/{id}/reviews``: a department records what it
decided with exactly the data point versions it was given, and a named person reviews it.

The helpers here (``call``, ``record``, ``decision_body``) are shared with the challenge and
deletion tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from consent.decision_models import Decision
from consent.decision_views import decision_history, decisions_for_citizen
from tests.oauth.harness import DepartmentSide, whole_flow
from tests.web.citizen.conftest import CANARY, Person
from vault.records import record_data_point
from vault.services import Vault
from vault.verify import verify_ledger

OFFICER = {"name": "Priya Shah", "role": "Head of Housing Options"}
REVIEWER = {"name": "A. Reviewer", "role": "Senior Housing Officer"}


def call(
    side: DepartmentSide,
    method: str,
    path: str,
    token: str,
    *,
    json: Any = None,
    officer: str | None = "A. Officer",
    query: dict[str, str] | None = None,
) -> Any:
    """One DPoP-authenticated API call as the department's software makes it."""
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": side.proof(method, path, access_token=token),
    }
    if officer is not None:
        headers["Acting-Officer"] = officer
    return side.client.open(path, method=method, json=json, headers=headers, query_string=query)


def refused(response: Any, status: int, error: str | None = None) -> dict[str, Any]:
    """Check an error answer: status, ``{"error", "message"}``, nothing technical or personal."""
    text = response.get_data(as_text=True)
    assert response.status_code == status, text
    assert "Traceback" not in text
    assert CANARY not in text
    body = response.get_json()
    assert set(body) == {"error", "message"}, body
    assert body["message"]
    if error is not None:
        assert body["error"] == error, body
    return dict(body)


def department_token(side: DepartmentSide) -> str:
    """A department-wide (client credentials, scope ``challenges``) access token."""
    answer = side.client_credentials("challenges")
    assert answer.status_code == 200, answer.get_json()
    return str(answer.get_json()["access_token"])


def decision_body(served: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A decision citing every data point version just served, with ``changes`` applied."""
    body: dict[str, Any] = {
        "case_reference": "HOU-2291",
        "title": "Emergency housing",
        "outcome": "Priority need accepted",
        "reasons": "No safe place to stay tonight.",
        "automated": True,
        "algorithm": {"name": "Priority need screener", "version": "2.3.1"},
        "accountable_officer": OFFICER,
        "data_points_used": [
            {"key": p["key"], "version": p["version"]} for p in served["data_points"]
        ],
        "other_information_used": [
            {"description": "Housing register banding rules", "source": "Allocation policy"}
        ],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


def record(side: DepartmentSide, token: str, body: dict[str, Any], **kw: Any) -> Any:
    """POST /api/v1/decisions."""
    return call(side, "POST", "/api/v1/decisions", token, json=body, **kw)


def review(side: DepartmentSide, token: str, decision_id: str, body: dict[str, Any]) -> Any:
    """POST /api/v1/decisions/{id}/reviews."""
    return call(side, "POST", f"/api/v1/decisions/{decision_id}/reviews", token, json=body)


def ledger_verifies(db: Any, vault: Vault) -> None:
    """The ledger still verifies against every row."""
    with db.tx() as session:
        report = verify_ledger(session, vault)
    assert report.ok, report.problems


@pytest.fixture(autouse=True)
def ledger_still_verifies(db: Any, vault: Vault) -> Iterator[None]:
    yield
    ledger_verifies(db, vault)


@pytest.fixture
def tokens(department: DepartmentSide, sam: Any) -> dict[str, Any]:
    """Sam said yes to Anytown housing's request."""
    return whole_flow(sam, department)


@pytest.fixture
def served(department: DepartmentSide, tokens: dict[str, Any]) -> dict[str, Any]:
    """What the department fetched once under Sam's permission."""
    fetched = department.fetch(tokens["access_token"])
    assert fetched.status_code == 200, fetched.get_json()
    return dict(fetched.get_json())


@pytest.fixture
def decided(
    department: DepartmentSide, tokens: dict[str, Any], served: dict[str, Any]
) -> dict[str, Any]:
    """An automated decision that used everything served."""
    answer = record(department, tokens["access_token"], decision_body(served))
    assert answer.status_code == 201, answer.get_json()
    return dict(answer.get_json())


def decision_rows(db: Any) -> list[Decision]:
    with db.tx() as session:
        return list(session.exec(select(Decision).order_by(Decision.version)).all())


# --- Recording a decision ----------------------------------------------------------------------


def test_a_decision_is_recorded_with_exactly_the_versions_it_used(
    db: Any,
    vault: Vault,
    person: Person,
    openapi: dict[str, Any],
    served: dict[str, Any],
    decided: dict[str, Any],
) -> None:
    assert set(decided) == set(openapi["components"]["schemas"]["DecisionOut"]["properties"])
    assert decided["version"] == 1
    assert decided["kind"] == "original"
    assert decided["series_id"] == decided["id"]
    assert decided["subject"] == served["subject"]  # the same pairwise id as the data API
    assert decided["data_points_used"] == [
        {"key": p["key"], "version": p["version"]} for p in served["data_points"]
    ]
    with db.tx() as session:
        (shown,) = decisions_for_citizen(session, vault, person.citizen_id)
    assert shown.id == decided["id"]
    assert shown.outcome == "Priority need accepted"
    assert shown.officer_name == "Priya Shah"
    assert shown.algorithm_name == "Priority need screener"
    assert [(p.key, p.version) for p in shown.data_points_used] == [
        (p["key"], p["version"]) for p in served["data_points"]
    ]


def test_a_human_decision_needs_no_algorithm(
    department: DepartmentSide, tokens: dict[str, Any], served: dict[str, Any]
) -> None:
    body = decision_body(served, automated=False, algorithm=...)
    assert record(department, tokens["access_token"], body).status_code == 201


def test_a_data_point_never_fetched_is_refused_by_name(
    db: Any, department: DepartmentSide, tokens: dict[str, Any], served: dict[str, Any]
) -> None:
    used = [*decision_body(served)["data_points_used"], {"key": "health.conditions", "version": 1}]
    answer = record(
        department, tokens["access_token"], decision_body(served, data_points_used=used)
    )
    body = refused(answer, 422, "decision_rejected")
    assert "health.conditions version 1" in body["message"]
    assert decision_rows(db) == []


def test_a_version_newer_than_the_one_fetched_is_refused_by_name(
    db: Any,
    vault: Vault,
    person: Person,
    department: DepartmentSide,
    tokens: dict[str, Any],
    served: dict[str, Any],
) -> None:
    fetched = next(p for p in served["data_points"] if p["key"] == "contact.address")
    with db.tx() as session:
        newer = record_data_point(
            session,
            vault,
            person.citizen_id,
            "contact.address",
            {"lines": ["2 New Road"], "town": "Leeds", "postcode": "LS2 2BB"},
            recorded_by="citizen:x",
        )
    assert newer.version == fetched["version"] + 1
    used = [{"key": "contact.address", "version": newer.version}]
    answer = record(
        department, tokens["access_token"], decision_body(served, data_points_used=used)
    )
    body = refused(answer, 422, "decision_rejected")
    assert f"contact.address version {newer.version}" in body["message"]
    assert decision_rows(db) == []


def test_a_decision_without_an_accountable_officer_is_refused(
    db: Any, department: DepartmentSide, tokens: dict[str, Any], served: dict[str, Any]
) -> None:
    body = decision_body(served, accountable_officer=...)
    answer = refused(record(department, tokens["access_token"], body), 422)
    assert answer["message"].startswith("accountable_officer")
    assert decision_rows(db) == []


@pytest.mark.parametrize(
    ("officer", "field"),
    [({"name": "  ", "role": "Head"}, "name"), ({"name": "Priya Shah", "role": ""}, "role")],
)
def test_an_accountable_officer_without_a_name_or_role_is_refused(
    db: Any,
    department: DepartmentSide,
    tokens: dict[str, Any],
    served: dict[str, Any],
    officer: dict[str, str],
    field: str,
) -> None:
    body = decision_body(served, accountable_officer=officer)
    answer = refused(record(department, tokens["access_token"], body), 422)
    assert answer["message"].startswith(f"accountable_officer.{field}")
    assert decision_rows(db) == []


def test_an_automated_decision_without_an_algorithm_is_refused(
    db: Any, department: DepartmentSide, tokens: dict[str, Any], served: dict[str, Any]
) -> None:
    body = decision_body(served, algorithm=...)
    answer = refused(record(department, tokens["access_token"], body), 422)
    assert answer["message"].startswith("algorithm: is required when the decision is automated")
    assert decision_rows(db) == []


def test_an_algorithm_without_a_version_is_refused_naming_it(
    department: DepartmentSide, tokens: dict[str, Any], served: dict[str, Any]
) -> None:
    body = decision_body(served, algorithm={"name": "Priority need screener"})
    answer = refused(record(department, tokens["access_token"], body), 422)
    assert answer["message"].startswith("algorithm.version")


def test_a_bad_version_number_is_refused_naming_where_it_is(
    department: DepartmentSide, tokens: dict[str, Any], served: dict[str, Any]
) -> None:
    used = [{"key": "contact.address", "version": "two"}]
    body = decision_body(served, data_points_used=used)
    answer = refused(record(department, tokens["access_token"], body), 422)
    assert answer["message"].startswith("data_points_used[0].version")


def test_another_case_reference_is_refused(
    department: DepartmentSide, tokens: dict[str, Any], served: dict[str, Any]
) -> None:
    body = decision_body(served, case_reference="HOU-0000")
    refused(record(department, tokens["access_token"], body), 422, "decision_rejected")


def test_a_decision_without_the_acting_officer_header_is_refused(
    db: Any, department: DepartmentSide, tokens: dict[str, Any], served: dict[str, Any]
) -> None:
    answer = record(department, tokens["access_token"], decision_body(served), officer=None)
    assert refused(answer, 422)["message"].startswith("Acting-Officer")
    assert decision_rows(db) == []


def test_a_misspelt_field_is_refused_not_ignored(
    department: DepartmentSide, tokens: dict[str, Any], served: dict[str, Any]
) -> None:
    body = decision_body(served, outcomes="Priority need accepted")
    assert refused(record(department, tokens["access_token"], body), 422)["message"].startswith(
        "outcomes"
    )


def test_a_department_wide_token_cannot_record_a_decision(
    db: Any, department: DepartmentSide, served: dict[str, Any]
) -> None:
    answer = record(department, department_token(department), decision_body(served))
    refused(answer, 403, "insufficient_scope")
    assert decision_rows(db) == []


def test_a_decision_without_a_token_is_refused(
    department: DepartmentSide, served: dict[str, Any]
) -> None:
    answer = department.client.post(
        "/api/v1/decisions", json=decision_body(served), headers={"Acting-Officer": "A. Officer"}
    )
    refused(answer, 401, "invalid_token")


# --- Reviews -----------------------------------------------------------------------------------


def test_a_named_reviewer_overturns_an_automated_decision(
    db: Any,
    vault: Vault,
    person: Person,
    department: DepartmentSide,
    tokens: dict[str, Any],
    decided: dict[str, Any],
) -> None:
    body = {
        "kind": "overturned",
        "reviewer": REVIEWER,
        "reasons": "The address used was out of date.",
        "outcome": "Priority need not accepted",
    }
    answer = review(department, tokens["access_token"], decided["id"], body)
    assert answer.status_code == 201, answer.get_json()
    reviewed = answer.get_json()
    assert reviewed["series_id"] == decided["series_id"]
    assert (reviewed["version"], reviewed["kind"]) == (2, "overturned")
    assert reviewed["subject"] == decided["subject"]
    assert reviewed["data_points_used"] == decided["data_points_used"]
    with db.tx() as session:
        history = decision_history(session, vault, person.citizen_id, decided["series_id"])
    assert [(v.version, v.status) for v in history] == [(1, "superseded"), (2, "current")]
    assert history[1].reviewer_name == "A. Reviewer"
    assert history[1].outcome == "Priority need not accepted"
    assert history[1].review_reasons == "The address used was out of date."


def test_a_department_wide_token_may_record_a_review(
    department: DepartmentSide, decided: dict[str, Any]
) -> None:
    body = {"kind": "upheld", "reviewer": REVIEWER, "reasons": "Checked again."}
    answer = review(department, department_token(department), decided["id"], body)
    assert answer.status_code == 201, answer.get_json()
    assert answer.get_json()["kind"] == "upheld"


@pytest.mark.parametrize("name", ["Priya Shah", "  priya   SHAH "])
def test_the_accountable_officer_cannot_review_their_automated_decision(
    db: Any, department: DepartmentSide, tokens: dict[str, Any], decided: dict[str, Any], name: str
) -> None:
    body = {
        "kind": "upheld",
        "reviewer": {"name": name, "role": "Head of Housing Options"},
        "reasons": "I checked it myself.",
    }
    answer = review(department, tokens["access_token"], decided["id"], body)
    assert "someone other than the accountable officer" in refused(answer, 422)["message"]
    assert len(decision_rows(db)) == 1


def test_the_accountable_officer_may_review_a_human_decision(
    department: DepartmentSide, tokens: dict[str, Any], served: dict[str, Any]
) -> None:
    body = decision_body(served, automated=False, algorithm=...)
    decided = record(department, tokens["access_token"], body).get_json()
    again = {
        "kind": "adjusted",
        "reviewer": OFFICER,
        "reasons": "A new fact came in.",
        "outcome": "Priority need accepted, with support",
    }
    answer = review(department, tokens["access_token"], decided["id"], again)
    assert answer.status_code == 201, answer.get_json()


def test_an_adjustment_without_a_new_outcome_is_refused(
    department: DepartmentSide, tokens: dict[str, Any], decided: dict[str, Any]
) -> None:
    body = {"kind": "adjusted", "reviewer": REVIEWER, "reasons": "Changed."}
    answer = review(department, tokens["access_token"], decided["id"], body)
    assert "outcome" in refused(answer, 422, "decision_rejected")["message"]


def test_a_review_of_an_old_version_is_refused(
    department: DepartmentSide, tokens: dict[str, Any], decided: dict[str, Any]
) -> None:
    body = {"kind": "upheld", "reviewer": REVIEWER, "reasons": "Checked again."}
    assert review(department, tokens["access_token"], decided["id"], body).status_code == 201
    answer = review(department, tokens["access_token"], decided["id"], body)
    assert "newest version" in refused(answer, 422, "decision_rejected")["message"]


def test_an_unknown_review_kind_is_refused(
    department: DepartmentSide, tokens: dict[str, Any], decided: dict[str, Any]
) -> None:
    body = {"kind": "cancelled", "reviewer": REVIEWER, "reasons": "No."}
    answer = review(department, tokens["access_token"], decided["id"], body)
    assert refused(answer, 422)["message"].startswith("kind")


def test_another_departments_decision_looks_like_a_missing_one(
    db: Any,
    department: DepartmentSide,
    other_department: DepartmentSide,
    decided: dict[str, Any],
) -> None:
    body = {"kind": "upheld", "reviewer": REVIEWER, "reasons": "Checked again."}
    token = department_token(other_department)
    theirs = refused(review(other_department, token, decided["id"], body), 404, "not_found")
    missing = refused(review(other_department, token, "no-such-decision", body), 404)
    assert theirs == missing
    assert len(decision_rows(db)) == 1


# --- The OpenAPI document ----------------------------------------------------------------------


@pytest.fixture
def openapi(client: Any) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return dict(response.get_json())


NEW_OPERATIONS = [
    ("/api/v1/decisions", "post", "201"),
    ("/api/v1/decisions/{decision_id}/reviews", "post", "201"),
    ("/api/v1/challenges", "get", "200"),
    ("/api/v1/challenges/{challenge_id}/answer", "post", "200"),
    ("/api/v1/grants/{grant_id}/deletion", "post", "200"),
]


@pytest.mark.parametrize(("path", "method", "success"), NEW_OPERATIONS)
def test_the_openapi_document_describes_every_new_operation(
    openapi: dict[str, Any], path: str, method: str, success: str
) -> None:
    operation = openapi["paths"][path][method]
    assert operation["security"] == [{"DPoP": []}]
    assert success in operation["responses"]
    assert {"401", "422"} <= set(operation["responses"])
    for status in set(operation["responses"]) - {success, "default"}:
        error = operation["responses"][status]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ApiError"}
    if method == "post" and path != "/api/v1/grants/{grant_id}/deletion":
        assert operation["requestBody"]["content"]["application/json"]["example"]
