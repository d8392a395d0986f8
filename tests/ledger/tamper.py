"""What an attacker with write access to the database might do to the ledger and its rows.

Each function edits one throwaway copy through a SQLAlchemy connection inside an open
transaction, using the model tables so values go through the same types the app uses.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, func, select, update
from sqlmodel import SQLModel

from vault import merkle, note

TABLES = SQLModel.metadata.tables
ENTRY = TABLES["ledger_entry"]
NODE = TABLES["ledger_node"]
HEAD = TABLES["ledger_head"]
CHECKPOINT = TABLES["ledger_checkpoint"]
# An outsider's key: anything it signs must never pass for ours.
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"not the ledger").digest())


def flip_byte(value: bytes, position: int, mask: int) -> bytes:
    """XOR one byte (mask 1..255, so it always changes)."""
    changed = bytearray(value)
    changed[position % len(changed)] ^= mask
    return bytes(changed)


def flip_char(value: str, position: int, step: int) -> str:
    """Swap one character for a different printable ASCII one (valid text in any database)."""
    at = position % len(value)
    old = ord(value[at]) - 32 if " " <= value[at] <= "~" else 0
    new = chr((old + 1 + step % 94) % 95 + 32)
    return value[:at] + new + value[at + 1 :]


def entry_of(connection: Connection, index: int) -> dict[str, Any]:
    """One ledger entry as a dict of its columns."""
    return dict(connection.execute(select(ENTRY).where(ENTRY.c.idx == index)).one()._mapping)


def set_entry(connection: Connection, index: int, **values: Any) -> None:
    """Overwrite columns of the entry at ``index``."""
    connection.execute(update(ENTRY).where(ENTRY.c.idx == index).values(**values))


def shift_entries(connection: Connection, start: int, by: int) -> None:
    """Renumber entries from ``start`` on by ``by`` (unique indexes at every step)."""
    # Park them at negative indexes first: databases check the key row by row.
    connection.execute(update(ENTRY).where(ENTRY.c.idx >= start).values(idx=-ENTRY.c.idx - 1))
    connection.execute(update(ENTRY).where(ENTRY.c.idx < 0).values(idx=-ENTRY.c.idx - 1 + by))


def rebuild_tree(connection: Connection) -> None:
    """Recompute every leaf hash, stored subtree hash and the head from the entries as they are:
    what a careful attacker does so that only the signed checkpoints can give them away."""
    rows = connection.execute(
        select(ENTRY.c.idx, ENTRY.c.leaf, ENTRY.c.leaf_hash).order_by(ENTRY.c.idx)
    ).all()
    builder = merkle.TreeBuilder()
    wanted: dict[tuple[int, int], bytes] = {}
    new_hashes: list[tuple[Any, ...]] = []
    for index, leaf, stored_hash in rows:
        assert index == builder.size, "rebuild_tree needs gap-free entries"
        hashed = merkle.leaf_hash(bytes(leaf))
        if hashed != bytes(stored_hash):
            new_hashes.append((hashed, index))
        for level, node_index, node in builder.append(hashed)[1:]:
            wanted[(level, node_index)] = node
    stored = {
        (level, index): bytes(node)
        for level, index, node in connection.execute(select(NODE.c.level, NODE.c.idx, NODE.c.hash))
    }
    # Touch only what differs, so a small edit stays a small (and quick) write.
    gone = list(stored.keys() - wanted.keys())
    changed = [(h, lv, i) for (lv, i), h in wanted.items() if stored.get((lv, i), h) != h]
    added = [(lv, i, h) for (lv, i), h in wanted.items() if (lv, i) not in stored]
    _many(connection, "UPDATE ledger_entry SET leaf_hash = ? WHERE idx = ?", new_hashes)
    _many(connection, "DELETE FROM ledger_node WHERE level = ? AND idx = ?", gone)
    _many(connection, "UPDATE ledger_node SET hash = ? WHERE level = ? AND idx = ?", changed)
    _many(connection, "INSERT INTO ledger_node (level, idx, hash) VALUES (?, ?, ?)", added)
    connection.execute(update(HEAD).values(size=builder.size, frontier=b"".join(builder.frontier)))


def _many(connection: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """executemany straight on the driver: thousands of small writes, minus the overhead."""
    if not rows:
        return
    if connection.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def head_size(connection: Connection) -> int:
    """The size the head row claims."""
    return int(connection.execute(select(HEAD.c.size)).scalar_one())


def entry_count(connection: Connection) -> int:
    """How many entries are stored."""
    return int(connection.execute(select(func.count()).select_from(ENTRY)).scalar_one())


def shift_time(value: Any, step: int) -> Any:
    """Move a time by a few microseconds: small enough to miss by eye, not by a digest."""
    return value + timedelta(microseconds=1 + step % 999_999)


def signed_checkpoint(origin: str, size: int, root: bytes, key: Ed25519PrivateKey) -> str:
    """A checkpoint note for ``size`` and ``root``, signed as ``origin`` by ``key``."""
    return note.sign_note(note.checkpoint_body(origin, size, root), origin, key)


def edit_value(value: Any, column: str, position: int, step: int) -> Any:
    """A small, plausible change to one column's value, whatever its type."""
    if isinstance(value, bytes | memoryview):
        return flip_byte(bytes(value), position, 1 + step % 255)
    if column == "data_points" and value and isinstance(value[0], dict):
        served = [dict(item) for item in value]
        served[position % len(served)]["version"] += 1 + step % 5
        return served
    if column == "data_points":
        return [*value, "health.conditions"]
    if column == "sensitivity":
        return "ask_me_each_time" if value == "normal" else "normal"
    if column == "result":
        return "refused" if value == "served" else "served"
    if isinstance(value, str):
        return flip_char(value, position, step)
    if isinstance(value, int):
        return value + 1_000 + step
    return shift_time(value, step)
