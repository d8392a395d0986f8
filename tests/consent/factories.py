"""Small builders the consent tests share: people, helpers and what a department asks for."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from consent import actors
from consent.grants import GrantRequest
from vault.models import LedgerEntry

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
