"""Fixtures for the scale tests: a deployment (database, key file, people, a department) of the
test's own, on SQLite and, when TEST_DATABASE_URL is set, on a PostgreSQL database of its own.

Each test gets a fresh key file: the rate-limit keys in Redis are HMACs under a key from it,
so two tests (or two runs) never share counts.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import BACKENDS, PG_URL
from tests.scale.live import Deployment
from vault.db import make_engine
from vault.keys import init_key_file
from vault.migrate import upgrade

SUBPROCESS_HEAVY = ("test_many_workers.py", "test_crash_safety.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the gunicorn tests first, so that under ``-n auto`` none of them is left for last.

    xdist hands out the first tests before the rest and then balances what is left as workers
    finish, so long tests at the front cost no wall time at the end. The order is the same in
    every worker (xdist requires that).
    """
    here = Path(__file__).parent
    heavy = {here / name for name in SUBPROCESS_HEAVY}
    first = [item for item in items if Path(str(item.path)) in heavy]
    if first:
        items[:] = first + [item for item in items if Path(str(item.path)) not in heavy]


@pytest.fixture(params=BACKENDS)
def deployment(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[Deployment]:
    """A migrated database nobody else uses, and a fresh key file (people are added later)."""
    key_file = tmp_path / "keys.json"
    init_key_file(key_file)
    (tmp_path / "mail").mkdir()
    if request.param == "sqlite":
        path = tmp_path / "tellonce.db"
        shutil.copyfile(sqlite_template, path)
        url = f"sqlite:///{path}"
        engine = make_engine(url, synchronous="FULL")
        yield Deployment(url, engine, key_file, tmp_path)
        engine.dispose()
        return
    assert PG_URL is not None
    name = f"tellonce_scale_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        make_url(PG_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    pg_url = make_url(PG_URL).set(database=name, drivername="postgresql+psycopg")
    rendered = pg_url.render_as_string(hide_password=False)
    engine = make_engine(rendered)
    try:
        upgrade(engine)
        yield Deployment(rendered, engine, key_file, tmp_path)
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
