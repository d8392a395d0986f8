"""Key rotation: re-wrap every data key under the newest key version, online, in batches."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from vault.citizens import key_context
from vault.db import session_scope
from vault.models import Account, Citizen
from vault.services import Vault

BATCH = 100
MAX_PASSES = 5
PAUSE_SECONDS = 0.2


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

    The service keeps running meanwhile: each batch is read in one short transaction,
    re-wrapped with no transaction open, and written back in another, so the write lock
    (all of SQLite, or the rows on PostgreSQL) is held only for the updates themselves.
    """
    target = vault.keys.current_version
    changed = 0
    for model, kind in ((Citizen, "citizen"), (Account, "account")):
        table = _table(model)
        # Rows busy in a fetch (which holds its citizen's row FOR SHARE) are skipped, and
        # so are rows changed under us (see _write_batch); another pass, after a pause,
        # retries them. Only the last pass waits for busy rows.
        for number in range(MAX_PASSES):
            if number:
                time.sleep(PAUSE_SECONDS)
            wait = number == MAX_PASSES - 1
            after = ""
            found = done_here = 0
            while True:
                rows = _read_batch(engine, table, target, after)
                if not rows:
                    break
                after = rows[-1][0]
                found += len(rows)
                updates = []
                for owner_id, blob in rows:
                    context = key_context(kind, owner_id)
                    new_blob = vault.keys.wrap(vault.keys.unwrap(blob, context), context)
                    # The blob's own version: a rotation started meanwhile may be newer.
                    version = vault.keys.version_of(new_blob)
                    updates.append(
                        {"owner": owner_id, "old": blob, "new": new_blob, "version": version}
                    )
                done = _write_batch(engine, table, updates, wait=wait)
                done_here += done
                if progress is not None and done:
                    progress(done)
            changed += done_here
            if done_here == found:  # nothing skipped, nothing changed under us
                break
    return changed


def _read_batch(engine: Engine, table: Table, target: int, after: str) -> list[tuple[str, bytes]]:
    # Keyset order on the primary key: each batch starts where the last ended, by index,
    # instead of scanning past every row already done.
    with session_scope(engine) as session:
        rows = session.execute(
            select(table.c.id, table.c.wrapped_key)
            .where(
                table.c.id > after,
                table.c.wrapped_key.is_not(None),
                table.c.kek_version > 0,
                table.c.kek_version != target,
            )
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
    return [(str(owner_id), bytes(blob)) for owner_id, blob in rows]


def _write_batch(engine: Engine, table: Table, updates: list[dict[str, Any]], *, wait: bool) -> int:
    with session_scope(engine) as session:
        connection = session.connection()
        # On PostgreSQL, lock the rows first, skipping any a fetch holds: waiting for one
        # would queue every later fetch of that person behind us. (SQLite ignores this: its
        # writers already take turns, one short transaction at a time.)
        lock = (
            select(table.c.id)
            .where(table.c.id.in_([item["owner"] for item in updates]))
            .with_for_update(key_share=True, skip_locked=not wait)
        )
        held = {owner_id for (owner_id,) in connection.execute(lock)}
        chosen = [item for item in updates if item["owner"] in held]
        if not chosen:
            return 0
        # Compare and set: a row whose key changed since we read it (an erasure deleted it,
        # or another rotation re-wrapped it) is left alone, so an erasure is never undone by
        # us writing a re-wrapped key back over its deleted one.
        statement = (
            update(table)
            .where(table.c.id == bindparam("owner"), table.c.wrapped_key == bindparam("old"))
            .values(wrapped_key=bindparam("new"), kek_version=bindparam("version"))
        )
        # One executemany (a pipeline on PostgreSQL): both drivers report the summed count.
        return int(connection.execute(statement, chosen).rowcount)


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
