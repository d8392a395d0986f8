"""Export and erasure against a real database: a person gets everything back, and after
erasure nothing of theirs can be read while everyone else and the ledger are untouched."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Database
from vault import catalogue, ledger
from vault.accounts import create_account, find_account
from vault.citizens import create_citizen, get_citizen, ledger_key
from vault.clock import FrozenClock
from vault.errors import CitizenErased
from vault.lifecycle import erase_citizen, export_citizen
from vault.records import (
    current_data_points,
    current_story,
    data_point_history,
    get_data_point,
    record_data_point,
    record_story_section,
    story_history,
)
from vault.services import Vault
from vault.verify import verify_ledger

ERASED = "This account has been deleted, so its information is gone."


def _person(db: Database, vault: Vault, email: str, name: str) -> str:
    """A citizen with an account, two facts (one corrected) and two story topics."""
    with db.tx() as s:
        citizen = create_citizen(s, vault)
        create_account(s, vault, email, citizen_id=citizen.id)
        record_data_point(s, vault, citizen.id, "identity.name", name, recorded_by="me")
        record_data_point(s, vault, citizen.id, "contact.email", email, recorded_by="me")
        record_story_section(
            s, vault, citizen.id, "housing", f"{name} sleeps on sofas.", recorded_by="me"
        )
        record_story_section(
            s,
            vault,
            citizen.id,
            "health",
            "Anxiety.",
            recorded_by="me",
            sensitivity="ask_me_each_time",
        )
        return citizen.id


# --- export ---------------------------------------------------------------------------


def test_export_has_every_version_with_plain_labels(
    db: Database, vault: Vault, clock: FrozenClock
) -> None:
    citizen_id = _person(db, vault, "sam@example.org", "Sam Taylor")
    other_id = _person(db, vault, "alex@example.org", "Alex Jones")
    clock.advance(days=1)
    with db.tx() as s:
        record_data_point(
            s,
            vault,
            citizen_id,
            "identity.name",
            "Sam T Taylor",
            recorded_by="worker:9",
            source="worker:9",
        )
        record_story_section(s, vault, citizen_id, "housing", "Now in a hostel.", recorded_by="me")
    with db.tx() as s:
        exported = export_citizen(s, vault, citizen_id)
    text = json.dumps(exported)  # JSON-ready as it stands: no dates or bytes left in it
    assert json.loads(text) == exported
    assert "Alex" not in text and other_id not in text  # nobody else's information
    assert exported["your_id"] == citizen_id
    info = {item["key"]: item for item in exported["your_information"]}
    assert list(info) == ["identity.name", "contact.email"]  # catalogue order
    name = info["identity.name"]
    assert name["label"] == catalogue.entry("identity.name").label == "Your name"
    assert name["explanation"] == catalogue.entry("identity.name").explanation
    assert [
        (v["version"], v["value"], v["status"], v["where_it_came_from"], v["recorded_by"])
        for v in name["versions"]
    ] == [
        (2, "Sam T Taylor", "current", "worker:9", "worker:9"),
        (1, "Sam Taylor", "superseded", "self", "me"),
    ]
    assert name["versions"][0]["recorded_at"] == clock().isoformat()
    assert [v["value"] for v in info["contact.email"]["versions"]] == ["sam@example.org"]
    story = {item["topic"]: item for item in exported["your_story"]}
    assert list(story) == ["housing", "health"]
    assert story["housing"]["label"] == "Housing"
    assert [(v["version"], v["text"], v["status"]) for v in story["housing"]["versions"]] == [
        (2, "Now in a hostel.", "current"),
        (1, "Sam Taylor sleeps on sofas.", "superseded"),
    ]
    assert story["health"]["versions"][0]["sensitivity"] == "ask_me_each_time"


def test_export_of_an_empty_vault(db: Database, vault: Vault) -> None:
    with db.tx() as s:
        citizen_id = create_citizen(s, vault).id
    with db.tx() as s:
        exported = export_citizen(s, vault, citizen_id)
    assert exported["your_information"] == [] and exported["your_story"] == []
    json.dumps(exported)


# --- erasure --------------------------------------------------------------------------


@pytest.fixture
def erased_and_kept(db: Database, vault: Vault) -> tuple[str, str, ledger.CitizenLedgerKey]:
    """Sam (erased) and Alex (kept); also returns Sam's ledger key from before erasure."""
    sam = _person(db, vault, "sam@example.org", "Sam Taylor")
    alex = _person(db, vault, "alex@example.org", "Alex Jones")
    with db.tx() as s:
        sam_key = ledger_key(vault, get_citizen(s, sam))
    with db.tx() as s:
        erase_citizen(s, vault, sam)
    return sam, alex, sam_key


READS: dict[str, Any] = {
    "current-data": lambda s, v, c: current_data_points(s, v, c),
    "one-version": lambda s, v, c: get_data_point(s, v, c, "identity.name", 1),
    "history": lambda s, v, c: data_point_history(s, v, c, "identity.name"),
    "story": lambda s, v, c: current_story(s, v, c),
    "story-history": lambda s, v, c: story_history(s, v, c, "health"),
    "export": lambda s, v, c: export_citizen(s, v, c),
    "ledger-key": lambda s, v, c: ledger_key(v, get_citizen(s, c)),
    "new-data": lambda s, v, c: record_data_point(
        s, v, c, "identity.name", "New", recorded_by="me"
    ),
}


def test_nothing_of_an_erased_citizen_can_be_read(
    db: Database, vault: Vault, erased_and_kept: tuple[str, str, ledger.CitizenLedgerKey]
) -> None:
    sam, _alex, _key = erased_and_kept
    for case, read in READS.items():
        with pytest.raises(CitizenErased) as caught, db.tx() as s:
            read(s, vault, sam)
        assert caught.value.message == ERASED, case


def test_erasure_shreds_keys_and_removes_the_account(
    db: Database, vault: Vault, erased_and_kept: tuple[str, str, ledger.CitizenLedgerKey]
) -> None:
    sam, alex, _key = erased_and_kept
    row = "SELECT {} FROM citizen WHERE id = :c"
    assert db.scalar(row.format("status"), c=sam) == "erased"
    assert db.scalar(row.format("wrapped_key"), c=sam) is None
    assert db.scalar(row.format("ledger_key_sealed"), c=sam) is None
    assert db.scalar(row.format("erased_at"), c=sam) is not None
    with db.tx() as s:
        assert find_account(s, vault, "sam@example.org") is None
        assert find_account(s, vault, "alex@example.org") is not None
    emails_left = "SELECT count(*) FROM account WHERE citizen_id = :c AND length(email_sealed) > 0"
    assert db.scalar(emails_left, c=sam) == 0
    # Alex is untouched: their row still holds its keys.
    assert db.scalar(row.format("wrapped_key"), c=alex) is not None
    assert db.scalar(row.format("ledger_key_sealed"), c=alex) is not None


def test_other_citizens_are_untouched(
    db: Database, vault: Vault, erased_and_kept: tuple[str, str, ledger.CitizenLedgerKey]
) -> None:
    _sam, alex, _key = erased_and_kept
    with db.tx() as s:
        assert [(p.key, p.value) for p in current_data_points(s, vault, alex)] == [
            ("identity.name", "Alex Jones"),
            ("contact.email", "alex@example.org"),
        ]
        assert [x.text for x in current_story(s, vault, alex, ["housing"])] == [
            "Alex Jones sleeps on sofas."
        ]
        assert export_citizen(s, vault, alex)["your_id"] == alex
        record_data_point(s, vault, alex, "housing.status", "hostel", recorded_by="me")


def test_ledger_still_verifies_and_erased_leaves_cannot_be_linked(
    db: Database, vault: Vault, erased_and_kept: tuple[str, str, ledger.CitizenLedgerKey]
) -> None:
    sam, alex, sam_key = erased_and_kept
    with db.tx() as s:
        report = verify_ledger(s, vault)
        size = ledger.head_size(s)
        raw = [leaf for _i, leaf in ledger.entries(s, 0, size)]
        alex_key = ledger_key(vault, get_citizen(s, alex))
    assert report.ok, report.problems
    assert report.size == size
    leaves = [json.loads(leaf) for leaf in raw]
    # The erasure itself is in the log, named with the key Sam's earlier leaves were named with.
    assert leaves[-1]["kind"] == "citizen.erased"
    assert ledger.is_about(sam_key, raw[-1])
    sam_leaves = [leaf for leaf in raw if ledger.is_about(sam_key, leaf)]
    assert len(sam_leaves) == 6  # created, two facts, two story topics, erased
    assert not any(ledger.is_about(alex_key, leaf) for leaf in sam_leaves)
    # Every leaf names Sam differently: without the key, nothing joins them up.
    assert len({json.loads(leaf)["citizen"] for leaf in sam_leaves}) == 6
    # Nothing left in the vault can recompute Sam's ledger key: it is gone.
    with pytest.raises(CitizenErased), db.tx() as s:
        ledger_key(vault, get_citizen(s, sam))


def test_erasing_twice_is_harmless(
    db: Database, vault: Vault, erased_and_kept: tuple[str, str, ledger.CitizenLedgerKey]
) -> None:
    sam, _alex, _key = erased_and_kept
    before = db.scalar("SELECT count(*) FROM ledger_entry")
    with db.tx() as s:
        erase_citizen(s, vault, sam)
    assert db.scalar("SELECT count(*) FROM ledger_entry") == before
    with db.tx() as s:
        assert verify_ledger(s, vault).ok
