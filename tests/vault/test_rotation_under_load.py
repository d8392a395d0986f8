"""Key rotation while the app serves fetches: nothing fails, nothing is left behind.

The app runs on a real HTTP server in a background thread with its own key provider, as a
gunicorn worker started before the rotation would; the rotation runs in another thread with
a provider of its own, as `tellonce keys rotate` does in its own process. So the app learns
about the new key versions only from the key file.
"""

from __future__ import annotations

import http.client
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import col
from werkzeug.serving import BaseWSGIServer, make_server

from connectors.departments import register_department
from connectors.tokens import new_secret, save_token
from consent.actors import citizen as citizen_actor
from consent.grants import GrantRequest, give_grant
from tests.connectors.dpop_client import make_proof, new_key
from tests.oauth.harness import registration
from vault import keyops
from vault.accounts import create_account
from vault.citizens import create_citizen, get_citizen
from vault.db import session_scope
from vault.keyops import count_to_rewrap, key_versions_in_use, rewrap_all
from vault.keys import LocalKeyFileProvider, add_key_version
from vault.lifecycle import erase_citizen
from vault.models import Citizen
from vault.records import current_data_points, record_data_point
from vault.services import Vault

ORIGIN = "test.tellonce/ledger"
PEOPLE = 40
ROTATIONS = 3
FETCHERS = 3


def _vault(key_file: Path) -> Vault:
    return Vault(keys=LocalKeyFileProvider(key_file), ledger_origin=ORIGIN)


def _people(engine: Engine, vault: Vault) -> dict[str, str]:
    """PEOPLE citizens, each with a name; returns citizen id -> name."""
    names = {}
    with session_scope(engine) as session:
        for n in range(PEOPLE):
            citizen = create_citizen(session, vault)
            name = f"Person {n}"
            record_data_point(session, vault, citizen.id, "identity.name", name, recorded_by="me")
            names[citizen.id] = name
    return names


def _department_tokens(
    engine: Engine, vault: Vault, citizen_id: str, dpop_key: Any, count: int
) -> list[str]:
    """A department with ``count`` active grants to the citizen's name, a token for each.

    One grant per fetching thread: threads sharing one grant would race for its fetch count
    on PostgreSQL, and the loser of too many races is refused, which is not what this tests.
    """
    tokens = []
    with session_scope(engine) as session:
        account = create_account(session, vault, "sam@example.org", citizen_id=citizen_id)
        department = register_department(session, vault, registration(new_key("ES256")))
        actor = citizen_actor(account.id, citizen_id)
        for _ in range(count):
            request = GrantRequest(
                department_id=department.department.id,
                purpose_code="emergency_housing",
                purpose_text="To find you somewhere safe to stay.",
                data_points=("identity.name",),
                case_reference="HOU-2291",
                duration_days=30,
                data_life_days=90,
                max_fetches=10_000,
            )
            grant = give_grant(session, vault, actor, request).grant
            token = new_secret()
            save_token(
                session,
                access_token=token,
                refresh_token=None,
                department_id=department.department.id,
                grant_id=grant.id,
                code_id=None,
                scope="",
                jkt=dpop_key.thumbprint(),
                now=vault.clock(),
            )
            tokens.append(token)
    return tokens


@pytest.fixture
def serving(engine: Engine, own_key_file: Path, tmp_path: Path) -> Iterator[tuple[str, Vault]]:
    """The app on a real HTTP server in a thread, with its own key provider."""
    from web import create_app
    from web.state import services

    holder: dict[str, Any] = {}
    server: BaseWSGIServer = make_server(
        "127.0.0.1", 0, lambda env, start: holder["app"](env, start), threaded=True
    )
    url = f"http://127.0.0.1:{server.server_port}"
    holder["app"] = create_app(
        {
            "TESTING": True,
            "ENGINE": engine,
            "KEY_PROVIDER": LocalKeyFileProvider(own_key_file),
            "LEDGER_ORIGIN": ORIGIN,
            "MAIL_DIR": str(tmp_path / "mail"),
            "SECRET_KEY": "test-secret-key",
            "BASE_URL": url,
            "RATELIMIT_ENABLED": False,
        }
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url, services(holder["app"]).vault
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        shutil.rmtree(tmp_path / "mail", ignore_errors=True)


def test_fetches_keep_working_through_rotations(
    engine: Engine,
    own_key_file: Path,
    serving: tuple[str, Vault],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, app_vault = serving
    rotator = _vault(own_key_file)  # the operator's process
    names = _people(engine, rotator)
    fetched_id = next(iter(names))
    dpop_key = new_key("ES256")
    tokens = _department_tokens(engine, rotator, fetched_id, dpop_key, FETCHERS)
    # Small batches, so each rotation is many short transactions between the fetches.
    monkeypatch.setattr(keyops, "BATCH", 8)

    statuses: list[int] = []
    rotating = threading.Event()
    rotated = threading.Event()
    fetched_while_rotating = threading.Event()

    def fetch_until_rotated(token: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            while not rotated.is_set():
                during = rotating.is_set()
                proof = make_proof(dpop_key, "GET", url + "/api/v1/data", access_token=token)
                headers = {
                    "Authorization": f"DPoP {token}",
                    "DPoP": proof,
                    "Case-Reference": "HOU-2291",
                    "Acting-Officer": "A. Officer",
                }
                connection.request("GET", "/api/v1/data", headers=headers)
                answer = connection.getresponse()
                answer.read()
                statuses.append(answer.status)
                if during and answer.status == 200:
                    fetched_while_rotating.set()
        finally:
            connection.close()

    fetchers = [threading.Thread(target=fetch_until_rotated, args=(t,)) for t in tokens]
    for fetcher in fetchers:
        fetcher.start()
    try:
        rotating.set()
        for _ in range(ROTATIONS):
            add_key_version(own_key_file)
            assert rewrap_all(engine, rotator) == PEOPLE + 1  # every citizen and the account
        fetched_while_rotating.wait(timeout=10)
    finally:
        rotated.set()
        for fetcher in fetchers:
            fetcher.join(timeout=30)

    assert fetched_while_rotating.is_set()
    assert statuses and set(statuses) == {200}
    newest = ROTATIONS + 1
    # The app noticed the new versions by itself: it wraps under the newest one.
    assert app_vault.keys.current_version == newest
    with session_scope(engine) as session:
        in_use = key_versions_in_use(session)
        assert in_use == {"citizens": {newest: PEOPLE}, "accounts": {newest: 1}}
        for citizen_id, name in names.items():
            assert [p.value for p in current_data_points(session, app_vault, citizen_id)] == [name]


def test_rotation_racing_an_erasure_does_not_undo_it(engine: Engine, own_key_file: Path) -> None:
    vault = _vault(own_key_file)
    names = _people(engine, vault)
    erased_id = next(iter(names))
    add_key_version(own_key_file)
    real_unwrap = vault.keys.unwrap
    erased: list[str] = []

    def unwrap_while_someone_erases(blob: bytes, context: bytes) -> bytes:
        # Between reading a batch and writing it back, the person erases their vault.
        if not erased:
            erased.append(erased_id)
            with session_scope(engine) as session:
                erase_citizen(session, vault, erased_id)
        return real_unwrap(blob, context)

    vault.keys.unwrap = unwrap_while_someone_erases  # type: ignore[method-assign]
    assert rewrap_all(engine, vault) == PEOPLE - 1
    with session_scope(engine) as session:
        assert get_citizen(session, erased_id).wrapped_key is None
        assert key_versions_in_use(session)["citizens"] == {2: PEOPLE - 1}


def test_rotation_skips_a_row_a_fetch_holds_then_comes_back(
    engine: Engine, own_key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite has no row locks: its writers take turns for the whole database")
    vault = _vault(own_key_file)
    names = _people(engine, vault)
    busy_id = next(iter(names))
    add_key_version(own_key_file)
    monkeypatch.setattr(keyops, "PAUSE_SECONDS", 0.01)
    result: list[int] = []
    rotation = threading.Thread(target=lambda: result.append(rewrap_all(engine, vault)))
    # A fetch holds its citizen's row FOR SHARE until it commits (vault.citizens.hold_citizen).
    with session_scope(engine) as fetch:
        fetch.execute(
            select(col(Citizen.id)).where(col(Citizen.id) == busy_id).with_for_update(read=True)
        )
        rotation.start()
        # Everyone else is re-wrapped while the row is held: the rotation did not queue
        # behind the fetch (which would queue every later fetch of that person behind it).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with session_scope(engine) as session:
                if count_to_rewrap(session, vault) == 1:
                    break
            time.sleep(0.02)
        with session_scope(engine) as session:
            assert count_to_rewrap(session, vault) == 1
    rotation.join(timeout=30)
    assert result == [PEOPLE]
    with session_scope(engine) as session:
        assert key_versions_in_use(session)["citizens"] == {2: PEOPLE}
