"""``GET /healthz``: 200 when the database and keys are fine, 503 naming what is wrong."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from vault.clock import FrozenClock
from vault.keys import LocalKeyFileProvider
from web import create_app


def _app(engine: Engine, keys: LocalKeyFileProvider, clock: FrozenClock, tmp: Path) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "ENGINE": engine,
            "KEY_PROVIDER": keys,
            "CLOCK": clock,
            "LEDGER_ORIGIN": "test.tellonce/ledger",
            "MAIL_DIR": str(tmp / "mail"),
            "SECRET_KEY": "test-secret-key",
        }
    )


@pytest.fixture
def own_keys(key_file: Path, tmp_path: Path) -> LocalKeyFileProvider:
    """A provider over a private copy of the key file, so its mode can be changed."""
    copy = tmp_path / "own-keys" / "keys.json"
    copy.parent.mkdir()
    shutil.copyfile(key_file, copy)
    copy.chmod(0o600)
    return LocalKeyFileProvider(copy)


@pytest.fixture(
    params=[
        pytest.param("postgresql+psycopg://postgres@127.0.0.1:1/test", id="postgres-closed-port"),
        pytest.param("sqlite:////proc/tellonce-nowhere/tellonce.db", id="sqlite-no-such-folder"),
    ]
)
def unreachable(request: pytest.FixtureRequest) -> Iterator[Engine]:
    # Not make_engine: it would try (and fail) to make the SQLite folder at once.
    engine = create_engine(request.param)
    yield engine
    engine.dispose()


def _checks(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert body["status"] == ("ok" if response.status_code == 200 else "error")
    checks: dict[str, Any] = body["checks"]
    return checks


def test_healthy(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.is_json
    assert _checks(response) == {"database": {"status": "ok"}, "keys": {"status": "ok"}}


def test_key_file_readable_by_others(
    engine: Engine, own_keys: LocalKeyFileProvider, clock: FrozenClock, tmp_path: Path
) -> None:
    client = _app(engine, own_keys, clock, tmp_path).test_client()
    assert client.get("/healthz").status_code == 200
    own_keys.path.chmod(0o644)
    response = client.get("/healthz")
    assert response.status_code == 503
    checks = _checks(response)
    assert checks["database"] == {"status": "ok"}
    assert checks["keys"] == {
        "status": "error",
        "message": f"The key file {own_keys.path} can be read by other users. "
        f"Run `chmod 600 {own_keys.path}`.",
    }


def test_key_file_gone(
    engine: Engine, own_keys: LocalKeyFileProvider, clock: FrozenClock, tmp_path: Path
) -> None:
    client = _app(engine, own_keys, clock, tmp_path).test_client()
    own_keys.path.unlink()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert _checks(response)["keys"]["message"] == (
        f"No key file at {own_keys.path}. Run `tellonce keys init` to make one."
    )


def test_database_unreachable(
    unreachable: Engine, key_provider: LocalKeyFileProvider, clock: FrozenClock, tmp_path: Path
) -> None:
    client = _app(unreachable, key_provider, clock, tmp_path).test_client()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert _checks(response) == {
        "database": {"status": "error", "message": "The database cannot be reached."},
        "keys": {"status": "ok"},
    }
    assert b"Traceback" not in response.data and b"psycopg" not in response.data
