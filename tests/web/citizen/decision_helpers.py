"""Decisions and challenges made through the domain, for the citizen page tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlmodel import select

from consent.access import Served, fetch_for_department, served_versions
from consent.challenges import answer_challenge
from consent.decision_models import Challenge
from consent.decisions import DecisionInput, record_decision, review_decision
from tests.web.citizen.conftest import Person, grant_for
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.records import record_data_point
from vault.services import Vault

DEPARTMENT = "housing-dept"
CASE = "HOU-2291"
ADDRESS = {"lines": ["10 High Street"], "town": "Leeds", "postcode": "LS1 1AA"}
NEW_ADDRESS = {"lines": ["4 Park Row"], "town": "Bradford", "postcode": "BD1 2AB"}

BY_A_PERSON = DecisionInput(
    case_reference=CASE,
    title="Emergency housing",
    outcome="You can stay at Elm House from tonight.",
    reasons="You told us you have nowhere safe to stay.",
    automated=False,
    algorithm_name=None,
    algorithm_version=None,
    officer_name="Ann Baker",
    officer_role="Housing officer",
    data_points_used=[],
    other_information_used=[{"description": "Night shelter places", "source": "Leeds Council"}],
)
BY_A_COMPUTER = replace(
    BY_A_PERSON,
    automated=True,
    algorithm_name="Housing triage",
    algorithm_version="2.1",
    officer_name="Priya Shah",
    officer_role="Housing Options Manager",
)


def make_decision(
    db: Any, vault: Vault, person: Person, data: DecisionInput = BY_A_PERSON, **grant: Any
) -> str:
    """Sam shares, the department fetches, then decides using everything it was given."""
    department = grant.get("department", DEPARTMENT)
    grant_id = grant_for(db, vault, person, **grant)
    with db.tx() as session:
        served = fetch_for_department(
            session, vault, grant_id, department, acting_officer="A. Officer", case_reference=CASE
        )
        assert isinstance(served, Served)
    with db.tx() as session:
        used = sorted(served_versions(session, grant_id))
        decision = record_decision(
            session,
            vault,
            department,
            grant_id,
            replace(data, data_points_used=used),
            acting_officer="A. Officer",
        )
        return decision.id


def review(db: Any, vault: Vault, decision_id: str, **changes: Any) -> str:
    """A named reviewer overturns the decision (or as ``changes`` say); the new version's id."""
    settings: dict[str, Any] = {
        "kind": "overturned",
        "reviewer_name": "Dee Evans",
        "reviewer_role": "Senior caseworker",
        "reasons": "We looked again at where you live now.",
        "new_outcome": "You can stay at Oak Court instead.",
        "acting_officer": "Dee Evans",
        **changes,
    }
    with db.tx() as session:
        return review_decision(session, vault, DEPARTMENT, decision_id, **settings).id


def answer(db: Any, vault: Vault, challenge_id: str, outcome: str, reasons: str, **kw: Any) -> None:
    """The department answers a challenge."""
    with db.tx() as session:
        answer_challenge(
            session,
            vault,
            DEPARTMENT,
            challenge_id,
            outcome=outcome,
            reasons=reasons,
            answered_by="Dee Evans",
            **kw,
        )


def change_address(db: Any, vault: Vault, person: Person) -> None:
    """Sam moves: a new version of their address."""
    with db.tx() as session:
        record_data_point(
            session, vault, person.citizen_id, "contact.address", NEW_ADDRESS, recorded_by="self"
        )


def challenges_of(db: Any, person: Person) -> list[dict[str, Any]]:
    """Every challenge stored for the person: what it is about, who opened it, its status."""
    with db.tx() as session:
        found = session.exec(select(Challenge).where(Challenge.citizen_id == person.citizen_id))
        return [
            {
                "id": c.id,
                "target": c.target,
                "key": c.data_point_key,
                "version": c.data_point_version,
                "status": c.status,
                "opened_by": c.opened_by,
            }
            for c in found.all()
        ]


def someone_else(db: Any, vault: Vault) -> Person:
    """Another citizen, Alex, with an address and an account of their own."""
    with db.tx() as session:
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, "alex@example.org", citizen_id=citizen.id)
        record_data_point(
            session, vault, citizen.id, "contact.address", ADDRESS, recorded_by="citizen:y"
        )
        record_data_point(session, vault, citizen.id, "identity.name", "Alex", recorded_by="x")
        return Person(citizen.id, account.id)
