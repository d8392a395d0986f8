"""Fixtures for the security tests.

The authorization matrix builds its world once per module and database (``matrix_world``):
hundreds of cells read it, and each cell puts back the little it changes.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from tests.conftest import BACKENDS, _reset_postgres
from tests.security.matrix_world import World, build_world
from vault.clock import FrozenClock
from vault.db import make_engine
from vault.keys import LocalKeyFileProvider
from vault.services import Vault


@pytest.fixture(scope="module", params=BACKENDS)
def matrix_engine(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A clean, migrated database for one module (the matrix reads one world many times)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("matrix") / "matrix.db"
        shutil.copyfile(sqlite_template, path)
        engine = make_engine(f"sqlite:///{path}", synchronous="OFF")
        yield engine
        engine.dispose()
    else:
        engine = request.getfixturevalue("postgres_engine")
        _reset_postgres(engine)
        yield engine
        _reset_postgres(engine)


@pytest.fixture(scope="module")
def matrix_world(
    matrix_engine: Engine, key_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> World:
    """Two people, their helpers and two departments, built once for the module."""
    from web import create_app

    # Real time to start with: client assertions are checked against it.
    clock = FrozenClock(datetime.now(UTC).replace(microsecond=0))
    keys = LocalKeyFileProvider(key_file)
    app = create_app(
        {
            "TESTING": True,
            "ENGINE": matrix_engine,
            "KEY_PROVIDER": keys,
            "CLOCK": clock,
            "LEDGER_ORIGIN": "test.tellonce/ledger",
            "MAIL_DIR": str(tmp_path_factory.mktemp("matrix-mail")),
            "SECRET_KEY": "matrix-secret-key",
            # Who gets in is the question here; how often they may ask is tested elsewhere.
            "RATELIMIT_ENABLED": False,
        }
    )
    vault = Vault(keys=keys, clock=clock, ledger_origin="test.tellonce/ledger")
    return build_world(app, matrix_engine, vault, clock)
