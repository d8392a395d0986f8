"""``GET /api/v1/challenges`` and ``POST /api/v1/challenges/{id}/answer``: a department sees
what people say is wrong, in their own words, and answers: corrected, upheld, or decision
changed. Another department's challenge looks exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from consent.challenges import open_challenge
from consent.decision_models import Challenge, Decision
from tests.oauth.harness import DepartmentSide, whole_flow
from tests.oauth.test_api_decisions import (
    REVIEWER,
    call,
    decision_body,
    department_token,
    ledger_verifies,
    record,
    refused,
    review,
)
from tests.web.citizen.conftest import Person
from vault.clock import FrozenClock
from vault.records import current_data_points
from vault.services import Vault

SAM_SAYS = "I moved out of that flat in May."
NEW_ADDRESS = {"lines": ["2 New Road"], "town": "Leeds", "postcode": "LS2 2BB"}


@pytest.fixture(autouse=True)
def ledger_still_verifies(db: Any, vault: Vault) -> Iterator[None]:
    yield
    ledger_verifies(db, vault)


@pytest.fixture
def tokens(department: DepartmentSide, sam: Any) -> dict[str, Any]:
    return whole_flow(sam, department)


@pytest.fixture
def served(department: DepartmentSide, tokens: dict[str, Any]) -> dict[str, Any]:
    fetched = department.fetch(tokens["access_token"])
    assert fetched.status_code == 200, fetched.get_json()
    return dict(fetched.get_json())


@pytest.fixture
def decided(
    department: DepartmentSide, tokens: dict[str, Any], served: dict[str, Any]
) -> dict[str, Any]:
    answer = record(department, tokens["access_token"], decision_body(served))
    assert answer.status_code == 201, answer.get_json()
    return dict(answer.get_json())


def address_version(decided: dict[str, Any]) -> int:
    return next(
        int(p["version"]) for p in decided["data_points_used"] if p["key"] == "contact.address"
    )


def challenge(
    db: Any,
    vault: Vault,
    person: Person,
    decided: dict[str, Any],
    *,
    about: tuple[str, int] | None = None,
    reason: str = SAM_SAYS,
) -> str:
    """Sam says the decision (or one data point it used) is wrong; returns the challenge id."""
    with db.tx() as session:
        opened = open_challenge(
            session,
            vault,
            person.actor,
            decision_id=decided["id"],
            reason=reason,
            data_point=about,
        )
        return opened.id


@pytest.fixture
def address_challenge(db: Any, vault: Vault, person: Person, decided: dict[str, Any]) -> str:
    """Sam says the address the decision used is wrong."""
    return challenge(
        db, vault, person, decided, about=("contact.address", address_version(decided))
    )


def challenges(side: DepartmentSide, token: str, **query: str) -> Any:
    return call(side, "GET", "/api/v1/challenges", token, query=query or None, officer=None)


def answer(side: DepartmentSide, token: str, challenge_id: str, body: Any, **kw: Any) -> Any:
    path = f"/api/v1/challenges/{challenge_id}/answer"
    return call(side, "POST", path, token, json=body, **kw)


def challenge_row(db: Any, challenge_id: str) -> Challenge:
    with db.tx() as session:
        found = session.get(Challenge, challenge_id)
        assert found is not None
        return found


CORRECTED = {"outcome": "corrected", "reasons": "Checked with the landlord.", "value": NEW_ADDRESS}
UPHELD = {"outcome": "upheld", "reasons": "The tenancy record shows this address."}


# --- Listing ------------------------------------------------------------------------------------


def test_the_department_sees_an_open_challenge_in_the_persons_words(
    openapi: dict[str, Any],
    department: DepartmentSide,
    decided: dict[str, Any],
    address_challenge: str,
) -> None:
    listed = challenges(department, department_token(department))
    assert listed.status_code == 200, listed.get_json()
    (item,) = listed.get_json()["challenges"]
    assert set(item) == set(openapi["components"]["schemas"]["ChallengeOut"]["properties"])
    assert item["id"] == address_challenge
    assert item["target"] == "data_point"
    assert item["decision_id"] == decided["id"]
    assert item["subject"] == decided["subject"]
    assert (item["key"], item["version"]) == ("contact.address", address_version(decided))
    assert item["reason"] == SAM_SAYS
    assert item["status"] == "open"
    assert item["overdue"] is False
    assert item["answer"] is None


def test_a_grant_token_lists_the_departments_challenges_too(
    department: DepartmentSide, tokens: dict[str, Any], address_challenge: str
) -> None:
    listed = challenges(department, tokens["access_token"])
    assert [c["id"] for c in listed.get_json()["challenges"]] == [address_challenge]


def test_a_challenge_of_the_decision_itself_is_listed(
    db: Any, vault: Vault, person: Person, department: DepartmentSide, decided: dict[str, Any]
) -> None:
    opened = challenge(db, vault, person, decided)
    (item,) = challenges(department, department_token(department)).get_json()["challenges"]
    assert (item["id"], item["target"]) == (opened, "decision")
    assert (item["key"], item["version"]) == (None, None)


def test_a_challenge_past_its_month_is_overdue(
    clock: FrozenClock, department: DepartmentSide, address_challenge: str
) -> None:
    clock.advance(days=32)
    (item,) = challenges(department, department_token(department)).get_json()["challenges"]
    assert item["overdue"] is True


def test_answered_challenges_are_listed_only_when_asked_for(
    department: DepartmentSide, address_challenge: str
) -> None:
    token = department_token(department)
    assert answer(department, token, address_challenge, UPHELD).status_code == 200
    assert challenges(department, token).get_json()["challenges"] == []
    (item,) = challenges(department, token, status="all").get_json()["challenges"]
    assert (item["status"], item["answer"]) == ("upheld", UPHELD["reasons"])
    assert [
        c["id"] for c in challenges(department, token, status="upheld").get_json()["challenges"]
    ] == [address_challenge]


def test_another_department_does_not_see_the_challenge(
    other_department: DepartmentSide, address_challenge: str
) -> None:
    listed = challenges(other_department, department_token(other_department))
    assert listed.status_code == 200
    assert listed.get_json()["challenges"] == []


def test_an_unknown_status_is_refused(department: DepartmentSide) -> None:
    answer_ = challenges(department, department_token(department), status="closed")
    assert refused(answer_, 422)["message"].startswith("status")


def test_listing_needs_a_token(department: DepartmentSide) -> None:
    refused(department.client.get("/api/v1/challenges"), 401, "invalid_token")


# --- Answering ----------------------------------------------------------------------------------


def test_a_correction_writes_a_new_version_from_the_department(
    db: Any,
    vault: Vault,
    person: Person,
    department: DepartmentSide,
    decided: dict[str, Any],
    address_challenge: str,
) -> None:
    answered = answer(department, department_token(department), address_challenge, CORRECTED)
    assert answered.status_code == 200, answered.get_json()
    body = answered.get_json()
    old = address_version(decided)
    assert (body["id"], body["status"], body["corrected_version"]) == (
        address_challenge,
        "corrected",
        old + 1,
    )
    assert body["answer"] == CORRECTED["reasons"]
    assert body["subject"] == decided["subject"]
    with db.tx() as session:
        address = next(
            p
            for p in current_data_points(session, vault, person.citizen_id)
            if p.key == "contact.address"
        )
        flagged = session.get(Decision, decided["id"])
    assert (address.version, address.value["town"]) == (old + 1, "Leeds")
    assert address.value["lines"] == ["2 New Road"]
    assert address.source == f"department:{department.client_id}"
    assert flagged is not None and flagged.review_requested_at is not None
    row = challenge_row(db, address_challenge)
    assert row.answered_by == f"department:{department.client_id}/A. Officer"


def test_an_upheld_answer_keeps_the_data_point(
    department: DepartmentSide, tokens: dict[str, Any], address_challenge: str
) -> None:
    answered = answer(department, tokens["access_token"], address_challenge, UPHELD)
    assert answered.status_code == 200, answered.get_json()
    assert (answered.get_json()["status"], answered.get_json()["corrected_version"]) == (
        "upheld",
        None,
    )


def test_decision_changed_after_a_review_is_accepted(
    db: Any, vault: Vault, person: Person, department: DepartmentSide, decided: dict[str, Any]
) -> None:
    opened = challenge(db, vault, person, decided)
    token = department_token(department)
    changed = {
        "kind": "overturned",
        "reviewer": REVIEWER,
        "reasons": "Sam was right.",
        "outcome": "Priority need not accepted",
    }
    assert review(department, token, decided["id"], changed).status_code == 201
    body = {"outcome": "decision_changed", "reasons": "We reviewed the decision."}
    answered = answer(department, token, opened, body)
    assert answered.status_code == 200, answered.get_json()
    assert answered.get_json()["status"] == "decision_changed"


def test_decision_changed_without_a_review_is_refused(
    db: Any, vault: Vault, person: Person, department: DepartmentSide, decided: dict[str, Any]
) -> None:
    opened = challenge(db, vault, person, decided)
    body = {"outcome": "decision_changed", "reasons": "We will change it."}
    answered = answer(department, department_token(department), opened, body)
    assert "as a review" in refused(answered, 422, "challenge_rejected")["message"]
    assert challenge_row(db, opened).status == "open"


def test_answering_twice_is_a_conflict(
    db: Any, department: DepartmentSide, address_challenge: str
) -> None:
    token = department_token(department)
    assert answer(department, token, address_challenge, UPHELD).status_code == 200
    again = answer(department, token, address_challenge, CORRECTED)
    refused(again, 409, "conflict")
    assert challenge_row(db, address_challenge).status == "upheld"


@pytest.mark.parametrize(
    "value",
    [
        {"lines": ["2 New Road"], "town": "Leeds"},  # no postcode
        {"lines": ["2 New Road"], "town": "Leeds", "postcode": "not a postcode"},
        "2 New Road, Leeds",
    ],
)
def test_an_invalid_corrected_value_is_refused_naming_the_field(
    db: Any,
    vault: Vault,
    person: Person,
    department: DepartmentSide,
    address_challenge: str,
    value: Any,
) -> None:
    body = {**CORRECTED, "value": value}
    answered = answer(department, department_token(department), address_challenge, body)
    assert refused(answered, 422, "challenge_rejected")["message"].startswith("value: ")
    assert challenge_row(db, address_challenge).status == "open"
    with db.tx() as session:
        versions = [p.version for p in current_data_points(session, vault, person.citizen_id)]
    assert len(versions) == 3  # nothing new was written


def test_a_correction_without_a_value_is_refused(
    department: DepartmentSide, address_challenge: str
) -> None:
    body = {"outcome": "corrected", "reasons": "Checked."}
    answered = answer(department, department_token(department), address_challenge, body)
    assert refused(answered, 422)["message"].startswith("value")


def test_a_decision_challenge_cannot_be_corrected(
    db: Any, vault: Vault, person: Person, department: DepartmentSide, decided: dict[str, Any]
) -> None:
    opened = challenge(db, vault, person, decided)
    answered = answer(department, department_token(department), opened, CORRECTED)
    refused(answered, 422, "challenge_rejected")
    assert challenge_row(db, opened).status == "open"


def test_an_unknown_outcome_is_refused(department: DepartmentSide, address_challenge: str) -> None:
    body = {"outcome": "ignored", "reasons": "No."}
    answered = answer(department, department_token(department), address_challenge, body)
    assert refused(answered, 422)["message"].startswith("outcome")


def test_an_answer_without_the_acting_officer_is_refused(
    db: Any, department: DepartmentSide, address_challenge: str
) -> None:
    answered = answer(
        department, department_token(department), address_challenge, UPHELD, officer=None
    )
    assert refused(answered, 422)["message"].startswith("Acting-Officer")
    assert challenge_row(db, address_challenge).status == "open"


def test_another_departments_challenge_looks_like_a_missing_one(
    db: Any, other_department: DepartmentSide, address_challenge: str
) -> None:
    token = department_token(other_department)
    theirs = refused(
        answer(other_department, token, address_challenge, CORRECTED), 404, "not_found"
    )
    missing = refused(answer(other_department, token, "no-such-challenge", CORRECTED), 404)
    assert theirs == missing
    # Even an answer that would be refused for its value says nothing more than "not found".
    bad_value = {**CORRECTED, "value": "nonsense"}
    assert refused(answer(other_department, token, address_challenge, bad_value), 404) == missing
    assert challenge_row(db, address_challenge).status == "open"


@pytest.fixture
def openapi(client: Any) -> dict[str, Any]:
    return dict(client.get("/api/v1/openapi.json").get_json())
