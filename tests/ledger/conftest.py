"""Fixtures of the ledger tests: the 10,000-entry log, built once per database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.ledger.biglog import BACKENDS, ORIGIN, PG_URL, BigLog, build, describe
from vault.clock import FrozenClock
from vault.db import make_engine
from vault.keys import LocalKeyFileProvider
from vault.migrate import upgrade
from vault.services import Vault


@pytest.fixture(scope="module", params=BACKENDS)
def big_log(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, key_file: Path
) -> Iterator[BigLog]:
    """Build the 10,000-entry log once per database for this module."""
    clock = FrozenClock()
    vault = Vault(keys=LocalKeyFileProvider(key_file), clock=clock, ledger_origin=ORIGIN)
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("ledger10k") / "built.db"
        engine = make_engine(f"sqlite:///{path}", synchronous="OFF")
        upgrade(engine)
        build(engine, vault, clock)
        big = BigLog("sqlite", vault, engine)
        describe(big, engine)
        yield big
        engine.dispose()
        return
    assert PG_URL is not None
    name = f"tellonce_ledger10k_{os.getpid()}"
    admin = create_engine(
        make_url(PG_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name, drivername="postgresql+psycopg")
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        upgrade(engine)
        build(engine, vault, clock)
        # As autovacuum would on a real server (the test server runs without it): with no
        # statistics PostgreSQL plans verify's "was every row announced?" as a loop over
        # every entry for every row, and the row tests took minutes instead of seconds.
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
        big = BigLog("postgresql", vault, engine)
        describe(big, engine)
        yield big
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
