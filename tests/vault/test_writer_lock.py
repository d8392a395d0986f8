"""SQLite writers take turns through a lock file beside the database, handed over at once."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from vault.db import make_engine

HOLD_AND_WAIT = """
import sys, time
from sqlalchemy import text
from vault.db import make_engine
engine = make_engine(sys.argv[1])
with engine.connect() as connection:
    connection.execute(text("INSERT INTO note (body) VALUES ('from the child')"))
    print("holding", flush=True)
    time.sleep(600)  # killed long before this ends
"""


@pytest.fixture
def notes(tmp_path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path}/notes.db", synchronous="NORMAL")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)"))
    yield engine
    engine.dispose()


def _bodies(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT body FROM note ORDER BY id")).scalars())


def test_the_lock_file_sits_beside_the_database_readable_only_by_us(
    notes: Engine, tmp_path: Path
) -> None:
    _bodies(notes)
    lock = tmp_path / "notes.db-writer"
    assert lock.exists()
    assert stat.S_IMODE(lock.stat().st_mode) & 0o077 == 0


def test_a_second_writer_waits_for_the_first_and_then_sees_its_work(notes: Engine) -> None:
    order: list[str] = []
    first_has_lock = threading.Event()
    let_first_finish = threading.Event()

    def first() -> None:
        with notes.begin() as connection:
            connection.execute(text("INSERT INTO note (body) VALUES ('first')"))
            first_has_lock.set()
            let_first_finish.wait(10)
            order.append("first commits")

    def second() -> None:
        first_has_lock.wait(10)
        with notes.begin() as connection:
            order.append("second begins")
            seen = connection.execute(text("SELECT count(*) FROM note")).scalar_one()
            connection.execute(text("INSERT INTO note (body) VALUES (:b)"), {"b": f"saw {seen}"})

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_has_lock.wait(10)
    let_first_finish.set()
    for thread in threads:
        thread.join(20)
    assert order == ["first commits", "second begins"]
    assert _bodies(notes) == ["first", "saw 1"]


def test_a_failed_transaction_lets_the_next_writer_in(notes: Engine) -> None:
    with pytest.raises(RuntimeError), notes.begin() as connection:
        connection.execute(text("INSERT INTO note (body) VALUES ('lost')"))
        raise RuntimeError("the change fails half-way")
    done = threading.Event()

    def writer() -> None:
        with notes.begin() as connection:
            connection.execute(text("INSERT INTO note (body) VALUES ('kept')"))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    thread.join(20)
    assert done.is_set(), "the lock was not let go after the rollback"
    assert _bodies(notes) == ["kept"]


def test_a_writer_killed_while_holding_the_lock_does_not_block_the_others(
    notes: Engine, tmp_path: Path
) -> None:
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, f"sqlite:///{tmp_path}/notes.db"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "holding"
        child.send_signal(signal.SIGKILL)
        child.wait(20)
    finally:
        child.kill()
        if child.stdout is not None:
            child.stdout.close()
    with notes.begin() as connection:
        connection.execute(text("INSERT INTO note (body) VALUES ('after the crash')"))
    # The child's change was never committed, so it is gone; ours is there.
    assert _bodies(notes) == ["after the crash"]


def test_a_nested_writer_in_the_same_thread_does_not_wait_for_itself(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/nested.db", synchronous="NORMAL")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE note (id INTEGER PRIMARY KEY, body TEXT)"))
    with engine.connect() as outer:
        outer.execute(text("SELECT 1"))  # outer holds the writer lock now
        inner = engine.connect()
        # Straight to the driver: a statement through SQLAlchemy would begin a transaction.
        inner.connection.driver_connection.execute("PRAGMA busy_timeout=50")  # type: ignore[union-attr]
        try:
            # Without the same-thread check this would block forever on our own lock; with it,
            # SQLite answers "database is locked" after its (here short) busy timeout.
            with pytest.raises(Exception, match="locked"):
                inner.execute(text("INSERT INTO note (body) VALUES ('inner')"))
        finally:
            inner.close()
        outer.rollback()
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO note (body) VALUES ('later')"))
    assert _bodies(engine) == ["later"]
    engine.dispose()
