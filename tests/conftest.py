"""Shared fixtures: a fresh database per test on SQLite and (when configured) PostgreSQL,
a key file, a frozen clock, the vault, and the Flask app.

SQLite tests copy a migrated template file, so each test starts clean in about a
millisecond. PostgreSQL tests get one database per xdist worker, migrated once, and empty
tables at the start of each test. Set TEST_DATABASE_URL to run them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

import consent.events  # noqa: F401
import vault.events
from vault.clock import FrozenClock
from vault.db import make_engine, session_scope
from vault.keys import LocalKeyFileProvider, init_key_file
from vault.migrate import upgrade
from vault.services import Vault

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
TABLES_IN_ORDER = [
    "web_session",
    "passkey",
    "sign_in_link",
    "invitation",
    "outbox_message",
    "citizen_notice",
    "notification_choice",
    "challenge",
    "decision",
    "oauth_token",
    "authorization_code",
    "pushed_request",
    "seen_jti",
    "access_event",
    "grant",
    "delegation",
    "account",
    "data_point",
    "story_section",
    "ledger_entry",
    "ledger_node",
    "ledger_checkpoint",
    "department",
    "citizen",
]


@pytest.fixture(scope="session")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    init_key_file(path)
    return path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}", synchronous="OFF")
    upgrade(engine)
    engine.dispose()
    return path


def _admin_engine() -> Engine:
    assert PG_URL is not None
    url = make_url(PG_URL).set(drivername="postgresql+psycopg")
    return create_engine(url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def postgres_engine(worker_id: str) -> Iterator[Engine]:
    """A database of its own for this test process, migrated once, dropped at the end."""
    if PG_URL is None:
        pytest.skip("TEST_DATABASE_URL is not set")
    # One database per process, so parallel runs (and xdist workers) never share tables.
    name = f"tellonce_test_{worker_id}_{os.getpid()}".replace("-", "_")
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name, drivername="postgresql+psycopg")
    engine = make_engine(url.render_as_string(hide_password=False))
    upgrade(engine)
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_postgres(engine: Engine) -> None:
    with engine.begin() as connection:
        names = ", ".join(f'"{t}"' for t in TABLES_IN_ORDER)
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        connection.execute(
            text("UPDATE ledger_head SET size = 0, frontier = '', checkpointed_at = NULL")
        )


@pytest.fixture(params=BACKENDS)
def engine(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Engine]:
    """A clean, migrated database for one test."""
    if request.param == "sqlite":
        path = tmp_path / "tellonce.db"
        shutil.copyfile(sqlite_template, path)
        engine = make_engine(f"sqlite:///{path}", synchronous="NORMAL")
        yield engine
        engine.dispose()
    else:
        engine = request.getfixturevalue("postgres_engine")
        _reset_postgres(engine)
        yield engine


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def key_provider(key_file: Path) -> LocalKeyFileProvider:
    return LocalKeyFileProvider(key_file)


@pytest.fixture
def vault(key_provider: LocalKeyFileProvider, clock: FrozenClock) -> Vault:
    return Vault(keys=key_provider, clock=clock, ledger_origin="test.tellonce/ledger")


class Database:
    """Run domain calls in real transactions, as the app does."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def tx(self) -> AbstractContextManager[Session]:
        """A unit of work that commits at the end (or rolls back on error)."""
        return session_scope(self.engine)

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()

    def execute(self, sql: str, **params: Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(text(sql), params)


@pytest.fixture
def db(engine: Engine) -> Database:
    return Database(engine)


@pytest.fixture
def app(
    engine: Engine, key_provider: LocalKeyFileProvider, clock: FrozenClock, tmp_path: Path
) -> Any:
    from web import create_app

    return create_app(
        {
            "TESTING": True,
            "ENGINE": engine,
            "KEY_PROVIDER": key_provider,
            "CLOCK": clock,
            "LEDGER_ORIGIN": "test.tellonce/ledger",
            "MAIL_DIR": str(tmp_path / "mail"),
            "SECRET_KEY": "test-secret-key",
        }
    )


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


# The longest tests, started first. Under xdist (scripts/test hands out one test at a time,
# --maxschedchunk=1) they then run beside the short ones instead of alone at the end: the
# ≥ 10,000-case API fuzzing run alone used to add two to three minutes to the whole run.
_LONGEST_FIRST = ("tests/security/test_api_fuzzing.py::test_every_operation_keeps_its_contract",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the longest tests first: the API fuzzing run, then every test marked slow."""

    def rank(item: pytest.Item) -> int:
        if item.nodeid.startswith(_LONGEST_FIRST):
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)  # stable: the rest keep their order
