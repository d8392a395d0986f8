"""Small builders the consent tests share: people, helpers and what a department asks for."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from consent import actors
from consent.access import Served, fetch_for_department
from consent.decision_models import Decision
from consent.decisions import DecisionInput, record_decision
from consent.grants import GrantRequest, give_grant
from consent.models import Grant
from vault.models import LedgerEntry
from vault.records import record_data_point
from vault.services import Vault

DEPARTMENT = "dept-housing"
OTHER_DEPARTMENT = "dept-benefits"
CASE = "HOU-2291"

_BASE = GrantRequest(
    department_id=DEPARTMENT,
    purpose_code="emergency_housing",
    purpose_text="To find you somewhere safe to stay tonight.",
    data_points=("contact.phone", "housing.status"),
    case_reference=CASE,
    duration_days=30,
    data_life_days=90,
    max_fetches=10,
    story_topics=("housing",),
)


def ask(**changes: Any) -> GrantRequest:
    """A department's ordinary request, with any fields changed."""
    return replace(_BASE, **changes)


@dataclass(frozen=True)
class Person:
    """A citizen and the account they sign in with."""

    citizen_id: str
    account_id: str

    @property
    def me(self) -> actors.Actor:
        """The citizen acting for themselves."""
        return actors.citizen(self.account_id, self.citizen_id)

    def helped_by(self, worker_account_id: str) -> actors.Actor:
        """A support worker acting for this citizen."""
        return actors.worker(worker_account_id, self.citizen_id)


def entries(session: Session, kind: str | None = None) -> list[LedgerEntry]:
    """Ledger entries in order, optionally of one kind."""
    statement = select(LedgerEntry).order_by(col(LedgerEntry.idx))
    if kind is not None:
        statement = statement.where(col(LedgerEntry.kind) == kind)
    return list(session.execute(statement).scalars())


def leaf_json(entry: LedgerEntry) -> dict[str, Any]:
    """The decoded leaf of a ledger entry."""
    body = json.loads(bytes(entry.leaf))
    assert isinstance(body, dict)
    return body


# Decisions and challenges (issue 6) -------------------------------------------------------

OFFICER = "Officer 7, Housing Options"
PHONE = "+447700900123"
NEW_PHONE = "+447700900456"
HOUSING = "staying_with_friends"


def tell_facts(db: Any, vault: Vault, person: Person) -> None:
    """The person records their phone number and where they live now (version 1 of each)."""
    with db.tx() as session:
        for key, value in (("contact.phone", PHONE), ("housing.status", HOUSING)):
            record_data_point(session, vault, person.citizen_id, key, value, recorded_by="self")


def share(db: Any, vault: Vault, person: Person, department: str = DEPARTMENT) -> Grant:
    """The person gives a department a grant, and the department fetches once under it."""
    with db.tx() as session:
        grant = give_grant(session, vault, person.me, ask(department_id=department)).grant
    with db.tx() as session:
        served = fetch_for_department(
            session, vault, grant.id, department, acting_officer=OFFICER, case_reference=CASE
        )
    assert isinstance(served, Served)
    return grant


def decided(**changes: Any) -> DecisionInput:
    """An automated decision that used the phone number and housing status it was served."""
    base = DecisionInput(
        case_reference=CASE,
        title="Emergency housing",
        outcome="You can stay at Elm House from tonight.",
        reasons="You told us you have nowhere safe to stay.",
        automated=True,
        algorithm_name="Housing triage",
        algorithm_version="2.1",
        officer_name="Priya Shah",
        officer_role="Housing Options Manager",
        data_points_used=[("contact.phone", 1), ("housing.status", 1)],
        other_information_used=[{"description": "Night shelter places", "source": "Council"}],
    )
    return replace(base, **changes)


def record(db: Any, vault: Vault, grant: Grant, **changes: Any) -> Decision:
    """The grant's department records a decision (``decided`` with any fields changed)."""
    with db.tx() as session:
        return record_decision(
            session,
            vault,
            grant.department_id,
            grant.id,
            decided(**changes),
            acting_officer=OFFICER,
        )
