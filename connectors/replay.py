"""A replay cache shared by every worker: each one-time token id (a DPoP proof's or a client
assertion's ``jti``) may be used once, and the database remembers it until it has expired.

The check is a single ``INSERT … ON CONFLICT DO NOTHING``, so two workers racing with the same
id cannot both win, and a replay never aborts the caller's transaction on PostgreSQL (a caught
unique-key violation would).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from connectors.models import SeenJti

MAX_KEY_LENGTH = 128  # the width of seen_jti.key
_HASHED_PREFIX = "sha256:"


def storage_key(key: str) -> str:
    """Return the key as stored: itself if short printable ASCII, else a prefix and its SHA-256.

    Ids come from other people's software: a NUL or a lone surrogate would make PostgreSQL
    refuse the row (and abort the transaction), and a long one would not fit, so both are hashed.
    """
    if (
        len(key) <= MAX_KEY_LENGTH
        and key.isascii()
        and key.isprintable()
        and not key.startswith(_HASHED_PREFIX)
    ):
        return key
    # A short key that looks hashed is hashed too, so it cannot collide with another's digest.
    return _HASHED_PREFIX + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


# Built once: remember_jti runs on every API call, and a prebuilt Core statement executed with
# parameters costs about a sixth of building an ORM insert each time.
_TABLE: Table = SeenJti.__table__  # type: ignore[attr-defined]  # SQLModel does not type it
_INSERTS: dict[str, Any] = {
    "postgresql": postgresql.insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.key),
    "sqlite": sqlite.insert(_TABLE).on_conflict_do_nothing().returning(_TABLE.c.key),
}
_PURGE = delete(_TABLE).where(_TABLE.c.expires_at < bindparam("now"))


def remember_jti(session: Session, key: str, expires_at: datetime) -> bool:
    """Record a one-time id; return True if it is new, False if it was seen before (a replay).

    Runs in the caller's transaction and does not commit: if the caller's work fails and rolls
    back, the id is not used up.
    """
    dialect = session.get_bind().dialect.name
    statement = _INSERTS.get(dialect)
    if statement is None:  # pragma: no cover - we only support these two databases
        raise NotImplementedError(f"No replay cache for the {dialect} database.")
    # RETURNING gives a row only when the insert happened; rowcount is not reliable for INSERT
    # on every driver (SQLAlchemy reports -1 for psycopg unless asked to preserve it).
    params = {"key": storage_key(key), "expires_at": expires_at}
    return session.execute(statement, params).first() is not None


def purge_expired(session: Session, now: datetime) -> int:
    """Delete the ids that expired before ``now``; return how many were deleted."""
    result: Any = session.execute(_PURGE, {"now": now})
    return int(result.rowcount or 0)
