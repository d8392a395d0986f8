"""Key rotation: re-wrap every data key under the newest key version, online, in batches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from vault.citizens import key_context
from vault.db import session_scope
from vault.models import Account, Citizen
from vault.services import Vault

BATCH = 500


def _table(model: object) -> Table:
    table = getattr(model, "__table__")  # noqa: B009  (SQLModel does not type __table__)
    assert isinstance(table, Table)
    return table


def key_versions_in_use(session: Session) -> dict[str, Counter[int]]:
    """How many citizens' and accounts' data keys are wrapped under each key version."""
    result: dict[str, Counter[int]] = {}
    for name, table in (("citizens", _table(Citizen)), ("accounts", _table(Account))):
        rows = session.execute(
            select(table.c.kek_version, func.count())
            .where(table.c.wrapped_key.is_not(None), table.c.kek_version > 0)
            .group_by(table.c.kek_version)
        )
        result[name] = Counter({int(v): int(n) for v, n in rows if v is not None})
    return result


def rewrap_all(
    engine: Engine, vault: Vault, progress: Callable[[int], object] | None = None
) -> int:
    """Re-wrap every data key not under the current key version; return how many changed.

    Each batch is its own short transaction, so the service keeps running meanwhile; a row
    changed by someone else between read and write is simply picked up by the next pass.
    """
    target = vault.keys.current_version
    changed = 0
    for model, kind in ((Citizen, "citizen"), (Account, "account")):
        table = _table(model)
        while True:
            with session_scope(engine) as session:
                rows = (
                    session.execute(
                        select(model)
                        .where(
                            table.c.wrapped_key.is_not(None),
                            table.c.kek_version > 0,
                            table.c.kek_version != target,
                        )
                        .limit(BATCH)
                        # Lock the rows so an erasure running now cannot be undone by us
                        # writing a re-wrapped key back over its deleted one.
                        .with_for_update()
                    )
                    .scalars()
                    .all()
                )
                for row in rows:
                    context = key_context(kind, row.id)
                    dek = vault.keys.unwrap(row.wrapped_key, context)
                    row.wrapped_key = vault.keys.wrap(dek, context)
                    row.kek_version = target
                    session.add(row)
            changed += len(rows)
            if progress is not None and rows:
                progress(len(rows))
            if len(rows) < BATCH:
                break
    return changed


def count_to_rewrap(session: Session, vault: Vault) -> int:
    """How many data keys are not yet under the current key version."""
    target = vault.keys.current_version
    total = 0
    for model in (Citizen, Account):
        table = _table(model)
        total += int(
            session.execute(
                select(func.count())
                .select_from(model)
                .where(
                    table.c.wrapped_key.is_not(None),
                    table.c.kek_version > 0,
                    table.c.kek_version != target,
                )
            ).scalar()
            or 0
        )
    return total
