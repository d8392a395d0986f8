"""Row digests: the SHA-256 a ledger leaf keeps of the database row it describes.

Each event kind names the table it describes and the columns it vouches for. Columns that
change legitimately later (a status, say) are left out of a kind's digest and vouched for by
a later event instead. ``tellonce ledger verify`` recomputes these digests from the rows.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from sqlalchemy import Table
from sqlmodel import SQLModel

from vault.errors import LedgerError


@dataclass(frozen=True)
class EventKind:
    """What one kind of ledger event describes: a table, and the columns it vouches for."""

    name: str
    model: type[SQLModel]
    columns: tuple[str, ...]
    # True when every row of the table must have been announced by an event of this kind,
    # so that a row slipped in behind the ledger's back is reported.
    creates_rows: bool = False
    # False when the row's id would name a person (a citizen's id): the leaf then says only
    # which table, and the private ledger_entry.row_id column keeps the link for verify.
    id_in_leaf: bool = True

    @property
    def table(self) -> str:
        """The table's name."""
        return str(self.model.__tablename__)

    @property
    def sql_table(self) -> Table:
        """The table itself (SQLModel does not declare ``__table__`` for type checkers)."""
        table = getattr(self.model, "__table__")  # noqa: B009
        assert isinstance(table, Table)
        return table


_KINDS: dict[str, EventKind] = {}


def register_event_kind(
    name: str,
    model: type[SQLModel],
    columns: Iterable[str],
    *,
    creates_rows: bool = False,
    id_in_leaf: bool = True,
) -> EventKind:
    """Declare an event kind; registering the same kind twice the same way is harmless."""
    kind = EventKind(name, model, tuple(columns), creates_rows, id_in_leaf)
    existing = _KINDS.get(name)
    if existing is not None and existing != kind:
        raise LedgerError(f"The event kind {name} is declared twice in different ways.")
    unknown = [c for c in kind.columns if c not in model.model_fields]
    if unknown:
        raise LedgerError(f"The event kind {name} names unknown columns {unknown}.")
    _KINDS[name] = kind
    return kind


def event_kinds() -> Mapping[str, EventKind]:
    """Every declared event kind, by name."""
    return MappingProxyType(_KINDS)


def event_kind(name: str) -> EventKind:
    """Look up a declared event kind."""
    try:
        return _KINDS[name]
    except KeyError:
        raise LedgerError(f"The event kind {name} is not declared.") from None


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or value is None:  # most values, so checked first
        return value
    if isinstance(value, bytes):
        return "b64:" + base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    return value


# One encoder for every call: json.dumps with these options builds a new one each time, which
# cost a third of encoding a leaf's short values.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any) -> bytes:
    """Encode as canonical JSON: sorted keys, no spaces, UTF-8."""
    return _CANONICAL.encode(value).encode("utf-8")


def digest_values(values: Iterable[Any]) -> str:
    """SHA-256 (hex) of a row's vouched-for column values, in the kind's column order."""
    return hashlib.sha256(canonical_json([_plain(v) for v in values])).hexdigest()


def row_digest(kind: EventKind, row: SQLModel) -> str:
    """The digest an event of this kind keeps of this row."""
    return digest_values(getattr(row, column) for column in kind.columns)
