"""Key rotation: re-wrap every data key under the newest key version, online, in batches."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Table, bindparam, func, literal_column, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from vault.citizens import key_context
from vault.db import is_sqlite, read_scope
from vault.errors import InvalidValue, StorageError
from vault.models import Account, Citizen
from vault.services import Vault

BATCH = 100
MAX_PASSES = 5
PAUSE_SECONDS = 0.2
# By default a rotation rests as long as each batch took, so it uses at most half of one
# processor and leaves the rest to the service (see docs/performance.md, key rotation).
PACE = 1.0


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
    engine: Engine,
    vault: Vault,
    progress: Callable[[int], object] | None = None,
    *,
    batch: int | None = None,
    pace: float = 0.0,
) -> int:
    """Re-wrap every data key not under the current key version; return how many changed.

    The service keeps running meanwhile: each batch is read without the write lock,
    re-wrapped with no transaction open, and written back in one short transaction, so the
    write lock (all of SQLite, or the rows on PostgreSQL) is held only for the updates
    themselves. Batches are ``batch`` rows (default BATCH); after each one it rests
    ``pace`` times as long as the batch took, so it uses at most 1 / (1 + pace) of a processor.
    """
    size = BATCH if batch is None else batch
    if size < 1 or pace < 0:
        raise InvalidValue("A batch needs at least one row, and the pace cannot be negative.")
    target = vault.keys.current_version
    changed = 0
    for model, kind in ((Citizen, "citizen"), (Account, "account")):
        table = _table(model)
        # Rows busy in a fetch (which holds its citizen's row FOR SHARE) are skipped, and
        # so are rows changed under us (see _write_batch); another pass, after a pause,
        # retries them. Only the last pass waits for busy rows. The work ends with a pass
        # that finds nothing left, so a row the keyset order missed (one added under an
        # older version meanwhile, or moved by a VACUUM) is not left behind either.
        for number in range(MAX_PASSES):
            wait = number == MAX_PASSES - 1
            found = done_here = 0
            rows = _read_batch(engine, table, target, None, size)
            while rows:
                began = time.monotonic()
                found += len(rows)
                after = rows[-1][0]
                updates = []
                for _, owner_id, blob in rows:
                    context = key_context(kind, owner_id)
                    new_blob = vault.keys.wrap(vault.keys.unwrap(blob, context), context)
                    # The blob's own version: a rotation started meanwhile may be newer.
                    version = vault.keys.version_of(new_blob)
                    updates.append(
                        {"owner": owner_id, "old": blob, "new": new_blob, "version": version}
                    )
                # Read the next batch first, to know whether this write is the pass's last.
                rows = _read_batch(engine, table, target, after, size)
                done = _write_batch(engine, table, updates, wait=wait, last=not rows)
                done_here += done
                if progress is not None and done:
                    progress(done)
                if pace:
                    time.sleep(pace * (time.monotonic() - began))
            changed += done_here
            if not found:
                break
            if done_here < found:  # some were busy: give their fetches a moment
                time.sleep(PAUSE_SECONDS)
    return changed


def _read_batch(
    engine: Engine, table: Table, target: int, after: object, batch: int
) -> list[tuple[object, str, bytes]]:
    """The next batch as (position, owner id, wrapped key), from just after ``after``."""
    # Keyset order: each batch starts where the last ended, by index, instead of scanning
    # past every row already done. On SQLite the order is the rowid, the order the rows
    # are stored in, so a batch's updates touch a few pages instead of one page per row
    # (ids are random): twenty times less written to the WAL and checkpointed, and a
    # shorter hold of the writer lock. A plain read, without that lock: _write_batch
    # checks each row again (compare and set) under it.
    position = literal_column("rowid") if is_sqlite(engine) else table.c.id
    conditions = [
        table.c.wrapped_key.is_not(None),
        table.c.kek_version > 0,
        table.c.kek_version != target,
    ]
    if after is not None:
        conditions.append(position > after)
    with read_scope(engine) as session:
        rows = session.execute(
            select(position, table.c.id, table.c.wrapped_key)
            .where(*conditions)
            .order_by(position)
            .limit(batch)
        ).all()
    return [(at, str(owner_id), bytes(blob)) for at, owner_id, blob in rows]


@contextmanager
def _batch_transaction(engine: Engine, *, last: bool) -> Iterator[Connection]:
    # Every batch but a pass's last commits without waiting for the disk (on SQLite in WAL
    # mode no fsync, on PostgreSQL no wait for the WAL flush), so the write lock is not held
    # through one. The log is sequential: the pass's last commit, or any of the service's,
    # makes everything before it durable. A crash may lose the re-wraps since the last
    # durable commit; those rows keep their older wrapped key, which works until that
    # version is retired, and `keys retire` counts them first. Consistent either way.
    with engine.connect() as connection:
        sqlite = is_sqlite(engine)
        raw = connection.connection.dbapi_connection
        assert raw is not None
        restore = raw.execute("PRAGMA synchronous").fetchone()[0] if sqlite and not last else None
        try:
            if restore is not None:
                raw.execute("PRAGMA synchronous=NORMAL")  # no transaction open yet
            with connection.begin():
                if not sqlite and not last:
                    connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
                yield connection
        except DBAPIError as exc:
            raise StorageError("The database refused the change, so nothing was saved.") from exc
        finally:
            if restore is not None:
                raw.execute(f"PRAGMA synchronous={int(restore)}")


def _write_batch(
    engine: Engine, table: Table, updates: list[dict[str, Any]], *, wait: bool, last: bool
) -> int:
    with _batch_transaction(engine, last=last) as connection:
        chosen = updates
        if not is_sqlite(engine):
            # Lock the rows first, skipping any a fetch holds: waiting for one would queue
            # every later fetch of that person behind us. (SQLite has no row locks: its
            # writers take turns, one short transaction at a time.)
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
