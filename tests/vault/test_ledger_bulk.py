"""A big batch is written by the driver itself (COPY on PostgreSQL, executemany on SQLite): it
stores exactly the rows a small batch would, and fails closed like one."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from tests.ledger.tamper import ENTRY, HEAD, NODE
from vault import ledger, merkle
from vault.errors import LedgerError
from vault.events import DATA_POINT_RECORDED

COUNT = ledger.BULK_FROM + 36


def _events(vault: Any, count: int) -> list[ledger.LedgerEvent]:
    """Events about data point rows (append reads only their attributes)."""
    at = vault.clock()
    key = ledger.CitizenLedgerKey(b"s" * 32)
    return [
        ledger.LedgerEvent(
            DATA_POINT_RECORDED.name,
            SimpleNamespace(
                id=str(uuid.UUID(int=n + 1)),
                citizen_id="c",
                key="identity.name",
                version=n + 1,
                ciphertext=bytes([n % 256]) * 40,
                source="self",
                recorded_by="citizen:c",
                recorded_at=at,
            ),  # type: ignore[arg-type]
            at,
            citizen_key=key,
            details={"key": "identity.name", "version": n + 1},
        )
        for n in range(count)
    ]


def _stored(db: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with db.engine.connect() as connection:
        entries = connection.execute(select(ENTRY).order_by(ENTRY.c.idx)).all()
        nodes = connection.execute(select(NODE).order_by(NODE.c.level, NODE.c.idx)).all()
    return (
        [
            (i, bytes(leaf), bytes(h), kind, table, row_id)
            for i, leaf, h, kind, table, row_id in entries
        ],
        [(level, idx, bytes(h)) for level, idx, h in nodes],
    )


def test_a_big_batch_stores_what_small_ones_would(db: Any, vault: Any) -> None:
    events = _events(vault, COUNT)
    with db.tx() as session:
        receipts = ledger.append(session, vault, events)
    builder = merkle.TreeBuilder()
    want_nodes: list[tuple[int, int, bytes]] = []
    want_entries = []
    for n, event in enumerate(events):
        leaf = ledger.leaf_bytes(event)
        hashed = merkle.leaf_hash(leaf)
        want_nodes += [node for node in builder.append(hashed) if node[0] > 0]
        row_id = event.row.id  # type: ignore[attr-defined]
        want_entries.append((n, leaf, hashed, "data_point.recorded", "data_point", row_id))
        assert (receipts[n].index, receipts[n].leaf, receipts[n].leaf_hash) == (n, leaf, hashed)
    entries, nodes = _stored(db)
    assert entries == want_entries
    assert nodes == sorted(want_nodes)


REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$",
        "CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse()",
    ],
}
MEND = {
    "sqlite": ["DROP TRIGGER IF EXISTS refuse"],
    "postgresql": ["DROP TRIGGER IF EXISTS refuse ON {table}", "DROP FUNCTION IF EXISTS refuse()"],
}


@pytest.mark.parametrize("table", ["ledger_entry", "ledger_node"])
def test_a_big_batch_the_database_refuses_changes_nothing(db: Any, vault: Any, table: str) -> None:
    dialect = db.engine.dialect.name
    with db.tx() as session:
        ledger.append(session, vault, _events(vault, 3))
    before = _stored(db)
    for statement in REFUSE[dialect]:
        db.execute(statement.format(table=table))
    try:
        with pytest.raises(LedgerError) as error, db.tx() as session:
            ledger.append(session, vault, _events(vault, COUNT)[3:])
        assert "disk full" not in error.value.message
        assert _stored(db) == before
        with db.engine.connect() as connection:
            assert connection.execute(select(HEAD.c.size)).scalar() == 3
    finally:
        for statement in MEND[dialect]:
            db.execute(statement.format(table=table))
