"""``tellonce ledger verify``: recompute every leaf hash, the tree and the row digests, and
check every signed checkpoint. Memory stays flat however long the log is.

It answers with the problems found, earliest in the log first (an edited, removed, inserted or
reordered entry, a changed row, a forged checkpoint), so an operator knows where to look.

The leaves and stored tree hashes are checked in chunks (``vault.verify_chunks``), on a big
log by several worker processes at once; here the chunk roots fold into the whole tree, and
the checkpoints and the head are checked against it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from vault import merkle, note
from vault.errors import InvalidValue
from vault.models import LedgerEntry, LedgerNode
from vault.rows import digest_values, event_kinds
from vault.services import Vault
from vault.verify_chunks import (
    MAX_PROBLEMS,
    STREAM_BATCH,
    Chunk,
    Problem,
    Query,
    Task,
    chunk_runner,
    differs,
    raw,
)

# Chunks of 32,768 leaves: a few MiB of hashes held at once, per process.
CHUNK_LEVEL = 15
# Below this many entries, starting worker processes costs more than it saves.
PARALLEL_FROM = 4 << CHUNK_LEVEL
MAX_WORKERS = 4
_END = 1 << 62  # sorts a problem after everything found at the same entry


@dataclass
class VerifyReport:
    """What verification found: problems, first found first."""

    size: int = 0
    checkpoints: int = 0
    rows_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


Progress = Callable[[int], object]


def verify_ledger(
    session: Session,
    vault: Vault,
    *,
    progress: Progress | None = None,
    rows: bool = True,
    workers: int | None = None,
) -> VerifyReport:
    """Check the whole log (and, with ``rows``, every row it vouches for)."""
    report = VerifyReport()
    count = workers if workers is not None else min(os.cpu_count() or 1, MAX_WORKERS)
    with chunk_runner(session, count, lambda query: _planned_size(query) >= PARALLEL_FROM) as (
        query,
        run,
    ):
        _verify_log(vault, report, progress, query, run)
    if rows:
        _verify_rows(session, report, progress)
    return report


def _one(query: Query, sql: str, params: tuple[int, ...] = ()) -> list[Sequence[Any]]:
    return [row for rows in query(sql, params) for row in rows]


def _planned_size(query: Query) -> int:
    """Leaves to plan chunks for: as many as the head says, or as the entries reach."""
    ((most,),) = _one(query, "SELECT max(idx) FROM ledger_entry")
    head = _one(query, "SELECT size FROM ledger_head WHERE id = 1")
    return max(head[0][0] if head else 0, most + 1 if most is not None else 0)


def _checkpoints(query: Query, vault: Vault, report: VerifyReport) -> dict[int, bytes]:
    verifier = note.verifier_key(vault.ledger_origin, vault.checkpoint_key.public_key())
    expected: dict[int, bytes] = {}
    for size, root_hash, text in _one(
        query, "SELECT size, root_hash, note FROM ledger_checkpoint ORDER BY size"
    ):
        report.checkpoints += 1
        try:
            signed = note.parse_checkpoint(note.open_note(text, verifier))
        except InvalidValue:
            report.add(f"The checkpoint for size {size} has a bad signature.")
            continue
        if signed.origin != vault.ledger_origin or signed.size != size:
            report.add(f"The checkpoint for size {size} names another log or size.")
        elif signed.root_hash != raw(root_hash):
            report.add(f"The checkpoint for size {size} does not match its signed note.")
        expected[signed.size] = signed.root_hash
    return expected


def _verify_log(
    vault: Vault,
    report: VerifyReport,
    progress: Progress | None,
    query: Query,
    run: Callable[[list[Task]], Iterable[Chunk]],
) -> None:
    expected_roots = _checkpoints(query, vault, report)
    head = _one(query, "SELECT size, frontier FROM ledger_head WHERE id = 1")
    head_size = head[0][0] if head else 0
    width = 1 << CHUNK_LEVEL
    planned = _planned_size(query)
    tasks: list[Task] = [
        (
            start,
            CHUNK_LEVEL,
            start == 0,
            start + width >= planned,
            tuple(s for s in expected_roots if start < s <= start + width),
        )
        for start in range(0, planned, width)
    ]
    # Hashes above the chunks (and any at a level that cannot exist) are checked here.
    high = {
        (int(level), int(idx)): node
        for level, idx, node in _one(
            query,
            "SELECT level, idx, hash FROM ledger_node WHERE level > ? OR level < 1",
            (CHUNK_LEVEL,),
        )
    }
    problems: list[Problem] = []
    prefix: list[bytes] = []  # perfect-subtree roots of every whole chunk so far
    tail: list[bytes] = []  # those of a last, partial chunk
    size, ended, stray = 0, False, False
    for chunk in run(tasks):
        if progress is not None:
            progress(chunk.count)
        if ended:  # the log stopped before: any entry after that is past a gap
            if chunk.count or chunk.stop:
                problems.append(((size, -1), f"Entry {size} is missing."))
                return _report(report, problems)
            stray = stray or chunk.stray
            continue
        problems += chunk.problems
        for signed_size, stack in chunk.stacks.items():
            if merkle.combine_range(prefix + stack) != expected_roots.pop(signed_size):
                problems.append(
                    (
                        (signed_size - 1, _END),
                        f"The first {signed_size} entries do not match the checkpoint signed "
                        "for them: an entry at or before that point was edited, removed, added "
                        "or moved.",
                    )
                )
        size = chunk.start + chunk.count
        stray = stray or chunk.stray
        if chunk.stop is not None:
            problems.append(chunk.stop)
            return _report(report, problems)
        if chunk.count < width:
            ended, tail = True, chunk.frontier
            continue
        node, index, level = chunk.frontier[0], chunk.start >> CHUNK_LEVEL, CHUNK_LEVEL
        # Each trailing 1 bit of the chunk's number is a perfect subtree waiting on the left.
        while index & 1:
            node = merkle.node_hash(prefix.pop(), node)
            index, level = index >> 1, level + 1
            at = ((index + 1) << level) - 1
            stored = high.pop((level, index), None)
            if stored is None:
                problems.append(
                    ((at, level), f"The stored tree is missing a hash near entry {at}.")
                )
            elif differs(node, stored):
                problems.append(
                    (
                        (at, level),
                        f"The stored tree hash above entry {at} does not match the entries.",
                    )
                )
        prefix.append(node)
        problems = sorted(problems)[:MAX_PROBLEMS]
    _report(report, problems)
    report.size = size
    if stray or high:
        report.add("The stored tree has hashes for entries that are not there.")
    for signed_size in sorted(expected_roots):
        report.add(f"A checkpoint was signed for {signed_size} entries, but only {size} remain.")
    if size != head_size:
        report.add(f"The ledger says it holds {head_size} entries, but {size} are there.")
    elif head and b"".join(prefix + tail) != raw(head[0][1]):
        report.add("The ledger's record of its own tree does not match the entries.")


def _report(report: VerifyReport, problems: list[Problem]) -> None:
    for _, problem in sorted(problems):
        report.add(problem)


def _verify_rows(session: Session, report: VerifyReport, progress: Progress | None) -> None:
    creating: dict[str, list[str]] = {}
    for kind in event_kinds().values():
        if kind.creates_rows:
            creating.setdefault(kind.table, []).append(kind.name)
        table = kind.sql_table
        entry = LedgerEntry.__table__  # type: ignore[attr-defined]
        # Core columns read by position (the vouched ones from the 4th on): the ORM result
        # and by-name look-ups cost more per row than the digest itself.
        statement = (
            select(
                entry.c.idx,
                entry.c.leaf,
                table.c.id.label("described_id"),
                *(table.c[name] for name in kind.columns),
            )
            .join_from(entry, table, table.c.id == entry.c.row_id, isouter=True)
            .where(entry.c.kind == kind.name)
            .order_by(entry.c.idx)
            .execution_options(stream_results=True, yield_per=STREAM_BATCH)
        )
        for row in session.connection().execute(statement):
            report.rows_checked += 1
            idx, leaf = row[0], row[1]
            if row[2] is None:
                report.add(f"Entry {idx} describes a {kind.table} row that has been removed.")
                continue
            try:
                vouched = json.loads(leaf)["row_sha256"]
            except (ValueError, KeyError, TypeError):
                report.add(f"Entry {idx} is not a ledger leaf we can read.")
                continue
            if digest_values(row[3:]) != vouched:
                report.add(f"The {kind.table} row behind entry {idx} has been changed.")
    for table_name, kinds in creating.items():
        model_kind = next(k for k in event_kinds().values() if k.table == table_name)
        table = model_kind.sql_table
        # NOT EXISTS, not NOT IN: PostgreSQL runs NOT IN over a subquery too big for work_mem
        # as a nested loop (hours at a million rows), NOT EXISTS as an anti-join.
        announced = (
            select(col(LedgerEntry.idx))
            .where(
                col(LedgerEntry.row_table) == table_name,
                col(LedgerEntry.row_id) == table.c.id,
                col(LedgerEntry.kind).in_(kinds),
            )
            .exists()
        )
        unannounced = session.execute(select(table.c.id).where(~announced).limit(1)).first()
        if unannounced is not None:
            report.add(f"A {table_name} row was added without a ledger entry.")
    # Every event happens to a row once (recorded, given, revoked, erased...). A second leaf
    # of the same kind for the same row is a replay, even one appended at the end with the
    # tree rebuilt around it, where no checkpoint covers it yet.
    # Grouped in the order of ix_ledger_entry_row_kind and without reading idx, PostgreSQL
    # finds a repeat with an index-only scan instead of hashing or sorting every entry; only
    # a group found to repeat is then read for its entry number.
    entry_key = (col(LedgerEntry.row_table), col(LedgerEntry.row_id), col(LedgerEntry.kind))
    repeated = session.execute(
        select(*entry_key).group_by(*entry_key).having(func.count() > 1).limit(1)
    ).first()
    if repeated is not None:
        latest = session.execute(
            select(func.max(col(LedgerEntry.idx))).where(
                *(column == value for column, value in zip(entry_key, repeated, strict=True))
            )
        ).scalar()
        report.add(f"Entry {latest} repeats an earlier entry: it is a replay.")
    if progress is not None:
        progress(0)


def node_count(session: Session) -> int:
    """How many inner tree hashes are stored (for status output)."""
    return int(session.execute(select(func.count()).select_from(LedgerNode)).scalar() or 0)
