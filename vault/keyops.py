"""Key rotation: re-wrap every data key under the newest key version, online, in batches."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from vault.citizens import key_context
from vault.db import session_scope
from vault.models import Account, Citizen
from vault.services import Vault

BATCH = 500


def key_versions_in_use(session: Session) -> dict[str, Counter[int]]:
    """How many citizens' and accounts' data keys are wrapped under each key version."""
    result: dict[str, Counter[int]] = {}
    for name, model in (("citizens", Citizen), ("accounts", Account)):
        rows = session.execute(
            select(model.kek_version, func.count()).where(model.wrapped_key.is_not(None)).group_by(model.kek_version)  # type: ignore[attr-defined]
        )
        result[name] = Counter({int(v): int(n) for v, n in rows if v is not None})
    return result


def rewrap_all(
    engine: Engine, vault: Vault, progress: Callable[[int], None] | None = None
) -> int:
    """Re-wrap every data key not under the current key version; return how many changed.

    Each batch is its own short transaction, so the service keeps running meanwhile; a row
    changed by someone else between read and write is simply picked up by the next pass.
    """
    target = vault.keys.current_version
    changed = 0
    for model, kind in ((Citizen, "citizen"), (Account, "account")):
        while True:
            with session_scope(engine) as session:
                rows = session.execute(
                    select(model)
                    .where(model.wrapped_key.is_not(None), model.kek_version != target)  # type: ignore[attr-defined]
                    .limit(BATCH)
                ).scalars().all()
                for row in rows:
                    context = key_context(kind, row.id)
                    dek = vault.keys.unwrap(row.wrapped_key, context)  # type: ignore[arg-type]
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
        total += int(
            session.execute(
                select(func.count()).select_from(model).where(
                    model.wrapped_key.is_not(None), model.kek_version != target  # type: ignore[attr-defined]
                )
            ).scalar()
            or 0
        )
    return total
