"""Tables of the vault layer: accounts, citizens, their records, and the log.

Personal values are never stored in plain text: they live in ``ciphertext`` columns sealed
under the citizen's data key. Rows a ledger leaf describes are never edited in place, except
for the status columns named in ``vault.rows``, which the leaf's row digest leaves out.
"""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from vault.db import UTCDateTime


def new_id() -> str:
    """Return a fresh random id (a UUID in its usual text form)."""
    return str(uuid.uuid4())


def new_time_ordered_id() -> str:
    """Return a fresh UUIDv7 (RFC 9562): the time in milliseconds, then 74 random bits."""
    # For rows the public log names by id. Ids made one after another sort together, so each
    # insert lands at the right-hand edge of the indexes on them instead of on a random page
    # (appends to the ledger were a third faster). The time they carry is no news: the leaf
    # that names the row gives its time already. Ids the log never shows (a person, an
    # account) stay fully random, so they say nothing about when someone joined.
    millis = time.time_ns() // 1_000_000
    value = (millis & (1 << 48) - 1) << 80 | secrets.randbits(80)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # the RFC 9562 variant
    return str(uuid.UUID(int=value))


def _when(nullable: bool = False) -> object:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))


class Citizen(SQLModel, table=True):
    """The owner of a vault. Names and contact details are data points, not columns."""

    __tablename__ = "citizen"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    status: str = Field(default="active", max_length=16)  # active | erased
    # The data key, wrapped by the key provider; deleted on erasure (crypto-shredding).
    wrapped_key: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    kek_version: int | None = Field(default=None)
    # The per-citizen key that names this citizen in ledger leaves, sealed under the data key
    # so that erasure also breaks the link between the person and their leaves.
    ledger_key_sealed: bytes | None = Field(
        default=None, sa_column=Column(LargeBinary, nullable=True)
    )
    created_at: datetime = _when()  # type: ignore[assignment]
    erased_at: datetime | None = _when(nullable=True)  # type: ignore[assignment]


class Account(SQLModel, table=True):
    """Someone who signs in: a citizen, a support worker, or both."""

    __tablename__ = "account"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    # HMAC of the normalised email, for look-up; the email itself is sealed.
    email_lookup: str = Field(max_length=64, unique=True, index=True)
    email_sealed: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    wrapped_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    kek_version: int
    citizen_id: str | None = Field(default=None, foreign_key="citizen.id", max_length=36)
    created_at: datetime = _when()  # type: ignore[assignment]


class DataPoint(SQLModel, table=True):
    """One version of one fact about a citizen. A correction is a new version."""

    __tablename__ = "data_point"
    __table_args__ = (
        UniqueConstraint("citizen_id", "key", "version", name="uq_data_point_version"),
        Index("ix_data_point_citizen_key", "citizen_id", "key"),
    )

    id: str = Field(default_factory=new_time_ordered_id, primary_key=True, max_length=36)
    citizen_id: str = Field(foreign_key="citizen.id", max_length=36)
    key: str = Field(max_length=64)
    version: int
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    source: str = Field(max_length=80)  # self | department:<id> | worker:<id>
    recorded_by: str = Field(max_length=80)
    recorded_at: datetime = _when()  # type: ignore[assignment]
    status: str = Field(default="current", max_length=16)  # current | contested | superseded


class StorySection(SQLModel, table=True):
    """One version of one topic of a citizen's story, in their own words."""

    __tablename__ = "story_section"
    __table_args__ = (
        UniqueConstraint("citizen_id", "topic", "version", name="uq_story_section_version"),
        Index("ix_story_section_citizen_topic", "citizen_id", "topic"),
    )

    id: str = Field(default_factory=new_time_ordered_id, primary_key=True, max_length=36)
    citizen_id: str = Field(foreign_key="citizen.id", max_length=36)
    topic: str = Field(max_length=32)
    version: int
    ciphertext: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sensitivity: str = Field(max_length=24)  # normal | ask_me_each_time
    recorded_by: str = Field(max_length=80)
    recorded_at: datetime = _when()  # type: ignore[assignment]
    status: str = Field(default="current", max_length=16)  # current | superseded


class LedgerEntry(SQLModel, table=True):
    """One leaf of the log: canonical JSON of an event, and its RFC 9162 leaf hash."""

    __tablename__ = "ledger_entry"
    __table_args__ = (
        # Verify reads each kind in log order, and checks rows by (table, id, kind): see 0005.
        Index("ix_ledger_entry_row_kind", "row_table", "row_id", "kind"),
        Index("ix_ledger_entry_kind_idx", "kind", "idx"),
    )

    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    leaf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    leaf_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    kind: str = Field(max_length=48)
    row_table: str = Field(max_length=48)
    row_id: str = Field(max_length=36)


class LedgerNode(SQLModel, table=True):
    """The hash of a perfect subtree above the leaves (level >= 1), kept for fast proofs."""

    # On PostgreSQL, migration 0006 adds (level, idx) INCLUDE (hash), and ledger_entry (idx)
    # INCLUDE (leaf_hash), so a proof is read from indexes alone.
    __tablename__ = "ledger_node"

    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LedgerHead(SQLModel, table=True):
    """The one row that says how big the log is; writers lock it to take the next index."""

    __tablename__ = "ledger_head"

    id: int = Field(default=1, primary_key=True, sa_column_kwargs={"autoincrement": False})
    size: int = 0
    # The roots of the perfect subtrees on the right edge, 32 bytes each, left to right.
    frontier: bytes = Field(default=b"", sa_column=Column(LargeBinary, nullable=False))
    checkpointed_at: datetime | None = _when(nullable=True)  # type: ignore[assignment]


class LedgerCheckpoint(SQLModel, table=True):
    """A signed tree head in the C2SP tlog-checkpoint signed-note format."""

    __tablename__ = "ledger_checkpoint"

    size: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    root_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str
    created_at: datetime = _when()  # type: ignore[assignment]
