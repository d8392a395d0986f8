"""``tellonce ledger verify``: recompute every leaf hash, the tree and the row digests, and
check every signed checkpoint. Memory stays flat however long the log is.

It answers with the first problem found (an edited, removed, inserted or reordered entry, a
changed row, a forged checkpoint), so an operator knows where to look.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from vault import merkle, note
from vault.errors import InvalidValue
from vault.models import LedgerCheckpoint, LedgerEntry, LedgerHead, LedgerNode
from vault.rows import digest_values, event_kinds
from vault.services import Vault

STREAM_BATCH = 10_000
MAX_PROBLEMS = 20


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
_cursor_names = itertools.count()


def _stream(session: Session, sql: str) -> Iterator[Any]:
    connection = session.connection()
    # A DB-API cursor inside the session's transaction, giving plain tuples: wrapping a
    # million rows in SQLAlchemy Row objects took longer than hashing them. PostgreSQL gets
    # a named (server-side) cursor, so memory stays flat.
    dbapi = connection.connection
    if connection.dialect.supports_server_side_cursors:
        cursor = dbapi.cursor(f"tellonce_verify_{next(_cursor_names)}")
    else:
        cursor = dbapi.cursor()
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(STREAM_BATCH):
            yield from rows
    finally:
        cursor.close()


def _raw(value: Any) -> bytes:
    # SQLite lets a hand edit store text where bytes belong; that is a change to report,
    # not a reason to crash.
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def verify_ledger(
    session: Session, vault: Vault, *, progress: Progress | None = None, rows: bool = True
) -> VerifyReport:
    """Check the whole log (and, with ``rows``, every row it vouches for)."""
    report = VerifyReport()
    _verify_log(session, vault, report, progress)
    if rows:
        _verify_rows(session, report, progress)
    return report


def _checkpoints(session: Session, vault: Vault, report: VerifyReport) -> dict[int, bytes]:
    verifier = note.verifier_key(vault.ledger_origin, vault.checkpoint_key.public_key())
    expected: dict[int, bytes] = {}
    for row in session.execute(select(LedgerCheckpoint)).scalars():
        report.checkpoints += 1
        try:
            signed = note.parse_checkpoint(note.open_note(row.note, verifier))
        except InvalidValue:
            report.add(f"The checkpoint for size {row.size} has a bad signature.")
            continue
        if signed.origin != vault.ledger_origin or signed.size != row.size:
            report.add(f"The checkpoint for size {row.size} names another log or size.")
        elif signed.root_hash != bytes(row.root_hash):
            report.add(f"The checkpoint for size {row.size} does not match its signed note.")
        expected[signed.size] = signed.root_hash
    return expected


def _verify_log(
    session: Session, vault: Vault, report: VerifyReport, progress: Progress | None
) -> None:
    expected_roots = _checkpoints(session, vault, report)
    head = session.get(LedgerHead, 1)
    head_size = head.size if head else 0
    nodes = _stream(
        session,
        "SELECT level, idx, hash FROM ledger_node ORDER BY (idx + 1) * "
        "(CAST(1 AS BIGINT) << level), level",
    )
    next_node = next(nodes, None)
    sha = hashlib.sha256
    # The tree is rebuilt here from a plain stack of perfect-subtree roots (merkle.TreeBuilder's
    # frontier), merging as each leaf arrives, so every node it completes is compared with the
    # stored one in the order they are read, without building lists per leaf.
    stack: list[bytes] = []
    size = 0
    for idx, leaf, stored_hash in _stream(
        session, "SELECT idx, leaf, leaf_hash FROM ledger_entry ORDER BY idx"
    ):
        if idx != size:
            if idx > size:
                report.add(f"Entry {size} is missing.")
            else:
                report.add(f"Entry {idx} appears twice.")
            return
        if type(leaf) is not bytes:
            leaf = _raw(leaf)
        node = sha(b"\x00" + leaf).digest()
        if node != stored_hash and node != _raw(stored_hash):
            report.add(f"Entry {idx} has been changed: its hash does not match its content.")
        # Each trailing 1 bit of the size is a perfect subtree waiting to merge on the left.
        index, level = size, 0
        while index & 1:
            node = sha(b"\x01" + stack.pop() + node).digest()
            index >>= 1
            level += 1
            if next_node is None or next_node[0] != level or next_node[1] != index:
                report.add(f"The stored tree is missing a hash near entry {idx}.")
            elif next_node[2] != node and _raw(next_node[2]) != node:
                report.add(f"The stored tree hash above entry {idx} does not match the entries.")
            else:
                next_node = next(nodes, None)
                continue
            next_node = next(nodes, None)
        stack.append(node)
        size += 1
        if size in expected_roots and expected_roots.pop(size) != _root(size, stack):
            report.add(
                f"The first {size} entries do not match the checkpoint signed for them: "
                "an entry at or before that point was edited, removed, added or moved."
            )
        if progress is not None and size % STREAM_BATCH == 0:
            progress(STREAM_BATCH)
    report.size = size
    if progress is not None:
        progress(size % STREAM_BATCH)
    if next_node is not None:
        report.add("The stored tree has hashes for entries that are not there.")
    for signed_size in sorted(expected_roots):
        report.add(f"A checkpoint was signed for {signed_size} entries, but only {size} remain.")
    if size != head_size:
        report.add(f"The ledger says it holds {head_size} entries, but {size} are there.")
    elif head is not None and b"".join(stack) != bytes(head.frontier):
        report.add("The ledger's record of its own tree does not match the entries.")


def _root(size: int, stack: list[bytes]) -> bytes:
    return merkle.TreeBuilder.from_frontier(size, stack).root()


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
