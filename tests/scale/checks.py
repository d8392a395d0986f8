"""What the scale tests and scripts/soak check in the database once the load has stopped."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.engine import Engine

from vault.db import session_scope
from vault.services import Vault
from vault.verify import verify_ledger


def ledger_problems(engine: Engine, vault: Vault) -> list[str]:
    """One gap-free log (idx 0..n-1, n = the head's size), and `ledger verify` passes."""
    problems = []
    with engine.connect() as connection:
        indexes = [
            int(i) for i in connection.execute(text("SELECT idx FROM ledger_entry")).scalars()
        ]
        size = int(
            connection.execute(text("SELECT size FROM ledger_head WHERE id = 1")).scalar_one()
        )
    indexes.sort()
    if indexes != list(range(len(indexes))):
        missing = sorted(set(range(len(indexes))) - set(indexes))[:10]
        problems.append(f"the ledger has gaps or duplicates (missing e.g. {missing})")
    if size != len(indexes):
        problems.append(f"the ledger head says {size} leaves, the table holds {len(indexes)}")
    with session_scope(engine) as session:
        report = verify_ledger(session, vault)
    if not report.ok:
        problems += [f"ledger verify: {p}" for p in report.problems]
    if report.size != len(indexes):
        problems.append(f"verify saw {report.size} leaves, the table holds {len(indexes)}")
    return problems


def leaf_indexes(engine: Engine, table: str, kind: str, row_ids: Iterable[str]) -> dict[str, int]:
    """The ledger index of each row's leaf of one kind (rows without such a leaf are left out)."""
    wanted = set(row_ids)
    found: dict[str, int] = {}
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT row_id, idx FROM ledger_entry WHERE row_table = :t AND kind = :k"),
            {"t": table, "k": kind},
        )
        for row_id, idx in rows:
            if row_id in wanted:
                found[str(row_id)] = int(idx)
    return found
