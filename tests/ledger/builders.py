"""Plain helpers that build realistic ledgers quickly, shared by the ledger tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlmodel import Session, col

from vault import catalogue, envelope, ledger
from vault.citizens import create_citizen, data_key, ledger_key
from vault.events import DATA_POINT_RECORDED
from vault.models import Citizen, DataPoint
from vault.records import DATA_POINT_KIND
from vault.services import Vault

# Facts whose catalogue examples are realistic values of every shape (text, number, objects).
KEYS: tuple[str, ...] = (
    "identity.name",
    "contact.address",
    "contact.phone",
    "money.income_monthly",
    "money.benefits",
    "housing.status",
    "health.conditions",
    "family.children",
)


def bulk_data_points(
    session: Session,
    vault: Vault,
    citizen: Citizen,
    count: int,
    *,
    keys: Sequence[str] = KEYS,
    recorded_by: str = "citizen:bulk",
) -> list[ledger.LeafReceipt]:
    """Record ``count`` sealed data point versions for one citizen in one batch append.

    The rows are exactly what ``vault.records.record_data_point`` writes (sealed under the
    citizen's key, bound to row and version), but inserted in one statement so that logs of
    thousands of entries build in a second or two.
    """
    dek = data_key(vault, citizen)
    name_key = ledger_key(vault, citizen)
    latest = dict(
        session.execute(
            select(col(DataPoint.key), func.max(col(DataPoint.version)))
            .where(col(DataPoint.citizen_id) == citizen.id)
            .group_by(col(DataPoint.key))
        ).all()
    )
    now = vault.clock()
    points: list[DataPoint] = []
    for n in range(count):
        key = keys[n % len(keys)]
        version = int(latest.get(key) or 0) + 1
        latest[key] = version
        point = DataPoint(
            citizen_id=citizen.id,
            key=key,
            version=version,
            ciphertext=b"",
            source="self",
            recorded_by=recorded_by,
            recorded_at=now,
            status="superseded",
        )
        point.ciphertext = envelope.seal_json(
            dek,
            catalogue.entry(key).example,
            envelope.associated_data(citizen.id, DATA_POINT_KIND, point.id, version),
        )
        points.append(point)
    rows: list[dict[str, Any]] = [p.model_dump() for p in points]
    session.execute(insert(DataPoint), rows)
    events = [
        ledger.LedgerEvent(
            DATA_POINT_RECORDED.name,
            p,
            p.recorded_at,
            citizen_key=name_key,
            details={"key": p.key, "version": p.version, "source": p.source},
        )
        for p in points
    ]
    return ledger.append(session, vault, events)


def build_log(session: Session, vault: Vault, size: int, *, citizens: int = 4) -> list[Citizen]:
    """Grow the log by exactly ``size`` entries: a few citizens, then their data points."""
    people = [create_citizen(session, vault) for _ in range(min(citizens, size))]
    remaining = size - len(people)
    for i, person in enumerate(people):
        share = remaining // len(people) + (1 if i < remaining % len(people) else 0)
        if share:
            bulk_data_points(session, vault, person, share)
    return people
