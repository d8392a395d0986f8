"""How a rotation shares the database and the machine with the service: batches of a chosen
size with rests between them, reads that never wait for the writer lock, and commits that
wait for the disk only at the end of each pass.

The erasure and busy-row cases are in test_rotation_under_load.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from vault import keyops
from vault.citizens import create_citizen
from vault.db import is_sqlite, make_engine, session_scope
from vault.errors import InvalidValue
from vault.keyops import count_to_rewrap, rewrap_all
from vault.keys import LocalKeyFileProvider, add_key_version
from vault.models import Citizen
from vault.services import Vault

PEOPLE = 20
BATCH = 8  # so PEOPLE makes batches of 8, 8 and 4


@pytest.fixture
def rotating(engine: Engine, own_key_file: Path) -> Vault:
    """PEOPLE citizens under key version 1, and version 2 made current."""
    vault = Vault(keys=LocalKeyFileProvider(own_key_file), ledger_origin="test.tellonce/ledger")
    with session_scope(engine) as session:
        for _ in range(PEOPLE):
            create_citizen(session, vault)
    add_key_version(own_key_file)
    return vault


def test_batches_and_rests_in_proportion(
    engine: Engine, rotating: Vault, own_key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rests: list[float] = []
    ticks = iter(range(1_000))
    # A clock where each batch takes one second, and sleeps that are only written down.
    monkeypatch.setattr(
        keyops, "time", SimpleNamespace(monotonic=lambda: float(next(ticks)), sleep=rests.append)
    )
    progress: list[int] = []
    assert rewrap_all(engine, rotating, progress.append, batch=BATCH, pace=2.0) == PEOPLE
    assert progress == [8, 8, 4]
    assert rests == [2.0, 2.0, 2.0]  # twice as long as each batch took

    add_key_version(own_key_file)
    rests.clear()
    assert rewrap_all(engine, rotating, batch=BATCH) == PEOPLE
    assert rests == []  # no pace, no rests
    with session_scope(engine) as session:
        assert count_to_rewrap(session, rotating) == 0
    with pytest.raises(InvalidValue):
        rewrap_all(engine, rotating, batch=0)
    with pytest.raises(InvalidValue):
        rewrap_all(engine, rotating, pace=-1)


def test_reading_a_batch_does_not_wait_for_a_writer(engine: Engine, rotating: Vault) -> None:
    # A fetch (or anyone) in the middle of a write transaction: on SQLite it holds the
    # writer lock for the whole database, on PostgreSQL the row.
    holding, release = threading.Event(), threading.Event()

    def write_and_hold() -> None:
        with session_scope(engine) as session:
            session.execute(update(Citizen).values(status="active"))
            holding.set()
            release.wait(timeout=30)

    writer = threading.Thread(target=write_and_hold)
    writer.start()
    try:
        assert holding.wait(timeout=10)
        table = keyops._table(Citizen)
        found: list[int] = []
        reader = threading.Thread(
            target=lambda: found.append(len(keyops._read_batch(engine, table, 2, None, BATCH)))
        )
        reader.start()
        reader.join(timeout=10)
        # Still holding: had the read waited for the writer, it would not be done.
        assert not reader.is_alive() and found == [BATCH]
    finally:
        release.set()
        writer.join(timeout=30)


@pytest.fixture
def statements(engine: Engine) -> Iterator[tuple[Engine, list[tuple[int, str]]]]:
    """An engine on the same database whose statements are written down (connection, text).

    On SQLite its connections are synchronous=FULL, as the service's are in production.
    """
    seen: list[tuple[int, str]] = []
    if is_sqlite(engine):
        full = make_engine(engine.url.render_as_string(hide_password=False), synchronous="FULL")

        @event.listens_for(full, "connect")
        def trace(dbapi_connection: Any, _record: Any) -> None:
            # The sqlite3 module's own trace: it also sees what we run on the raw connection.
            key = id(dbapi_connection)
            dbapi_connection.set_trace_callback(lambda sql: seen.append((key, sql)))

        yield full, seen
        full.dispose()
        return

    def record(_conn: Any, cursor: Any, sql: str, *_rest: Any) -> None:
        seen.append((id(cursor.connection), sql))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield engine, seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_only_the_last_write_of_a_pass_waits_for_the_disk(
    rotating: Vault, statements: tuple[Engine, list[tuple[int, str]]]
) -> None:
    engine, seen = statements
    assert rewrap_all(engine, rotating, batch=BATCH) == PEOPLE
    if is_sqlite(engine):
        # Follow each connection's synchronous setting; note it at each COMMIT.
        names = {"1": "NORMAL", "2": "FULL"}
        level: dict[int, str] = {}
        at_commit = []
        for connection, sql in seen:
            if sql.startswith("PRAGMA synchronous="):
                value = sql.removeprefix("PRAGMA synchronous=")
                level[connection] = names.get(value, value)
            elif sql == "COMMIT":
                at_commit.append(level.get(connection, "FULL"))
        assert at_commit == ["NORMAL", "NORMAL", "FULL"]
        assert set(level.values()) == {"FULL"}  # and every connection is FULL again
    else:
        shape = [
            "SET" if sql.startswith("SET LOCAL synchronous_commit") else "UPDATE"
            for _, sql in seen
            if sql.startswith(("SET LOCAL synchronous_commit", "UPDATE citizen"))
        ]
        assert shape == ["SET", "UPDATE", "SET", "UPDATE", "UPDATE"]


def test_a_key_put_back_under_the_old_version_meanwhile_is_rewrapped_too(
    engine: Engine, rotating: Vault
) -> None:
    # As if a worker that had not yet seen the new key file wrapped a key under the old
    # version, behind the point the rotation had reached: a last pass finds it.
    with session_scope(engine) as session:
        old = {c.id: bytes(c.wrapped_key or b"") for c in session.exec(select(Citizen))}
    real_unwrap = rotating.keys.unwrap
    seen: list[str] = []

    def unwrap(blob: bytes, context: bytes) -> bytes:
        seen.append(context.decode().rsplit(":", 1)[1])
        if len(seen) == BATCH + 1:  # the first batch is written: put its first key back
            with session_scope(engine) as session:
                session.execute(
                    update(Citizen)
                    .where(col(Citizen.id) == seen[0])
                    .values(wrapped_key=old[seen[0]], kek_version=1)
                )
        return real_unwrap(blob, context)

    rotating.keys.unwrap = unwrap  # type: ignore[method-assign]
    assert rewrap_all(engine, rotating, batch=BATCH) == PEOPLE + 1
    with session_scope(engine) as session:
        assert count_to_rewrap(session, rotating) == 0
