"""Appending to the ledger: canonical leaves that hold ids, times, keys, versions and a row
digest but never a personal value, at gap-free indexes."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlmodel import col

from consent.access import Served, fetch_for_department
from consent.actors import citizen as citizen_actor
from consent.grants import GrantRequest, give_grant, revoke_grant
from tests.ledger.builders import build_log, bulk_data_points
from vault import ledger, rows
from vault.accounts import create_account
from vault.citizens import create_citizen, ledger_key
from vault.errors import InvalidValue
from vault.lifecycle import erase_citizen
from vault.models import LedgerEntry
from vault.records import record_data_point, record_story_section

# Values nobody would write by chance, so finding them anywhere means they leaked.
CANARY_NAME = "Quenby Marchetti-Oyelaran"
CANARY_EMAIL = "quenby.canary@example.org"
CANARY_STORY = "I slept in the Zanzibar Street bus shelter for nine nights."
# A department id with a non-ASCII letter shows whether leaves stay UTF-8 (not \u escapes).
DEPARTMENT = "logement-équipe-7"
HEX64 = re.compile(r"[0-9a-f]{64}")


def _leaves(db: Any) -> list[tuple[int, bytes, bytes, str, str, str]]:
    with db.tx() as session:
        found = session.execute(
            select(
                col(LedgerEntry.idx),
                col(LedgerEntry.leaf),
                col(LedgerEntry.leaf_hash),
                col(LedgerEntry.kind),
                col(LedgerEntry.row_table),
                col(LedgerEntry.row_id),
            ).order_by(col(LedgerEntry.idx))
        ).all()
    return [(int(i), bytes(leaf), bytes(h), k, t, r) for i, leaf, h, k, t, r in found]


@pytest.fixture
def lived_in(db: Any, vault: Any, clock: Any) -> dict[str, Any]:
    """A citizen with an account tells their story, shares it, is served, stops, and leaves."""
    receipts: list[ledger.LeafReceipt] = []
    with db.tx() as session:
        person = create_citizen(session, vault)
        account = create_account(session, vault, CANARY_EMAIL, citizen_id=person.id)
        key = ledger_key(vault, person)
    me = citizen_actor(account.id, person.id)
    by = me.label
    with db.tx() as session:
        record_data_point(session, vault, person.id, "identity.name", CANARY_NAME, recorded_by=by)
        record_data_point(session, vault, person.id, "contact.email", CANARY_EMAIL, recorded_by=by)
    clock.advance(seconds=5)
    with db.tx() as session:
        record_data_point(
            session, vault, person.id, "identity.name", CANARY_NAME + " Jr", recorded_by=me.label
        )
        record_story_section(session, vault, person.id, "housing", CANARY_STORY, recorded_by=by)
        given = give_grant(
            session,
            vault,
            me,
            GrantRequest(
                department_id=DEPARTMENT,
                purpose_code="emergency_housing",
                purpose_text="To find you somewhere safe to stay tonight.",
                data_points=["identity.name", "contact.email"],
                story_topics=["housing"],
                case_reference="HOU-2291",
                duration_days=30,
                data_life_days=90,
                max_fetches=5,
            ),
        )
        receipts.append(given.leaf)
    clock.advance(seconds=5)
    with db.tx() as session:
        served = fetch_for_department(
            session,
            vault,
            given.grant.id,
            DEPARTMENT,
            acting_officer="Officer Dana Reyes",
            case_reference="HOU-2291",
        )
        assert isinstance(served, Served)
        assert [p.value for p in served.data_points] == [CANARY_NAME + " Jr", CANARY_EMAIL]
        receipts.append(served.leaf)
    with db.tx() as session:
        revoked = revoke_grant(session, vault, me, given.grant.id)
        assert revoked is not None
        receipts.append(revoked)
    clock.advance(seconds=5)
    with db.tx() as session:
        erase_citizen(session, vault, person.id)
    return {"citizen_id": person.id, "account_id": account.id, "key": key, "receipts": receipts}


def test_leaves_are_canonical_json(db: Any, lived_in: dict[str, Any]) -> None:
    found = _leaves(db)
    assert len(found) == 9
    for idx, leaf, _hash, *_ in found:
        body = json.loads(leaf.decode("utf-8"))
        canonical = json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")
        assert leaf == canonical, f"entry {idx} is not canonical JSON"
    grant_leaf = next(leaf for _, leaf, _, kind, *_ in found if kind == "grant.given")
    assert DEPARTMENT.encode("utf-8") in grant_leaf
    assert b"\\u" not in grant_leaf


def test_leaves_hold_ids_times_keys_versions_and_the_row_digest(
    db: Any, lived_in: dict[str, Any]
) -> None:
    found = _leaves(db)
    assert [kind for _i, _l, _h, kind, _t, _r in found] == [
        "citizen.created",
        "data_point.recorded",
        "data_point.recorded",
        "data_point.recorded",
        "story_section.recorded",
        "grant.given",
        "access.served",
        "grant.revoked",
        "citizen.erased",
    ]
    with db.tx() as session:
        for idx, leaf, stored_hash, kind_name, table, row_id in found:
            body = json.loads(leaf)
            assert body["v"] == ledger.LEAF_FORMAT
            assert body["kind"] == kind_name
            assert datetime.fromisoformat(body["at"]).tzinfo is not None
            kind = rows.event_kind(kind_name)
            expected_ref = {"table": table, "id": row_id} if kind.id_in_leaf else {"table": table}
            assert body["ref"] == expected_ref
            row = session.get(kind.model, row_id)
            assert row is not None, f"entry {idx} describes a row that is not there"
            assert HEX64.fullmatch(body["row_sha256"])
            assert body["row_sha256"] == rows.row_digest(kind, row), f"entry {idx}"
            assert stored_hash == hashlib.sha256(b"\x00" + leaf).digest()
    points = [json.loads(leaf) for _, leaf, _, k, *_ in found if k == "data_point.recorded"]
    assert [(p["key"], p["version"], p["source"]) for p in points] == [
        ("identity.name", 1, "self"),
        ("contact.email", 1, "self"),
        ("identity.name", 2, "self"),
    ]
    (served,) = [json.loads(leaf) for _, leaf, _, k, *_ in found if k == "access.served"]
    assert served["data_points"] == [
        {"key": "identity.name", "version": 2},
        {"key": "contact.email", "version": 1},
    ]
    assert served["story"] == [{"topic": "housing", "version": 1}]


def test_no_personal_value_is_in_any_leaf_and_the_citizen_is_only_an_hmac(
    db: Any, lived_in: dict[str, Any]
) -> None:
    found = _leaves(db)
    citizen_id = lived_in["citizen_id"]
    names: set[str] = set()
    for idx, leaf, _h, kind, _table, _row_id in found:
        decoded = leaf.decode("utf-8")
        for secret in (CANARY_NAME, CANARY_EMAIL, CANARY_STORY, "Dana Reyes", "Zanzibar"):
            assert secret not in decoded, f"entry {idx} ({kind}) holds a personal value"
        body = json.loads(leaf)
        assert ledger.is_about(lived_in["key"], leaf), f"entry {idx} does not name the citizen"
        assert HEX64.fullmatch(body["citizen"]) and body["citizen"] != citizen_id
        assert body["citizen"] not in names, f"entry {idx} reuses a name another entry has"
        names.add(body["citizen"])
        # No leaf carries the citizen's id, not even the citizen row's own events.
        assert citizen_id not in decoded, f"entry {idx} ({kind}) names the citizen's id"
    # Not in any stored part of the ledger either (checkpoints, tree hashes, entries).
    with db.engine.connect() as connection:
        for table in ("ledger_entry", "ledger_node", "ledger_checkpoint", "ledger_head"):
            # The table names are our own constants, not input.
            for stored in connection.execute(text(f"SELECT * FROM {table}")):  # noqa: S608
                blob = repr(tuple(stored)).encode() + b"".join(
                    bytes(v) for v in stored if isinstance(v, bytes | memoryview)
                )
                for secret in (CANARY_NAME, CANARY_EMAIL, "Dana Reyes"):
                    assert secret.encode() not in blob, f"{table} holds a personal value"


def test_indexes_are_gap_free_across_transactions_and_rollbacks(
    db: Any, vault: Any, lived_in: dict[str, Any]
) -> None:
    found = _leaves(db)
    assert [idx for idx, *_ in found] == list(range(len(found)))
    assert [r.index for r in lived_in["receipts"]] == [5, 6, 7]
    # A transaction that appends and then fails takes its indexes with it.
    with pytest.raises(InvalidValue), db.tx() as session:
        person = create_citizen(session, vault)
        raise InvalidValue("changed my mind")
    with db.tx() as session:
        person = create_citizen(session, vault)
        record_data_point(session, vault, person.id, "housing.status", "hostel", recorded_by="x")
        assert ledger.head_size(session) == len(found) + 2
    after = _leaves(db)
    assert [idx for idx, *_ in after] == list(range(len(found) + 2))


def test_a_batch_lands_at_consecutive_indexes(db: Any, vault: Any) -> None:
    with db.tx() as session:
        (person,) = build_log(session, vault, 1, citizens=1)
    with db.tx() as session:
        receipts = bulk_data_points(session, vault, person, 250)
    assert [r.index for r in receipts] == list(range(1, 251))
    found = _leaves(db)
    assert [idx for idx, *_ in found] == list(range(251))
    for receipt, (idx, leaf, stored_hash, *_rest) in zip(receipts, found[1:], strict=True):
        assert (receipt.index, receipt.leaf, receipt.leaf_hash) == (idx, leaf, stored_hash)
