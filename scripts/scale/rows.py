"""Real rows for the scale generator: one block of citizens, their facts, grants and fetches.

Every value is what the app itself would write. Each citizen gets a fresh data key wrapped by
the key provider and a ledger key sealed under it (as ``vault.citizens.create_citizen``);
facts are sealed under that data key, bound to row and version (as
``vault.records.record_data_point``); grants and access events have the columns
``consent.grants.give_grant`` and ``consent.access.fetch_for_department`` write. Every row
gets its ledger leaf from ``vault.ledger.leaf_bytes`` with the citizen's ledger key, so
``tellonce ledger verify`` checks them like any other. The only shortcut: the keys are made
here, so nothing is unwrapped again, and rows are plain namespaces, not ORM objects.

Each citizen adds exactly LEAVES_PER_CITIZEN leaves, so a block's first index is known before
it is made and blocks can be built in parallel. Within a block, leaves go in this order:
citizens created, their facts, their grants, then fetches in rounds (one per grant per round),
so one person's access events are spread across the table as they would be in real use.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from consent.events import ACCESS_REFUSED, ACCESS_SERVED, GRANT_GIVEN
from consent.models import AccessEvent, Grant
from vault import catalogue, envelope, ledger
from vault.citizens import key_context
from vault.events import CITIZEN_CREATED, DATA_POINT_RECORDED
from vault.keys import KeyProvider
from vault.models import Citizen, DataPoint, LedgerEntry
from vault.records import DATA_POINT_KIND

# Facts per citizen: four keys, and a second version of the address (a correction), so that
# "current" and "superseded" rows both exist: 5 versions a person.
FACTS: tuple[tuple[str, int], ...] = (
    ("identity.name", 1),
    ("contact.address", 1),
    ("money.income_monthly", 1),
    ("housing.status", 1),
    ("contact.address", 2),
)
SHARED_KEYS = ["identity.name", "contact.address", "money.income_monthly"]
FETCHES_PER_GRANT = 10
# One fetch in ten comes with the wrong case reference and is refused (and recorded).
REFUSED_ROUND = FETCHES_PER_GRANT - 1
WRONG_CASE = "The case reference does not match this permission."
LEAVES_PER_CITIZEN = 1 + len(FACTS) + 1 + FETCHES_PER_GRANT
DEPARTMENTS = [f"dept-{name}" for name in ("housing", "benefits", "health", "council", "work")]
OFFICERS = ["Officer Lee", "Officer Patel", "Officer Okafor", "Officer Jones"]
# One leaf a second from a fixed start: the full log spans about six months of use.
LEAF_INTERVAL = timedelta(seconds=1)
GRANT_DAYS = 366
MAX_FETCHES = 10_000
_LEDGER_KEY_KIND = "ledger_key"  # as vault.citizens names the sealed ledger key

# Each table's columns as the app's own models declare them, so a new column cannot be missed
# (a row dict without it fails the load with a KeyError instead of loading a wrong table).
_MODELS: dict[str, Any] = {
    "citizen": Citizen,
    "data_point": DataPoint,
    "grant": Grant,
    "access_event": AccessEvent,
    "ledger_entry": LedgerEntry,
}
COLUMNS: dict[str, tuple[str, ...]] = {
    table: tuple(column.name for column in model.__table__.columns)
    for table, model in _MODELS.items()
}
JSON_COLUMNS = {"data_points", "story_topics", "explicit_topics", "story"}
LOAD_ORDER = ("citizen", "data_point", "grant", "access_event", "ledger_entry")


@dataclass
class Block:
    """The rows of one block of citizens, table by table, and its leaf hashes in log order."""

    first_index: int
    rows: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {table: [] for table in LOAD_ORDER}
    )
    leaf_hashes: list[bytes] = field(default_factory=list)
    last_at: datetime | None = None


def leaf_time(start: datetime, index: int) -> datetime:
    """When the leaf at this index happened (one a second from the start)."""
    return start + index * LEAF_INTERVAL


def _new_id() -> str:
    return str(uuid.uuid4())


class _Log:
    """Turns rows into leaves at consecutive indexes, exactly as ``ledger.append`` does."""

    def __init__(self, block: Block, start: datetime) -> None:
        self.block, self.start, self.index = block, start, block.first_index

    def now(self) -> datetime:
        return leaf_time(self.start, self.index)

    def add(
        self,
        kind: Any,
        row: dict[str, Any],
        name_key: ledger.CitizenLedgerKey,
        details: dict[str, Any] | None = None,
    ) -> None:
        at = self.now()
        leaf = ledger.leaf_bytes(
            ledger.LedgerEvent(kind.name, SimpleNamespace(**row), at, name_key, details or {})  # type: ignore[arg-type]
        )
        hashed = hashlib.sha256(b"\x00" + leaf).digest()
        self.block.rows["ledger_entry"].append(
            {
                "idx": self.index,
                "leaf": leaf,
                "leaf_hash": hashed,
                "kind": kind.name,
                "row_table": kind.table,
                "row_id": str(row["id"]),
            }
        )
        self.block.leaf_hashes.append(hashed)
        self.block.last_at = at
        self.index += 1


def make_block(keys: KeyProvider, start: datetime, first_citizen: int, count: int) -> Block:
    """Build ``count`` citizens (numbered from ``first_citizen``) with all their rows."""
    block = Block(first_index=first_citizen * LEAVES_PER_CITIZEN)
    log = _Log(block, start)
    rows = block.rows
    people = []
    for _ in range(count):
        citizen_id = _new_id()
        dek = envelope.new_data_key()
        secret = os.urandom(32)
        wrapped = keys.wrap(dek, key_context("citizen", citizen_id))
        citizen = {
            "id": citizen_id,
            "status": "active",
            "wrapped_key": wrapped,
            "kek_version": keys.version_of(wrapped),
            "ledger_key_sealed": envelope.seal(
                dek,
                secret,
                envelope.associated_data(citizen_id, _LEDGER_KEY_KIND, citizen_id, 1),
            ),
            "created_at": log.now(),
            "erased_at": None,
        }
        rows["citizen"].append(citizen)
        name_key = ledger.CitizenLedgerKey(secret)
        log.add(CITIZEN_CREATED, citizen, name_key)
        people.append((citizen_id, dek, name_key))
    for citizen_id, dek, name_key in people:
        for key, version in FACTS:
            _add_fact(log, citizen_id, dek, name_key, key, version)
    grants = []
    for n, (citizen_id, _dek, name_key) in enumerate(people):
        grants.append((_add_grant(log, first_citizen + n, citizen_id, name_key), name_key))
    for round_ in range(FETCHES_PER_GRANT):
        for grant, name_key in grants:
            _add_access(log, grant, name_key, round_)
    return block


def _add_fact(
    log: _Log,
    citizen_id: str,
    dek: bytes,
    name_key: ledger.CitizenLedgerKey,
    key: str,
    version: int,
) -> None:
    point_id = _new_id()
    superseded = any(k == key and v > version for k, v in FACTS)
    point = {
        "id": point_id,
        "citizen_id": citizen_id,
        "key": key,
        "version": version,
        "ciphertext": envelope.seal_json(
            dek,
            catalogue.entry(key).example,
            envelope.associated_data(citizen_id, DATA_POINT_KIND, point_id, version),
        ),
        "source": "self",
        "recorded_by": "self",
        "recorded_at": log.now(),
        "status": "superseded" if superseded else "current",
    }
    log.block.rows["data_point"].append(point)
    log.add(
        DATA_POINT_RECORDED, point, name_key, {"key": key, "version": version, "source": "self"}
    )


def _add_grant(
    log: _Log, number: int, citizen_id: str, name_key: ledger.CitizenLedgerKey
) -> dict[str, Any]:
    now = log.now()
    grant = {
        "id": _new_id(),
        "citizen_id": citizen_id,
        "department_id": DEPARTMENTS[number % len(DEPARTMENTS)],
        "purpose_code": "emergency_housing",
        "purpose_text": "To find you somewhere safe to stay.",
        "data_points": list(SHARED_KEYS),
        "story_topics": [],
        "explicit_topics": [],
        "case_reference": f"HOU-{number}",
        "starts_at": now,
        "ends_at": now + timedelta(days=GRANT_DAYS),
        "data_life_days": 90,
        "max_fetches": MAX_FETCHES,
        "fetch_count": FETCHES_PER_GRANT - 1,  # every fetch but the refused one counts
        # Accounts are not generated: the label names the citizen's own id instead.
        "given_by": f"citizen:{citizen_id}",
        "delegation_id": None,
        "created_at": now,
        "revoked_at": None,
        "revoked_by": None,
        "expired_at": None,
        "deletion_confirmed_at": None,
        "deletion_confirmed_by": None,
    }
    log.block.rows["grant"].append(grant)
    log.add(
        GRANT_GIVEN,
        grant,
        name_key,
        {
            "grant_id": grant["id"],
            "department_id": grant["department_id"],
            "purpose": grant["purpose_code"],
            "data_points": grant["data_points"],
            "story_topics": grant["story_topics"],
            "by": "citizen",
        },
    )
    return grant


def _add_access(
    log: _Log, grant: dict[str, Any], name_key: ledger.CitizenLedgerKey, round_: int
) -> None:
    refused = round_ == REFUSED_ROUND
    versions = {key: version for key, version in FACTS}
    served = [] if refused else [{"key": k, "version": versions[k]} for k in SHARED_KEYS]
    event = {
        "id": _new_id(),
        "citizen_id": grant["citizen_id"],
        "grant_id": grant["id"],
        "department_id": grant["department_id"],
        "acting_officer": OFFICERS[round_ % len(OFFICERS)],
        "case_reference": "WRONG-1" if refused else grant["case_reference"],
        "data_points": served,
        "story": [],
        "result": "refused" if refused else "served",
        "reason": WRONG_CASE if refused else None,
        "at": log.now(),
    }
    log.block.rows["access_event"].append(event)
    log.add(
        ACCESS_REFUSED if refused else ACCESS_SERVED,
        event,
        name_key,
        {
            "access_id": event["id"],
            "grant_id": grant["id"],
            "department_id": grant["department_id"],
            "data_points": served,
            "story": [],
        },
    )


def start_time(now: datetime | None = None) -> datetime:
    """The first leaf's time: 200 days ago, whole seconds, so every grant is still running."""
    now = now or datetime.now(UTC)
    return (now - timedelta(days=200)).replace(microsecond=0)
