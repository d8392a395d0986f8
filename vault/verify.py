"""``tellonce ledger verify``: recompute every leaf hash, the tree and the row digests, and
check every signed checkpoint. Memory stays flat however long the log is.

It answers with the first problem found (an edited, removed, inserted or reordered entry, a
changed row, a forged checkpoint), so an operator knows where to look.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
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


def _stream(session: Session, sql: str) -> Iterator[Any]:
    connection = session.connection().execution_options(stream_results=True)
    result = connection.exec_driver_sql(sql)
    while True:
        rows = result.fetchmany(STREAM_BATCH)
        if not rows:
            return
        yield from rows


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
    builder = merkle.TreeBuilder()
    nodes = _stream(
        session,
        "SELECT level, idx, hash FROM ledger_node ORDER BY (idx + 1) * "
        "(CAST(1 AS BIGINT) << level), level",
    )
    next_node = next(nodes, None)
    sha = hashlib.sha256
    for idx, leaf, stored_hash in _stream(
        session, "SELECT idx, leaf, leaf_hash FROM ledger_entry ORDER BY idx"
    ):
        if idx != builder.size:
            if idx > builder.size:
                report.add(f"Entry {builder.size} is missing.")
            else:
                report.add(f"Entry {idx} appears twice.")
            return
        leaf = bytes(leaf)
        computed = sha(b"\x00" + leaf).digest()
        if computed != bytes(stored_hash):
            report.add(f"Entry {idx} has been changed: its hash does not match its content.")
        for level, index, node in builder.append(computed):
            if level == 0:
                continue
            if next_node is None or (int(next_node[0]), int(next_node[1])) != (level, index):
                report.add(f"The stored tree is missing a hash near entry {idx}.")
            elif bytes(next_node[2]) != node:
                report.add(f"The stored tree hash above entry {idx} does not match the entries.")
            else:
                next_node = next(nodes, None)
                continue
            next_node = next(nodes, None)
        size = builder.size
        if size in expected_roots and expected_roots.pop(size) != builder.root():
            report.add(
                f"The first {size} entries do not match the checkpoint signed for them: "
                "an entry at or before that point was edited, removed, added or moved."
            )
        if progress is not None and size % STREAM_BATCH == 0:
            progress(STREAM_BATCH)
    report.size = builder.size
    if progress is not None:
        progress(builder.size % STREAM_BATCH)
    if next_node is not None:
        report.add("The stored tree has hashes for entries that are not there.")
    for size in sorted(expected_roots):
        report.add(f"A checkpoint was signed for {size} entries, but only {builder.size} remain.")
    if builder.size != head_size:
        report.add(f"The ledger says it holds {head_size} entries, but {builder.size} are there.")
    elif head is not None and b"".join(builder.frontier) != bytes(head.frontier):
        report.add("The ledger's record of its own tree does not match the entries.")


def _verify_rows(session: Session, report: VerifyReport, progress: Progress | None) -> None:
    creating: dict[str, list[str]] = {}
    for kind in event_kinds().values():
        if kind.creates_rows:
            creating.setdefault(kind.table, []).append(kind.name)
        table = kind.sql_table
        columns = [table.c[name] for name in kind.columns]
        statement = (
            select(col(LedgerEntry.idx), col(LedgerEntry.leaf), col(LedgerEntry.row_id), table)
            .join_from(LedgerEntry, table, table.c.id == col(LedgerEntry.row_id), isouter=True)
            .where(col(LedgerEntry.kind) == kind.name)
            .order_by(col(LedgerEntry.idx))
            .execution_options(stream_results=True, yield_per=STREAM_BATCH)
        )
        for row in session.execute(statement):
            report.rows_checked += 1
            idx, leaf = row[0], row[1]
            if row._mapping[table.c.id] is None:
                report.add(f"Entry {idx} describes a {kind.table} row that has been removed.")
                continue
            try:
                vouched = json.loads(leaf)["row_sha256"]
            except (ValueError, KeyError, TypeError):
                report.add(f"Entry {idx} is not a ledger leaf we can read.")
                continue
            mapping = row._mapping
            if digest_values(mapping[column] for column in columns) != vouched:
                report.add(f"The {kind.table} row behind entry {idx} has been changed.")
    for table_name, kinds in creating.items():
        model_kind = next(k for k in event_kinds().values() if k.table == table_name)
        table = model_kind.sql_table
        announced = select(col(LedgerEntry.row_id)).where(col(LedgerEntry.kind).in_(kinds))
        unannounced = session.execute(
            select(table.c.id).where(table.c.id.not_in(announced)).limit(1)
        ).first()
        if unannounced is not None:
            report.add(f"A {table_name} row was added without a ledger entry.")
    if progress is not None:
        progress(0)


def node_count(session: Session) -> int:
    """How many inner tree hashes are stored (for status output)."""
    from sqlalchemy import func

    return int(session.execute(select(func.count()).select_from(LedgerNode)).scalar() or 0)
