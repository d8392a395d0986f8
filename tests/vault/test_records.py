"""Data points and story sections against a real database: versions, sources, bad input
that leaves nothing half-written, and ciphertexts that refuse to open anywhere but home."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Database
from vault import catalogue, ledger
from vault.accounts import account_email, create_account, get_account
from vault.citizens import create_citizen
from vault.clock import FrozenClock
from vault.errors import DecryptionError, InvalidValue, LedgerError, NotFound, UnknownKey
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

WRITTEN_TABLES = ("citizen", "data_point", "story_section", "ledger_entry", "ledger_checkpoint")


def _new_citizen(db: Database, vault: Vault) -> str:
    with db.tx() as s:
        return create_citizen(s, vault).id


# The f-string SQL below (S608) only ever names our own tables and columns, never input.


def _counts(db: Database) -> dict[str, int]:
    return {t: int(db.scalar(f"SELECT count(*) FROM {t}")) for t in WRITTEN_TABLES}  # noqa: S608


def _row_id(db: Database, table: str, citizen_id: str, name: str, version: int) -> str:
    column = "key" if table == "data_point" else "topic"
    sql = f"SELECT id FROM {table} WHERE citizen_id = :c AND {column} = :n AND version = :v"  # noqa: S608
    found = db.scalar(
        sql,
        c=citizen_id,
        n=name,
        v=version,
    )
    assert found is not None
    return str(found)


Place = tuple[str, str, int]  # (citizen id, key or topic, version)


def _move(db: Database, table: str, source: Place, target: Place) -> None:
    """Copy one row's ciphertext bytes over another's, straight in the database."""
    copy = f"(SELECT ciphertext FROM {table} WHERE id = :src)"  # noqa: S608
    db.execute(
        f"UPDATE {table} SET ciphertext = {copy} WHERE id = :dst",  # noqa: S608
        src=_row_id(db, table, *source),
        dst=_row_id(db, table, *target),
    )


def _leaves(db: Database) -> list[dict[str, Any]]:
    with db.tx() as s:
        size = ledger.head_size(s)
        return [json.loads(leaf) for _i, leaf in ledger.entries(s, 0, size)]


# --- citizens and data points ---------------------------------------------------------


def test_create_citizen_makes_an_empty_vault_and_logs_it(db: Database, vault: Vault) -> None:
    citizen_id = _new_citizen(db, vault)
    assert db.scalar("SELECT status FROM citizen WHERE id = :c", c=citizen_id) == "active"
    assert db.scalar("SELECT wrapped_key FROM citizen WHERE id = :c", c=citizen_id) is not None
    with db.tx() as s:
        assert current_data_points(s, vault, citizen_id) == []
        assert current_story(s, vault, citizen_id) == []
    (leaf,) = _leaves(db)
    assert leaf["kind"] == "citizen.created"
    # The public leaf names the table but never the citizen's id.
    assert leaf["ref"] == {"table": "citizen"}
    assert citizen_id not in json.dumps(leaf)


def test_record_and_correct_keeps_the_old_version(
    db: Database, vault: Vault, clock: FrozenClock
) -> None:
    citizen_id = _new_citizen(db, vault)
    first_time = clock()
    with db.tx() as s:
        first = record_data_point(
            s, vault, citizen_id, "contact.phone", "07700 900123", recorded_by="citizen:me"
        )
    assert (first.version, first.status, first.source) == (1, "current", "self")
    assert first.value == "+447700900123"  # stored tidied, in one format
    assert first.label == "Your phone number"
    clock.advance(days=3)
    with db.tx() as s:
        second = record_data_point(
            s,
            vault,
            citizen_id,
            "contact.phone",
            "+44 7700 900456",
            recorded_by="officer:42",
            source="department:housing",
        )
    assert (second.version, second.status) == (2, "current")
    assert (second.source, second.recorded_by, second.recorded_at) == (
        "department:housing",
        "officer:42",
        clock(),
    )
    with db.tx() as s:
        history = data_point_history(s, vault, citizen_id, "contact.phone")
        old = get_data_point(s, vault, citizen_id, "contact.phone", 1)
        (now,) = current_data_points(s, vault, citizen_id)
    assert [(v.version, v.status, v.value) for v in history] == [
        (2, "current", "+447700900456"),
        (1, "superseded", "+447700900123"),
    ]
    assert (old.value, old.status, old.source, old.recorded_by, old.recorded_at) == (
        "+447700900123",
        "superseded",
        "self",
        "citizen:me",
        first_time,
    )
    assert (now.version, now.value) == (2, "+447700900456")
    # Each version is its own ledger leaf, naming key, version and source but never the value.
    recorded = [leaf for leaf in _leaves(db) if leaf["kind"] == "data_point.recorded"]
    assert [(x["key"], x["version"], x["source"]) for x in recorded] == [
        ("contact.phone", 1, "self"),
        ("contact.phone", 2, "department:housing"),
    ]
    assert "900123" not in json.dumps(recorded)


def test_list_a_citizens_data_in_catalogue_order(db: Database, vault: Vault) -> None:
    citizen_id = _new_citizen(db, vault)
    other_id = _new_citizen(db, vault)
    with db.tx() as s:
        record_data_point(s, vault, citizen_id, "money.income_monthly", 61_000, recorded_by="me")
        record_data_point(s, vault, citizen_id, "identity.name", "Sam Taylor", recorded_by="me")
        record_data_point(s, vault, citizen_id, "housing.status", "hostel", recorded_by="me")
        record_data_point(s, vault, other_id, "identity.name", "Alex Other", recorded_by="me")
    with db.tx() as s:
        everything = current_data_points(s, vault, citizen_id)
        some = current_data_points(s, vault, citizen_id, ["housing.status", "identity.name"])
        theirs = current_data_points(s, vault, other_id)
    assert [(p.key, p.value) for p in everything] == [
        ("identity.name", "Sam Taylor"),
        ("housing.status", "hostel"),
        ("money.income_monthly", 61_000),
    ]
    assert [p.key for p in some] == ["identity.name", "housing.status"]
    assert [p.value for p in theirs] == ["Alex Other"]


def test_special_category_is_marked(db: Database, vault: Vault) -> None:
    citizen_id = _new_citizen(db, vault)
    with db.tx() as s:
        health = record_data_point(
            s, vault, citizen_id, "health.conditions", "Asthma.", recorded_by="me"
        )
        name = record_data_point(s, vault, citizen_id, "identity.name", "Sam", recorded_by="me")
    assert health.special_category is True
    assert name.special_category is False


def test_reading_a_missing_version_says_not_found(db: Database, vault: Vault) -> None:
    citizen_id = _new_citizen(db, vault)
    with db.tx() as s, pytest.raises(NotFound) as caught:
        get_data_point(s, vault, citizen_id, "identity.name", 1)
    assert caught.value.message == "We could not find that piece of information."


# --- story sections -------------------------------------------------------------------


def test_story_sections_per_topic_with_sensitivity_and_history(db: Database, vault: Vault) -> None:
    citizen_id = _new_citizen(db, vault)
    with db.tx() as s:
        record_story_section(
            s,
            vault,
            citizen_id,
            "health",
            "I have anxiety.",
            recorded_by="me",
            sensitivity="ask_me_each_time",
        )
        first = record_story_section(
            s, vault, citizen_id, "housing", "  I lost my flat.\r\n", recorded_by="me"
        )
    assert (first.topic, first.label, first.text) == ("housing", "Housing", "I lost my flat.")
    assert (first.version, first.sensitivity, first.status) == (1, "normal", "current")
    with db.tx() as s:
        record_story_section(
            s,
            vault,
            citizen_id,
            "housing",
            "I lost my flat in March.\nI sleep on sofas.",
            recorded_by="worker:7",
        )
    with db.tx() as s:
        story = current_story(s, vault, citizen_id)
        housing_only = current_story(s, vault, citizen_id, ["housing"])
        history = story_history(s, vault, citizen_id, "housing")
    # Topic order follows the list of topics, not the order they were written in.
    assert [(x.topic, x.version, x.sensitivity) for x in story] == [
        ("housing", 2, "normal"),
        ("health", 1, "ask_me_each_time"),
    ]
    assert [x.topic for x in housing_only] == ["housing"]
    assert [(x.version, x.status, x.text, x.recorded_by) for x in history] == [
        (2, "current", "I lost my flat in March.\nI sleep on sofas.", "worker:7"),
        (1, "superseded", "I lost my flat.", "me"),
    ]
    recorded = [leaf for leaf in _leaves(db) if leaf["kind"] == "story_section.recorded"]
    assert [(x["topic"], x["version"], x["sensitivity"]) for x in recorded] == [
        ("health", 1, "ask_me_each_time"),
        ("housing", 1, "normal"),
        ("housing", 2, "normal"),
    ]


# --- bad input ------------------------------------------------------------------------

SECRET = "Zq-personal-9931"

SOURCE_RULE = "Source must be 'self', 'department:<id>' or 'worker:<id>'."
POINT, STORY = record_data_point, record_story_section
LONG_STORY = SECRET + "x" * catalogue.STORY_MAX_CHARS
# (case, the write, its arguments after the citizen, keyword arguments, error, exact message)
BAD_INPUT: list[tuple[str, Any, tuple[Any, ...], dict[str, str], type[Exception], str]] = [
    ("unknown-key", POINT, ("identity.shoe_size", SECRET), {}, UnknownKey,
     "We do not know the kind of information 'identity.shoe_size'."),
    ("value-fails-validator", POINT, ("identity.date_of_birth", SECRET), {}, InvalidValue,
     "Your date of birth must be a date written like 1990-04-21."),
    ("bad-source", POINT, ("identity.name", "Sam"), {"source": "the internet"}, InvalidValue,
     SOURCE_RULE),
    ("source-without-id", POINT, ("identity.name", "Sam"), {"source": "department:"},
     InvalidValue, SOURCE_RULE),
    ("story-too-long", STORY, ("housing", LONG_STORY), {}, InvalidValue,
     "Your story must be 20,000 characters or fewer."),
    ("unknown-topic", STORY, ("holidays", SECRET), {}, InvalidValue,
     "The story topic must be one of the topics on the list."),
    ("bad-sensitivity", STORY, ("housing", SECRET), {"sensitivity": "secret"}, InvalidValue,
     "The sharing setting must be 'normal' or 'ask me each time'."),
]  # fmt: skip


def test_bad_input_is_refused_plainly_and_nothing_is_written(db: Database, vault: Vault) -> None:
    citizen_id = _new_citizen(db, vault)
    with db.tx() as s:
        record_data_point(s, vault, citizen_id, "identity.name", "Sam", recorded_by="me")
        record_story_section(s, vault, citizen_id, "housing", "Before.", recorded_by="me")
    before = _counts(db)
    # One database for every case (a fresh one each costs more than the checks themselves);
    # the counts are compared after each case, so a leak is pinned to its case.
    for case, write, args, kwargs, error, message in BAD_INPUT:
        with pytest.raises(error) as caught, db.tx() as s:
            write(s, vault, citizen_id, *args, recorded_by="me", **kwargs)
        assert getattr(caught.value, "message", None) == message, case
        assert SECRET not in str(caught.value), case
        assert _counts(db) == before, case
    with pytest.raises(NotFound, match=r"^We could not find that person\.$"), db.tx() as s:
        record_data_point(s, vault, "no-such-citizen", "identity.name", "Sam", recorded_by="me")
    assert _counts(db) == before
    with db.tx() as s:
        assert [p.version for p in current_data_points(s, vault, citizen_id)] == [1]
        assert [x.version for x in current_story(s, vault, citizen_id)] == [1]


def test_a_ledger_failure_undoes_the_whole_correction(db: Database, vault: Vault) -> None:
    citizen_id = _new_citizen(db, vault)
    with db.tx() as s:
        record_data_point(s, vault, citizen_id, "identity.name", "Sam", recorded_by="me")
        size = ledger.head_size(s)
    # Someone has put a leaf where the next one must go, so the ledger write fails.
    db.execute(
        "INSERT INTO ledger_entry (idx, leaf, leaf_hash, kind, row_table, row_id) "
        "VALUES (:i, :b, :b, 'x', 'x', 'x')",
        i=size,
        b=b"\x00" * 32,
    )
    before = _counts(db)
    with pytest.raises(LedgerError) as caught, db.tx() as s:
        record_data_point(s, vault, citizen_id, "identity.name", "Samuel", recorded_by="me")
    assert "the change was not made" in caught.value.message
    assert _counts(db) == before
    with db.tx() as s:
        (point,) = data_point_history(s, vault, citizen_id, "identity.name")
    # The old version was not left marked superseded by the half-done correction.
    assert (point.version, point.status, point.value) == (1, "current", "Sam")


# --- ciphertexts only open where they were sealed --------------------------------------


@pytest.fixture
def two_citizens(db: Database, vault: Vault) -> tuple[str, str]:
    a, b = _new_citizen(db, vault), _new_citizen(db, vault)
    with db.tx() as s:
        for citizen_id, name in ((a, "Sam Taylor"), (b, "Alex Jones")):
            record_data_point(s, vault, citizen_id, "identity.name", name, recorded_by="me")
            record_data_point(s, vault, citizen_id, "housing.status", "hostel", recorded_by="me")
            record_story_section(s, vault, citizen_id, "housing", "Sofas.", recorded_by="me")
            record_story_section(s, vault, citizen_id, "money", "Debts.", recorded_by="me")
        record_data_point(s, vault, a, "identity.name", "Sam T Taylor", recorded_by="me")
    return a, b


def _assert_refused(db: Database, vault: Vault, read: Any) -> None:
    with pytest.raises(DecryptionError) as caught, db.tx() as s:
        read(s)
    assert caught.value.message == (
        "This record could not be unlocked: it does not belong here or has been changed."
    )


def test_ciphertext_moved_to_another_row_does_not_open(
    db: Database, vault: Vault, two_citizens: tuple[str, str]
) -> None:
    a, _b = two_citizens
    _move(db, "data_point", (a, "identity.name", 2), (a, "housing.status", 1))
    _assert_refused(db, vault, lambda s: get_data_point(s, vault, a, "housing.status", 1))
    _assert_refused(db, vault, lambda s: current_data_points(s, vault, a))


def test_ciphertext_moved_to_another_citizen_does_not_open(
    db: Database, vault: Vault, two_citizens: tuple[str, str]
) -> None:
    a, b = two_citizens
    _move(db, "data_point", (a, "identity.name", 2), (b, "identity.name", 1))
    _assert_refused(db, vault, lambda s: get_data_point(s, vault, b, "identity.name", 1))
    with db.tx() as s:  # the owner of the original still reads theirs
        assert get_data_point(s, vault, a, "identity.name", 2).value == "Sam T Taylor"


def test_ciphertext_moved_to_another_version_does_not_open(
    db: Database, vault: Vault, two_citizens: tuple[str, str]
) -> None:
    a, _b = two_citizens
    _move(db, "data_point", (a, "identity.name", 1), (a, "identity.name", 2))
    _assert_refused(db, vault, lambda s: get_data_point(s, vault, a, "identity.name", 2))
    _assert_refused(db, vault, lambda s: data_point_history(s, vault, a, "identity.name"))


def test_renumbered_version_does_not_open(
    db: Database, vault: Vault, two_citizens: tuple[str, str]
) -> None:
    a, _b = two_citizens
    db.execute(
        "UPDATE data_point SET version = 7 WHERE id = :id",
        id=_row_id(db, "data_point", a, "identity.name", 1),
    )
    _assert_refused(db, vault, lambda s: get_data_point(s, vault, a, "identity.name", 7))


def test_story_moved_to_another_topic_or_citizen_does_not_open(
    db: Database, vault: Vault, two_citizens: tuple[str, str]
) -> None:
    a, b = two_citizens
    _move(db, "story_section", (a, "housing", 1), (a, "money", 1))
    _move(db, "story_section", (a, "housing", 1), (b, "housing", 1))
    _assert_refused(db, vault, lambda s: story_history(s, vault, a, "money"))
    _assert_refused(db, vault, lambda s: current_story(s, vault, b, ["housing"]))
    with db.tx() as s:
        assert [x.text for x in current_story(s, vault, a, ["housing"])] == ["Sofas."]


def test_account_email_moved_to_another_account_does_not_open(db: Database, vault: Vault) -> None:
    with db.tx() as s:
        first = create_account(s, vault, "first@example.org").id
        second = create_account(s, vault, "second@example.org").id
    db.execute(
        "UPDATE account SET email_sealed = (SELECT email_sealed FROM account WHERE id = :a) "
        "WHERE id = :b",
        a=first,
        b=second,
    )
    with db.tx() as s:
        assert account_email(vault, get_account(s, first)) == "first@example.org"
    _assert_refused(db, vault, lambda s: account_email(vault, get_account(s, second)))
