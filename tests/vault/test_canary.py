"""A canary written through the vault must never show in plain anywhere: not in the
database (file or tables), not in the logs, not in the ledger, not in error messages."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import LargeBinary, inspect, text
from sqlalchemy.engine import Engine

from tests.conftest import Database
from vault import ledger
from vault.accounts import account_email, create_account, find_account
from vault.citizens import create_citizen
from vault.errors import InvalidValue
from vault.lifecycle import export_citizen
from vault.records import current_data_points, record_data_point, record_story_section
from vault.services import Vault

CANARY = "CANARY-7f3a9c-Zebra"
CANARY_EMAIL = "canary-7f3a9c-zebra@example.org"


def _needles() -> list[bytes]:
    """The canary as it could appear in bytes: plain, lower case, UTF-16, and as hex text."""
    plain = [CANARY.encode(), CANARY.lower().encode(), b"canary-7f3a9c"]
    return [
        *plain,
        CANARY.encode("utf-16-le"),
        *(p.hex().encode() for p in plain),
    ]


def _assert_absent(haystack: bytes, where: str) -> None:
    lowered = haystack.lower()
    for needle in _needles():
        assert needle.lower() not in lowered, f"the canary appears in {where}"


@pytest.fixture
def loud_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every log record at DEBUG, from every logger."""
    caplog.set_level(logging.DEBUG)
    # Libraries that set their own level (SQLAlchemy sets WARN on import) are turned up too,
    # so the engine logs every statement and its parameters, and the pool its checkouts.
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and logger.level > logging.DEBUG:
            caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")
    return caplog


@pytest.fixture
def planted(db: Database, vault: Vault, loud_logs: pytest.LogCaptureFixture) -> str:
    """Write the canary through every door the vault has, with every log turned up."""
    with db.tx() as s:
        citizen = create_citizen(s, vault)
        create_account(s, vault, CANARY_EMAIL, citizen_id=citizen.id)
        record_data_point(s, vault, citizen.id, "identity.name", CANARY, recorded_by="me")
        record_data_point(s, vault, citizen.id, "health.conditions", CANARY, recorded_by="me")
        record_data_point(s, vault, citizen.id, "contact.email", CANARY_EMAIL, recorded_by="me")
        record_story_section(
            s,
            vault,
            citizen.id,
            "health",
            f"My story: {CANARY}.",
            recorded_by="me",
            sensitivity="ask_me_each_time",
        )
        record_story_section(s, vault, citizen.id, "housing", CANARY, recorded_by="me")
    with db.tx() as s:  # and read it back, so reads are logged too
        assert current_data_points(s, vault, citizen.id)[0].value == CANARY
        found = find_account(s, vault, CANARY_EMAIL)
        assert found is not None and account_email(vault, found) == CANARY_EMAIL
        assert CANARY in json.dumps(export_citizen(s, vault, citizen.id))
    return citizen.id


def _table_dump(engine: Engine) -> list[tuple[str, bytes]]:
    """Every row of every table as text, and every binary column's raw bytes."""
    quote = engine.dialect.identifier_preparer.quote
    inspector = inspect(engine)
    # Read the schema first: on SQLite a second connection would wait for this one's lock.
    tables = {t: inspector.get_columns(t) for t in inspector.get_table_names()}
    found: list[tuple[str, bytes]] = []
    with engine.connect() as connection:
        for table, columns in tables.items():
            names = ", ".join(
                quote(c["name"])
                if isinstance(c["type"], LargeBinary)
                else f"CAST({quote(c['name'])} AS TEXT)"
                for c in columns
            )
            if engine.dialect.name == "postgresql":
                # The whole row as PostgreSQL prints it (bytea as \\x hex).
                whole = text(f"SELECT t::text FROM {quote(table)} t")  # noqa: S608
                found.extend((f"{table} row", row.encode()) for (row,) in connection.execute(whole))
            each = text(f"SELECT {names} FROM {quote(table)}")  # noqa: S608
            for row in connection.execute(each):
                for column, value in zip(columns, row, strict=True):
                    if value is not None:
                        raw = value if isinstance(value, bytes) else str(value).encode()
                        found.append((f"{table}.{column['name']}", bytes(raw)))
    return found


def test_canary_is_in_no_table(db: Database, planted: str) -> None:
    dump = _table_dump(db.engine)
    tables = {where.split(".")[0].split(" ")[0] for where, _ in dump}
    # The dump is real: it saw the rows the canary went into.
    assert {"citizen", "account", "data_point", "story_section", "ledger_entry"} <= tables
    assert any(planted.encode() in raw for _, raw in dump)
    for where, raw in dump:
        _assert_absent(raw, where)


def test_canary_is_not_in_the_sqlite_files(db: Database, planted: str) -> None:
    if db.engine.dialect.name != "sqlite":
        pytest.skip("the database files are only ours to read on SQLite")
    database = db.engine.url.database
    assert database
    path = Path(database)
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    # First as they are now, with recent pages still in the write-ahead log...
    seen = {f.name: f.read_bytes() for f in files if f.exists()}
    assert planted.encode() in b"".join(seen.values())  # the files we read hold the data
    for name, raw in seen.items():
        _assert_absent(raw, name)
    # ...then after every page has been copied back into the main file.
    raw = db.engine.raw_connection()  # outside any transaction, or SQLite refuses
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    finally:
        raw.close()
    db.engine.dispose()
    for f in files:
        if f.exists():
            _assert_absent(f.read_bytes(), f.name)


def test_canary_is_not_in_the_logs(
    db: Database, planted: str, caplog: pytest.LogCaptureFixture
) -> None:
    records = caplog.get_records("setup") + caplog.records
    logged = "\n".join(r.getMessage() for r in records)
    # The logs were really on: SQLAlchemy logged the statements that stored the canary.
    assert "INSERT INTO data_point" in logged
    assert "INSERT INTO account" in logged
    for record in records:
        _assert_absent(record.getMessage().encode(), f"the log of {record.name}")
        _assert_absent(repr(record.args).encode(), f"the log arguments of {record.name}")


def test_canary_is_not_in_the_exported_ledger(db: Database, vault: Vault, planted: str) -> None:
    with db.tx() as s:
        size = ledger.head_size(s)
        leaves = ledger.entries(s, 0, size)
        checkpoint = ledger.latest_checkpoint(s)
    assert len(leaves) == size == 6  # the citizen, three facts, two story topics
    assert checkpoint is not None
    for index, leaf in leaves:
        _assert_absent(leaf, f"ledger leaf {index}")
    _assert_absent(checkpoint.note.encode(), "the checkpoint")


def test_canary_is_not_in_the_ledger_api(client: Any, planted: str) -> None:
    response = client.get("/ledger/entries?start=0&end=100")
    assert response.status_code == 200
    assert len(response.get_json()["entries"]) == 6
    _assert_absent(response.data, "GET /ledger/entries")


REFUSED = [
    ("identity.date_of_birth", CANARY),
    ("identity.ni_number", CANARY),
    ("contact.phone", CANARY),
    ("contact.email", CANARY),
    ("contact.address", {"lines": [CANARY], "town": CANARY, "postcode": CANARY}),
    ("money.income_monthly", CANARY),
    ("money.benefits", [{"name": CANARY, "amount_pence_monthly": CANARY}]),
    ("housing.status", CANARY),
    ("family.children", [{"name": CANARY, "date_of_birth": CANARY}]),
    ("identity.name", CANARY + "\x00"),
    ("health.conditions", CANARY * 200),
]


def test_refusals_never_repeat_the_value(
    db: Database, vault: Vault, loud_logs: pytest.LogCaptureFixture
) -> None:
    with db.tx() as s:
        citizen_id = create_citizen(s, vault).id
    for key, value in REFUSED:
        loud_logs.clear()
        with pytest.raises(InvalidValue) as caught, db.tx() as s:
            record_data_point(s, vault, citizen_id, key, value, recorded_by="me")
        _assert_absent(caught.value.message.encode(), f"the message refusing {key}")
        _assert_absent(str(caught.value).encode(), f"the text refusing {key}")
        # Nothing chained to the error can carry the value into a traceback or log either.
        assert caught.value.__cause__ is None, key
        assert caught.value.__context__ is None or CANARY not in str(caught.value.__context__)
        for record in loud_logs.records:
            _assert_absent(record.getMessage().encode(), f"the log of {record.name} for {key}")


def test_account_email_refusals_never_repeat_it(db: Database, vault: Vault) -> None:
    with db.tx() as s:
        create_account(s, vault, CANARY_EMAIL)
    with pytest.raises(InvalidValue) as caught, db.tx() as s:
        create_account(s, vault, CANARY_EMAIL.upper())
    assert caught.value.message == "There is already an account for that email address."
    with pytest.raises(InvalidValue) as caught, db.tx() as s:
        create_account(s, vault, f"{CANARY} at example")
    _assert_absent(caught.value.message.encode(), "the error message")
