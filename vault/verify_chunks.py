"""Check the ledger in chunks: one chunk's leaves and the stored tree hashes inside it, read
over the caller's transaction or, side by side, in worker processes with connections of their
own that see what that transaction sees.

A chunk holds ``2**level`` leaves and starts at a multiple of that, so it is a perfect subtree
of the RFC 9162 tree: it is checked with no knowledge of the rest, and its root then folds into
the whole tree as a leaf does (``vault.verify`` does that, and checks the checkpoints).
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import multiprocessing.util
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any
from urllib.parse import quote

from sqlmodel import Session

from vault.db import READ_ONLY

STREAM_BATCH = 10_000
MAX_PROBLEMS = 20
_NO_BOUND = 1 << 62

Key = tuple[int, int]  # (entry, order at that entry): where a problem shows, for sorting
Problem = tuple[Key, str]
# Runs one statement (``?`` placeholders) and yields its rows in batches.
Query = Callable[[str, tuple[int, ...]], Iterator[Sequence[Sequence[Any]]]]
# (first entry, chunk level, first chunk?, last chunk?, checkpoint sizes ending in the chunk)
Task = tuple[int, int, bool, bool, tuple[int, ...]]


@dataclass
class Chunk:
    """What one chunk of the log turned out to hold."""

    start: int
    count: int = 0  # entries start .. start + count - 1 are there, in order
    stop: Problem | None = None  # a gap or a repeat right after them: nothing later counts
    problems: list[Problem] = field(default_factory=list)
    frontier: list[bytes] = field(default_factory=list)  # perfect-subtree roots of its leaves
    stacks: dict[int, list[bytes]] = field(default_factory=dict)  # the same, per checkpoint
    stray: bool = False  # stored tree hashes in its range for leaves that are not there


def raw(value: Any) -> bytes:
    """A stored value as bytes, whatever type the database gave it."""
    # SQLite lets a hand edit store text where bytes belong; that is a change to report,
    # not a reason to crash.
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def differs(computed: bytes, stored: Any) -> bool:
    """Whether a stored hash is not the recomputed one."""
    return computed != stored and computed != raw(stored)


def check_chunk(query: Query, task: Task) -> Chunk:
    """Check the leaves of one chunk and the stored tree hashes inside it."""
    start, top, first, last, sizes = task
    width = 1 << top
    chunk = Chunk(start)
    sha = hashlib.sha256
    leaves: list[bytes] = []
    low = -_NO_BOUND if first else start
    for rows in query(
        "SELECT idx, leaf, leaf_hash FROM ledger_entry WHERE idx >= ? AND idx < ? ORDER BY idx",
        (low, start + width),
    ):
        if chunk.stop is not None:
            continue  # read to the end of the statement, so the connection is free again
        at = start + len(leaves)
        idxs = [row[0] for row in rows]
        if idxs != list(range(at, at + len(rows))):
            good = next(i for i, idx in enumerate(idxs) if idx != at + i)
            rows, bad, at_gap = rows[:good], idxs[good], at + good
            gap = f"Entry {at_gap} is missing." if bad > at_gap else f"Entry {bad} appears twice."
            chunk.stop = ((at_gap, -1), gap)
        try:
            hashes = [sha(b"\x00" + row[1]).digest() for row in rows]
        except TypeError:
            hashes = [sha(b"\x00" + raw(row[1])).digest() for row in rows]
        if hashes != [row[2] for row in rows]:
            chunk.problems += [
                ((i, 0), f"Entry {i} has been changed: its hash does not match its content.")
                for i, hashed, row in zip(range(at, at + len(rows)), hashes, rows, strict=True)
                if differs(hashed, row[2])
            ]
        leaves += hashes
    chunk.count = len(leaves)
    # Level by level, pairing neighbours: the completed nodes of each level, left to right.
    levels = [leaves]
    for _ in range(top):
        below = levels[-1]
        levels.append(
            [sha(b"\x01" + below[i] + below[i + 1]).digest() for i in range(0, len(below) - 1, 2)]
        )
    for level in range(1, top + 1):
        _check_nodes(query, chunk, width, level, levels[level], first, last)

    def stack(count: int) -> list[bytes]:
        offset, hashes = 0, []
        for level in range(top, -1, -1):
            if count >> level & 1:
                hashes.append(levels[level][offset >> level])
                offset += 1 << level
        return hashes

    chunk.frontier = stack(chunk.count)
    chunk.stacks = {size: stack(size - start) for size in sizes if size - start <= chunk.count}
    chunk.problems = sorted(chunk.problems)[:MAX_PROBLEMS]
    return chunk


def _check_nodes(
    query: Query,
    chunk: Chunk,
    width: int,
    level: int,
    computed: list[bytes],
    first: bool,
    last: bool,
) -> None:
    """Compare one level of the chunk's stored tree hashes with the recomputed ones."""
    base = chunk.start >> level
    low = -_NO_BOUND if first else base
    high = _NO_BOUND if last else (chunk.start + width) >> level
    stored = [
        row
        for rows in query(
            "SELECT idx, hash FROM ledger_node WHERE level = ? AND idx >= ? AND idx < ? "
            "ORDER BY idx",
            (level, low, high),
        )
        for row in rows
    ]
    expected = range(base, base + len(computed))
    if [row[0] for row in stored] == list(expected):
        if [row[1] for row in stored] == computed:
            return
        found = {int(row[0]): row[1] for row in stored}
    else:
        found = {int(row[0]): row[1] for row in stored}
        chunk.stray = chunk.stray or not found.keys() <= set(expected)
    for index, node in zip(expected, computed, strict=True):
        at = ((index + 1) << level) - 1
        if index not in found:
            chunk.problems.append(
                ((at, level), f"The stored tree is missing a hash near entry {at}.")
            )
        elif differs(node, found[index]):
            chunk.problems.append(
                ((at, level), f"The stored tree hash above entry {at} does not match the entries.")
            )


def _sqlite_query(connection: Any) -> Query:
    def run(sql: str, params: tuple[int, ...]) -> Iterator[Sequence[Sequence[Any]]]:
        cursor = connection.cursor()
        try:
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(STREAM_BATCH):
                yield rows
        finally:
            cursor.close()

    return run


def _pg_query(connection: Any) -> Query:
    import psycopg  # only needed, and only installed for sure, with PostgreSQL

    # Binary results: bytea as text is hex, and decoding it cost more than the hashing.
    # Streamed in chunks (libpq 17 on), the server keeps sending while the rows are hashed.
    chunked = psycopg.pq.version() >= 170000

    def run(sql: str, params: tuple[int, ...]) -> Iterator[Sequence[Sequence[Any]]]:
        sql = sql.replace("?", "%s")
        if chunked:
            rows = connection.cursor(binary=True).stream(sql, params, size=STREAM_BATCH)
            while batch := list(islice(rows, STREAM_BATCH)):
                yield batch
            return
        with connection.cursor("tellonce_verify", binary=True) as cursor:
            cursor.execute(sql, params)
            while batch := cursor.fetchmany(STREAM_BATCH):
                yield batch

    return run


def _session_query(session: Session) -> Query:
    connection = session.connection()
    # The DB-API connection inside the session's transaction, giving plain tuples: wrapping a
    # million rows in SQLAlchemy Row objects took longer than hashing them.
    dbapi = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        return _pg_query(dbapi)
    return _sqlite_query(dbapi)


def _fork_spec(session: Session) -> tuple[str, Any] | None:
    """How a worker connects to see what this transaction sees, or None if it cannot."""
    connection = session.connection()
    engine = connection.engine
    if connection.dialect.name == "postgresql":
        # A transaction that has written has an id; its changes are its own until commit.
        if connection.exec_driver_sql("SELECT pg_current_xact_id_if_assigned()").scalar():
            return None
        snapshot = connection.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
        params = dict(engine.dialect.create_connect_args(engine.url)[1])
        params.pop("context", None)  # SQLAlchemy's type adapters, not a connection setting
        return "postgresql", (params, snapshot)
    database = engine.url.database
    dbapi: Any = connection.connection.dbapi_connection
    if (
        connection.dialect.name != "sqlite"
        or not database
        or database == ":memory:"
        or connection.get_execution_options().get(READ_ONLY)
        or not dbapi.in_transaction
        or dbapi.total_changes
    ):
        # Another connection sees the last commit. That is what this one sees only while it
        # holds the write lock (BEGIN IMMEDIATE, so nothing commits meanwhile) and has
        # changed nothing since it was opened.
        return None
    schema = connection.exec_driver_sql("PRAGMA schema_version").scalar()
    return "sqlite", (os.path.abspath(database), schema)


def _open(spec: tuple[str, Any]) -> tuple[Query, Callable[[], None]] | None:
    """A read-only connection that sees the same log as the caller's transaction (or None)."""
    dialect, detail = spec
    if dialect == "sqlite":
        path, schema = detail
        sqlite = sqlite3.connect(
            f"file:{quote(path)}?mode=ro", uri=True, isolation_level=None, timeout=30
        )
        sqlite.execute("BEGIN")
        # An uncommitted schema change would not show here either.
        if sqlite.execute("PRAGMA schema_version").fetchone()[0] != schema:
            sqlite.close()
            return None
        return _sqlite_query(sqlite), sqlite.close
    import psycopg
    from psycopg import sql

    params, snapshot = detail
    pg = psycopg.connect(**params)
    pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    pg.read_only = True
    pg.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
    return _pg_query(pg), pg.close


_worker_query: Query | None = None


def _worker_start(spec: tuple[str, Any]) -> None:
    global _worker_query
    reader = _open(spec)
    if reader is None:  # a failed initializer marks the pool broken: verify stops with it
        raise RuntimeError("The ledger changed while it was being verified.")
    _worker_query, close = reader
    multiprocessing.util.Finalize(None, close, exitpriority=10)


def _worker_chunk(task: Task) -> Chunk:
    assert _worker_query is not None
    return check_chunk(_worker_query, task)


@contextmanager
def chunk_runner(
    session: Session, workers: int, worth_it: Callable[[Query], bool]
) -> Iterator[tuple[Query, Callable[[list[Task]], Iterable[Chunk]]]]:
    """Where the log is read from, and how its chunks are checked: here, or in workers."""
    local = _session_query(session)
    spec = _fork_spec(session) if workers > 1 and worth_it(local) else None
    reader = _open(spec) if spec is not None else None
    if spec is None or reader is None:
        yield local, lambda tasks: (check_chunk(local, task) for task in tasks)
        return
    query, close = reader
    # Forked, so a worker starts at once (no imports); a worker that dies or cannot connect
    # breaks the pool, and verify stops with that error rather than waiting for it.
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_worker_start,
        initargs=(spec,),
    )

    def run(tasks: list[Task]) -> Iterable[Chunk]:
        # The workers are forked by the first submit. Frozen, the objects this process holds
        # are never collected in a worker, so it never closes connections it inherited.
        gc.freeze()
        try:
            return pool.map(_worker_chunk, tasks)
        finally:
            gc.unfreeze()

    try:
        yield query, run
    except BaseException:
        pool.shutdown(cancel_futures=True)
        raise
    else:
        pool.shutdown()  # each worker closes its connection as it leaves
    finally:
        close()
