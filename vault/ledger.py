"""The tamper-evident log: append leaves inside the caller's transaction, sign checkpoints,
and serve RFC 9162 inclusion and consistency proofs.

Appends are sequenced in the transaction: the writer locks the single ``ledger_head`` row
(``BEGIN IMMEDIATE`` already makes SQLite writers take turns; PostgreSQL uses ``FOR UPDATE``),
takes the next indexes, stores the leaves and the newly completed subtree hashes, and moves
the head. If any of that fails, the caller's change rolls back with it (fail closed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel, col

from vault import merkle, note
from vault.errors import InvalidValue, LedgerError
from vault.ledger_rows import BULK_FROM, CopyFailed, copy_rows, insert_rows
from vault.models import LedgerCheckpoint, LedgerEntry, LedgerHead, LedgerNode
from vault.rows import canonical_json, event_kind, row_digest
from vault.services import Vault

# Format 2 names the citizen differently in every leaf (format 1 used one name per person,
# which let anyone holding one of their leaves find all the others).
LEAF_FORMAT = 2
MAX_ENTRIES_PAGE = 1000
_RESERVED = frozenset({"v", "kind", "at", "ref", "row_sha256", "citizen"})
_ENTRY_TABLE = LedgerEntry.__table__  # type: ignore[attr-defined]
_NODE_TABLE = LedgerNode.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, repr=False)
class CitizenLedgerKey:
    """A person's own ledger key: it names each leaf about them, and only it can link them."""

    secret: bytes

    def name_for(self, body: bytes) -> str:
        """The person's name in one leaf: an HMAC over the rest of that leaf."""
        return hmac.new(self.secret, _NAME_LABEL + body, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:  # never print the key
        return "CitizenLedgerKey(…)"


_NAME_LABEL = b"tellonce-ledger-leaf-name\x00"


@dataclass(frozen=True)
class LedgerEvent:
    """Something to record: its kind, the row it describes, and ids/keys/versions (no values)."""

    kind: str
    row: SQLModel
    at: datetime
    citizen_key: CitizenLedgerKey | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LeafReceipt:
    """Where an event landed in the log."""

    index: int
    leaf_hash: bytes
    leaf: bytes

    @property
    def leaf_hash_b64(self) -> str:
        return base64.b64encode(self.leaf_hash).decode("ascii")


@dataclass(frozen=True)
class Checkpoint:
    """A signed tree head."""

    size: int
    root_hash: bytes
    note: str
    created_at: datetime


def leaf_bytes(event: LedgerEvent) -> bytes:
    """The canonical JSON leaf for an event, exactly as hashed."""
    kind = event_kind(event.kind)
    clash = _RESERVED.intersection(event.details)
    if clash:
        raise LedgerError(f"Ledger details may not use the reserved names {sorted(clash)}.")
    row_id = getattr(event.row, "id", None)
    if row_id is None:
        raise LedgerError("A ledger event must describe a row that has an id.")
    body: dict[str, Any] = {
        **event.details,
        "v": LEAF_FORMAT,
        "kind": kind.name,
        "at": event.at.isoformat(),
        "ref": {"table": kind.table, "id": str(row_id)}
        if kind.id_in_leaf
        else {"table": kind.table},
        "row_sha256": row_digest(kind, event.row),
    }
    if event.citizen_key is None:
        return canonical_json(body)
    # A different name in every leaf: a department that knows one leaf about a person (its own
    # grant) cannot use it to find the person's other leaves. Only the person's key links them.
    # The name goes in its sorted place, between the members either side of "citizen" (there
    # is always one each side: "at", and "v"), so those are encoded once for both leaves.
    before = canonical_json({k: v for k, v in body.items() if k < "citizen"})[:-1]
    after = canonical_json({k: v for k, v in body.items() if k > "citizen"})[1:]
    name = event.citizen_key.name_for(before + b"," + after)
    return before + b',"citizen":"' + name.encode("ascii") + b'",' + after


def is_about(key: CitizenLedgerKey, leaf: bytes) -> bool:
    """Whether a leaf names the person whose ledger key this is."""
    try:
        body = json.loads(leaf)
    except ValueError:
        return False
    if not isinstance(body, dict) or body.get("v") != LEAF_FORMAT:
        return False
    name = body.pop("citizen", None)
    if not isinstance(name, str):
        return False
    return hmac.compare_digest(name, key.name_for(canonical_json(body)))


def _split_frontier(blob: bytes) -> list[bytes]:
    return [blob[i : i + 32] for i in range(0, len(blob), 32)]


# Built once: every request that records anything runs one of them. populate_existing: never
# trust a copy of the head loaded earlier in the session. SQLite writers already take turns.
_HEAD = select(LedgerHead).where(col(LedgerHead.id) == 1).execution_options(populate_existing=True)
_HEAD_LOCKED = _HEAD.with_for_update()


def _lock_head(session: Session) -> LedgerHead:
    sqlite = session.get_bind().dialect.name == "sqlite"
    head = session.execute(_HEAD if sqlite else _HEAD_LOCKED).scalar_one_or_none()
    if head is None:
        raise LedgerError("The ledger has not been set up. Run `tellonce db upgrade`.")
    return head


def append(session: Session, vault: Vault, events: Sequence[LedgerEvent]) -> list[LeafReceipt]:
    """Append events as leaves inside the session's transaction; return where each landed."""
    if not events:
        return []
    try:
        session.flush()  # the described rows must exist in this transaction first
        head = _lock_head(session)
        builder = merkle.TreeBuilder.from_frontier(head.size, _split_frontier(head.frontier))
        first = builder.size
        leaves, hashes = _store_leaves(session, first, events)
        nodes = builder.extend_reporting(hashes)
        if nodes:
            insert_rows(session, _NODE_TABLE, nodes)
        now = vault.clock()
        new_head = {"size": builder.size, "frontier": b"".join(builder.frontier)}
        due = (
            head.checkpointed_at is None or now - head.checkpointed_at >= vault.checkpoint_interval
        )
        if due:
            new_head["checkpointed_at"] = now
        session.execute(update(LedgerHead).where(col(LedgerHead.id) == 1).values(**new_head))
        if due:
            _store_checkpoint(session, vault, builder.size, builder.root(), now)
    except (SQLAlchemyError, CopyFailed) as exc:
        raise LedgerError("The ledger could not be written, so the change was not made.") from exc
    return [
        LeafReceipt(first + i, hashed, leaf)
        for i, (leaf, hashed) in enumerate(zip(leaves, hashes, strict=True))
    ]


def _store_leaves(
    session: Session, first: int, events: Sequence[LedgerEvent]
) -> tuple[list[bytes], list[bytes]]:
    """Build the events' leaves and store them from index ``first``; return leaves and hashes."""
    kinds = [event_kind(event.kind) for event in events]
    row_ids = [str(getattr(event.row, "id", None)) for event in events]
    if len(events) >= BULK_FROM and session.connection().dialect.name == "postgresql":
        # Each row is sent as soon as its leaf is built, so the server stores (and indexes)
        # the first rows while the later ones are still being built.
        leaves: list[bytes] = []
        hashes: list[bytes] = []
        with copy_rows(session, "ledger_entry") as write:
            for i, (event, kind, row_id) in enumerate(zip(events, kinds, row_ids, strict=True)):
                leaf = leaf_bytes(event)
                hashed = merkle.leaf_hash(leaf)
                write((first + i, leaf, hashed, kind.name, kind.table, row_id))
                leaves.append(leaf)
                hashes.append(hashed)
        return leaves, hashes
    leaves = [leaf_bytes(event) for event in events]
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    rows = zip(
        range(first, first + len(events)),
        leaves,
        hashes,
        [kind.name for kind in kinds],
        [kind.table for kind in kinds],
        row_ids,
        strict=True,
    )
    insert_rows(session, _ENTRY_TABLE, list(rows))
    return leaves, hashes


def _store_checkpoint(
    session: Session, vault: Vault, size: int, root: bytes, now: datetime
) -> Checkpoint:
    body = note.checkpoint_body(vault.ledger_origin, size, root)
    signed = note.sign_note(body, vault.ledger_origin, vault.checkpoint_key)
    existing = session.get(LedgerCheckpoint, size)
    if existing is not None:
        return Checkpoint(existing.size, existing.root_hash, existing.note, existing.created_at)
    session.add(LedgerCheckpoint(size=size, root_hash=root, note=signed, created_at=now))
    return Checkpoint(size, root, signed, now)


def head_size(session: Session) -> int:
    """How many leaves the log holds."""
    size = session.execute(select(col(LedgerHead.size)).where(col(LedgerHead.id) == 1)).scalar()
    return int(size or 0)


def make_checkpoint(session: Session, vault: Vault) -> Checkpoint | None:
    """Sign a checkpoint for the log as it is now (None while the log is empty)."""
    head = _lock_head(session)
    if head.size == 0:
        return None
    builder = merkle.TreeBuilder.from_frontier(head.size, _split_frontier(head.frontier))
    now = vault.clock()
    head.checkpointed_at = now
    session.add(head)
    return _store_checkpoint(session, vault, head.size, builder.root(), now)


def latest_checkpoint(session: Session) -> Checkpoint | None:
    """The newest stored checkpoint, if any."""
    row = session.execute(
        select(LedgerCheckpoint).order_by(col(LedgerCheckpoint.size).desc()).limit(1)
    ).scalar_one_or_none()
    if row is None:
        return None
    return Checkpoint(row.size, row.root_hash, row.note, row.created_at)


def verifier_key(vault: Vault) -> str:
    """The public note verifier key for checkpoints: name+keyhash+base64(0x01||pubkey)."""
    return note.verifier_key(vault.ledger_origin, vault.checkpoint_key.public_key())


_NODES_BY_ADDRESS = text(
    "SELECT n.level, n.idx, n.hash FROM unnest(CAST(:levels AS integer[]), "
    "CAST(:idxs AS bigint[])) AS wanted(level, idx) "
    "JOIN ledger_node n ON n.level = wanted.level AND n.idx = wanted.idx"
)


def _fetch_nodes(session: Session, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    found: dict[tuple[int, int], bytes] = {}
    leaves = sorted(i for level, i in wanted if level == 0)
    inner = sorted((level, i) for level, i in wanted if level > 0)
    if leaves:
        rows = session.execute(
            select(col(LedgerEntry.idx), col(LedgerEntry.leaf_hash)).where(
                col(LedgerEntry.idx).in_(leaves)
            )
        )
        found.update(((0, int(i)), bytes(h)) for i, h in rows)
    if inner and session.get_bind().dialect.name == "postgresql":
        # One statement of the same text whatever the proof's length (psycopg prepares it
        # after a few uses on a connection), joining the wanted addresses to the primary key:
        # the OR form below costs more to build and plan with every extra level of the tree.
        rows = session.execute(
            _NODES_BY_ADDRESS,
            {"levels": [level for level, _ in inner], "idxs": [i for _, i in inner]},
        )
        found.update(((int(level), int(i)), bytes(h)) for level, i, h in rows)
    elif inner:
        # One (level = ? AND idx = ?) term per node, not a row-value IN: SQLite answers the
        # IN form with a scan of the whole table, the OR form with primary-key look-ups.
        rows = session.execute(
            select(col(LedgerNode.level), col(LedgerNode.idx), col(LedgerNode.hash)).where(
                or_(
                    *(
                        and_(col(LedgerNode.level) == level, col(LedgerNode.idx) == i)
                        for level, i in inner
                    )
                )
            )
        )
        found.update(((int(level), int(i)), bytes(h)) for level, i, h in rows)
    missing = wanted - found.keys()
    if missing:
        raise LedgerError("The ledger is missing stored hashes; run `tellonce ledger verify`.")
    return found


def _resolve(session: Session, plan: list[list[tuple[int, int]]]) -> list[bytes]:
    nodes = _fetch_nodes(session, {address for element in plan for address in element})
    return [merkle.combine_range([nodes[address] for address in element]) for element in plan]


def inclusion_proof(session: Session, index: int, tree_size: int) -> list[bytes]:
    """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``tree_size`` leaves."""
    size = head_size(session)
    if not 0 < tree_size <= size:
        raise InvalidValue(f"Tree size must be between 1 and {size}.")
    if not 0 <= index < tree_size:
        raise InvalidValue(f"Index must be between 0 and {tree_size - 1}.")
    return _resolve(session, merkle.inclusion_proof_plan(index, tree_size))


def consistency_proof(session: Session, old_size: int, new_size: int) -> list[bytes]:
    """RFC 9162 consistency proof between two tree sizes."""
    size = head_size(session)
    if not 0 < new_size <= size:
        raise InvalidValue(f"The newer tree size must be between 1 and {size}.")
    if not 0 < old_size <= new_size:
        raise InvalidValue(f"The older tree size must be between 1 and {new_size}.")
    return _resolve(session, merkle.consistency_proof_plan(old_size, new_size))


def root_at(session: Session, tree_size: int) -> bytes:
    """The root hash of the first ``tree_size`` leaves, from stored subtree hashes."""
    if tree_size == 0:
        return merkle.EMPTY_ROOT
    return _resolve(session, [merkle.range_nodes(0, tree_size)])[0]


def entries(session: Session, start: int, end: int) -> list[tuple[int, bytes]]:
    """Leaves ``start`` to ``end - 1`` (at most MAX_ENTRIES_PAGE of them), as stored."""
    size = head_size(session)
    if start < 0 or end <= start or start >= size:
        raise InvalidValue(f"Ask for entries between 0 and {size} with start below end.")
    end = min(end, size, start + MAX_ENTRIES_PAGE)
    rows = session.execute(
        select(col(LedgerEntry.idx), col(LedgerEntry.leaf))
        .where(col(LedgerEntry.idx) >= start, col(LedgerEntry.idx) < end)
        .order_by(col(LedgerEntry.idx))
    )
    return [(int(i), bytes(leaf)) for i, leaf in rows]
