"""Decisions as the person reads them: opened with their key, with the exact versions used.

Kept apart from ``consent.decisions``, which records and reviews them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from consent.decision_models import Decision
from vault import catalogue, envelope
from vault.citizens import data_key, get_citizen
from vault.errors import NotFound
from vault.models import DataPoint
from vault.records import DATA_POINT_KIND
from vault.services import Vault

DECISION_KIND = "decision"
NOT_FOUND = "We could not find that decision."


@dataclass(frozen=True)
class UsedDataPoint:
    """A data point version a decision used, opened for the person."""

    key: str
    label: str
    version: int
    value: Any
    source: str
    recorded_at: datetime
    status: str  # current | contested | superseded (the version's status now)
    special_category: bool


@dataclass(frozen=True)
class DecisionView:
    """One version of a decision, opened for the person it is about."""

    id: str
    series_id: str
    version: int
    kind: str
    department_id: str
    grant_id: str
    case_reference: str
    title: str
    outcome: str
    reasons: str
    automated: bool
    algorithm_name: str | None
    algorithm_version: str | None
    officer_name: str
    officer_role: str
    reviewer_name: str | None
    reviewer_role: str | None
    review_reasons: str | None
    data_points_used: list[UsedDataPoint]
    other_information_used: list[dict[str, str]]
    created_at: datetime
    status: str
    review_requested_at: datetime | None
    review_requested_because: str | None


def decision_texts(dek: bytes, decision: Decision) -> dict[str, Any]:
    """Open what a decision says (title, outcome, reasons...) with its person's data key."""
    aad = envelope.associated_data(
        decision.citizen_id, DECISION_KIND, decision.id, decision.version
    )
    texts = envelope.open_json(dek, decision.sealed, aad)
    assert isinstance(texts, dict)
    return texts


def _views(
    session: Session, vault: Vault, citizen_id: str, rows: Sequence[Decision]
) -> list[DecisionView]:
    if not rows:
        return []
    dek = data_key(vault, get_citizen(session, citizen_id))
    keys = {item["key"] for row in rows for item in row.data_points_used}
    points = {
        (p.key, p.version): p
        for p in session.execute(
            select(DataPoint).where(
                col(DataPoint.citizen_id) == citizen_id, col(DataPoint.key).in_(sorted(keys))
            )
        ).scalars()
    }
    return [_view(dek, row, points) for row in rows]


def _used_view(dek: bytes, point: DataPoint) -> UsedDataPoint:
    entry = catalogue.entry(point.key)
    aad = envelope.associated_data(point.citizen_id, DATA_POINT_KIND, point.id, point.version)
    return UsedDataPoint(
        key=point.key,
        label=entry.label,
        version=point.version,
        value=envelope.open_json(dek, point.ciphertext, aad),
        source=point.source,
        recorded_at=point.recorded_at,
        status=point.status,
        special_category=entry.special_category,
    )


def _view(dek: bytes, row: Decision, points: Mapping[tuple[str, int], DataPoint]) -> DecisionView:
    texts = decision_texts(dek, row)
    used = []
    for item in row.data_points_used:
        point = points.get((item["key"], int(item["version"])))
        if point is None:  # cannot happen: a decision cites only versions that were served
            raise NotFound("We could not find a piece of information this decision used.")
        used.append(_used_view(dek, point))
    return DecisionView(
        id=row.id,
        series_id=row.series_id,
        version=row.version,
        kind=row.kind,
        department_id=row.department_id,
        grant_id=row.grant_id,
        case_reference=row.case_reference,
        title=texts["title"],
        outcome=texts["outcome"],
        reasons=texts["reasons"],
        automated=row.automated,
        algorithm_name=row.algorithm_name,
        algorithm_version=row.algorithm_version,
        officer_name=row.officer_name,
        officer_role=row.officer_role,
        reviewer_name=row.reviewer_name,
        reviewer_role=row.reviewer_role,
        review_reasons=texts.get("review_reasons"),
        data_points_used=used,
        other_information_used=[dict(item) for item in texts["other_information_used"]],
        created_at=row.created_at,
        status=row.status,
        review_requested_at=row.review_requested_at,
        review_requested_because=row.review_requested_because,
    )


def decisions_for_citizen(session: Session, vault: Vault, citizen_id: str) -> list[DecisionView]:
    """The current version of every decision about the person, newest first."""
    rows = session.execute(
        select(Decision)
        .where(col(Decision.citizen_id) == citizen_id, col(Decision.status) == "current")
        .order_by(col(Decision.created_at).desc(), col(Decision.id).desc())
    ).scalars()
    return _views(session, vault, citizen_id, list(rows))


def decision_for_citizen(
    session: Session, vault: Vault, citizen_id: str, decision_id: str
) -> DecisionView:
    """One version of a decision about the person; NotFound if it is not theirs."""
    row = session.get(Decision, decision_id)
    if row is None or row.citizen_id != citizen_id:
        raise NotFound(NOT_FOUND)
    return _views(session, vault, citizen_id, [row])[0]


def decision_history(
    session: Session, vault: Vault, citizen_id: str, series_id: str
) -> list[DecisionView]:
    """Every version of one decision about the person, oldest first."""
    rows = list(
        session.execute(
            select(Decision)
            .where(col(Decision.series_id) == series_id, col(Decision.citizen_id) == citizen_id)
            .order_by(col(Decision.version))
        ).scalars()
    )
    if not rows:
        raise NotFound(NOT_FOUND)
    return _views(session, vault, citizen_id, rows)
