"""``verify_ledger`` in worker processes gives the report that checking in-process gives, on a
clean log and on tampered ones; and a transaction that has changed the log is never handed to
workers, whose own connections could not see the change.

Chunks of 16 leaves and no size threshold, so a log of a few hundred entries runs in
workers (about 20 chunks: tree hashes above the chunks, checkpoints inside and between them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, delete, insert, select, update
from sqlmodel import Session

from tests.ledger import tamper
from tests.ledger.builders import build_log, bulk_data_points
from tests.ledger.tamper import CHECKPOINT, ENTRY, HEAD, NODE
from vault import ledger, verify, verify_chunks
from vault.verify import VerifyReport, verify_ledger

SIZE = 300


@pytest.fixture
def chunks_run(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Small chunks, workers for any size; counts the chunks checked in this process."""
    monkeypatch.setattr(verify, "CHUNK_LEVEL", 4)
    monkeypatch.setattr(verify, "PARALLEL_FROM", 0)
    here: list[int] = []
    real = verify_chunks.check_chunk

    def counted(query: Any, task: Any) -> Any:
        here.append(task[0])  # forked workers count in their own copy, not this one
        return real(query, task)

    monkeypatch.setattr(verify_chunks, "check_chunk", counted)
    return here


@pytest.fixture
def log(db: Any, vault: Any, clock: Any, chunks_run: list[int]) -> Any:
    """A committed log of SIZE entries with a checkpoint after each of its batches."""
    with db.tx() as session:
        people = build_log(session, vault, SIZE - 150)
    for n in range(3):
        clock.advance(seconds=2)  # the next append signs a checkpoint
        with db.tx() as session:
            bulk_data_points(session, vault, people[n], 50)
    with db.tx() as session:
        ledger.make_checkpoint(session, vault)
    return db


def _both(db: Any, vault: Any, here: list[int]) -> tuple[VerifyReport, VerifyReport]:
    """The report checked in this process, and the one checked by two workers."""
    # A connection that has written nothing yet: on SQLite, workers see what it sees.
    db.engine.dispose()
    reports = []
    for workers in (1, 2):
        here.clear()
        with db.tx() as session:
            reports.append(verify_ledger(session, vault, rows=False, workers=workers))
        assert bool(here) is (workers == 1), "the chunks ran in the wrong place"
    return reports[0], reports[1]


def _commit(db: Any, mutate: Callable[[Connection], object]) -> None:
    with db.engine.begin() as connection:
        mutate(connection)


def test_a_clean_log_verifies_in_workers(log: Any, vault: Any, chunks_run: list[int]) -> None:
    alone, workers = _both(log, vault, chunks_run)
    assert alone.ok and workers.ok, (alone.problems, workers.problems)
    assert (workers.size, workers.checkpoints) == (alone.size, alone.checkpoints) == (SIZE, 4)


def _node(connection: Connection, level: int) -> Any:
    return connection.execute(
        select(NODE.c.level, NODE.c.idx, NODE.c.hash).where(NODE.c.level == level).limit(1)
    ).one()


def _flip_node(level: int) -> Callable[[Connection], None]:
    def mutate(connection: Connection) -> None:
        row = _node(connection, level)
        where = (NODE.c.level == row.level) & (NODE.c.idx == row.idx)
        connection.execute(update(NODE).where(where).values(hash=tamper.flip_byte(row.hash, 3, 1)))

    return mutate


def _edit_and_rebuild(connection: Connection) -> None:
    """What a careful attacker does: only the signed checkpoints can give it away."""
    leaf = tamper.flip_byte(bytes(tamper.entry_of(connection, 5)["leaf"]), 2, 8)
    tamper.set_entry(connection, 5, leaf=leaf)
    tamper.rebuild_tree(connection)


def _signed_fork(vault: Any) -> Callable[[Connection], None]:
    """A checkpoint inside a chunk, signed with our own key, for a tree that never was."""

    def mutate(connection: Connection) -> None:
        root = bytes(range(32))
        connection.execute(
            insert(CHECKPOINT).values(
                size=100,
                root_hash=root,
                note=tamper.signed_checkpoint(vault.ledger_origin, 100, root, vault.checkpoint_key),
                created_at=vault.clock(),
            )
        )

    return mutate


TAMPERING: dict[str, Callable[[Connection], object]] = {
    "leaf edited": lambda c: tamper.set_entry(
        c, 37, leaf=tamper.flip_byte(bytes(tamper.entry_of(c, 37)["leaf"]), 9, 4)
    ),
    "leaf hash edited": lambda c: tamper.set_entry(
        c, 200, leaf_hash=tamper.flip_byte(bytes(tamper.entry_of(c, 200)["leaf_hash"]), 0, 1)
    ),
    "leaf edited, tree rebuilt": _edit_and_rebuild,
    "hash inside a chunk": _flip_node(2),
    "hash above the chunks": _flip_node(6),
    "hash removed": lambda c: c.execute(delete(NODE).where(NODE.c.level == 5, NODE.c.idx == 1)),
    "entry removed": lambda c: c.execute(delete(ENTRY).where(ENTRY.c.idx == 99)),
    "a whole chunk removed": lambda c: c.execute(
        delete(ENTRY).where(ENTRY.c.idx >= 32, ENTRY.c.idx < 48)
    ),
    "log truncated": lambda c: c.execute(delete(ENTRY).where(ENTRY.c.idx >= 250)),
    "log truncated at a chunk's end": lambda c: c.execute(delete(ENTRY).where(ENTRY.c.idx >= 256)),
    "entry added past the head": lambda c: c.execute(
        insert(ENTRY).values(**{**tamper.entry_of(c, 3), "idx": SIZE})
    ),
    "head frontier edited": lambda c: c.execute(
        update(HEAD).values(
            frontier=tamper.flip_byte(bytes(c.execute(select(HEAD.c.frontier)).scalar_one()), 1, 2)
        )
    ),
    "checkpoint root column edited": lambda c: c.execute(
        update(CHECKPOINT).values(root_hash=bytes(32)).where(CHECKPOINT.c.size == SIZE)
    ),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_workers_report_what_checking_here_reports(
    log: Any, vault: Any, chunks_run: list[int], how: str
) -> None:
    _commit(log, TAMPERING[how])
    alone, workers = _both(log, vault, chunks_run)
    assert not alone.ok, f"missed: {how}"
    assert workers.problems == alone.problems
    assert workers.size == alone.size
    if how.startswith("log truncated"):  # the hashes above the lost entries are still there
        assert "The stored tree has hashes for entries that are not there." in alone.problems


def test_a_forked_checkpoint_inside_a_chunk_is_caught_by_workers(
    log: Any, vault: Any, chunks_run: list[int]
) -> None:
    _commit(log, _signed_fork(vault))
    alone, workers = _both(log, vault, chunks_run)
    assert workers.problems == alone.problems
    assert workers.problems[0].startswith("The first 100 entries do not match the checkpoint")


def test_a_transaction_that_changed_the_log_is_checked_here(
    log: Any, vault: Any, chunks_run: list[int]
) -> None:
    """Workers would read the last commit, without this transaction's change."""
    log.engine.dispose()
    with log.engine.connect() as connection:
        transaction = connection.begin()
        try:
            leaf = tamper.flip_byte(bytes(tamper.entry_of(connection, 77)["leaf"]), 0, 1)
            tamper.set_entry(connection, 77, leaf=leaf)
            with Session(bind=connection) as session:
                report = verify_ledger(session, vault, rows=False, workers=2)
        finally:
            transaction.rollback()
    assert chunks_run, "a transaction with changes of its own was handed to workers"
    assert report.problems[0] == "Entry 77 has been changed: its hash does not match its content."
