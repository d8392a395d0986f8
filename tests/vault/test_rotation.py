"""Key rotation against a real database: data written before and after a rotation reads
back, re-wrapping moves every data key, and a retired version is refused by name. Also the
`tellonce keys` commands end to end.

Every test here makes its own key file: rotating the session-wide one would change the keys
under every other test.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine

from tests.conftest import Database
from vault.accounts import account_email, create_account, get_account
from vault.citizens import create_citizen, get_citizen, key_context
from vault.clock import FrozenClock
from vault.db import make_engine
from vault.errors import KeyProviderError, RetiredKeyError, StorageError
from vault.keyops import BATCH, PACE, count_to_rewrap, key_versions_in_use, rewrap_all
from vault.keys import LocalKeyFileProvider, add_key_version, retire_key_version
from vault.lifecycle import erase_citizen, export_citizen
from vault.records import (
    current_data_points,
    current_story,
    record_data_point,
    record_story_section,
)
from vault.services import Vault
from vault.verify import verify_ledger
from web import cli
from web.cli import main


@pytest.fixture
def own_vault(own_key_file: Path, clock: FrozenClock) -> Vault:
    return Vault(
        keys=LocalKeyFileProvider(own_key_file), clock=clock, ledger_origin="test.tellonce/ledger"
    )


def _provider(vault: Vault) -> LocalKeyFileProvider:
    assert isinstance(vault.keys, LocalKeyFileProvider)
    return vault.keys


def _person(db: Database, vault: Vault, email: str, name: str) -> tuple[str, str]:
    with db.tx() as s:
        citizen = create_citizen(s, vault)
        account = create_account(s, vault, email, citizen_id=citizen.id)
        record_data_point(s, vault, citizen.id, "identity.name", name, recorded_by="me")
        record_story_section(s, vault, citizen.id, "housing", f"{name}'s story.", recorded_by="me")
        return citizen.id, account.id


def _reads_back(db: Database, vault: Vault, ids: tuple[str, str], name: str, email: str) -> None:
    citizen_id, account_id = ids
    with db.tx() as s:
        assert [p.value for p in current_data_points(s, vault, citizen_id)] == [name]
        assert [x.text for x in current_story(s, vault, citizen_id)] == [f"{name}'s story."]
        assert account_email(vault, get_account(s, account_id)) == email


def test_rotate_rewrap_retire(db: Database, own_vault: Vault, own_key_file: Path) -> None:
    provider = _provider(own_vault)
    before = _person(db, own_vault, "before@example.org", "Sam Before")
    with db.tx() as s:
        old_blob = bytes(get_citizen(s, before[0]).wrapped_key or b"")
    assert provider.version_of(old_blob) == 1

    assert add_key_version(own_key_file) == 2
    provider.reload()
    after = _person(db, own_vault, "after@example.org", "Alex After")
    # Old and new both read while version 1 is still live.
    _reads_back(db, own_vault, before, "Sam Before", "before@example.org")
    _reads_back(db, own_vault, after, "Alex After", "after@example.org")
    with db.tx() as s:
        in_use = key_versions_in_use(s)
        assert count_to_rewrap(s, own_vault) == 2  # Sam's citizen key and account key
    assert in_use["citizens"] == {1: 1, 2: 1}
    assert in_use["accounts"] == {1: 1, 2: 1}

    progress: list[int] = []
    assert rewrap_all(db.engine, own_vault, progress.append) == 2
    assert sum(progress) == 2
    assert rewrap_all(db.engine, own_vault) == 0  # a second pass finds nothing to do
    with db.tx() as s:
        assert key_versions_in_use(s) == {"citizens": {2: 2}, "accounts": {2: 2}}
        new_blob = bytes(get_citizen(s, before[0]).wrapped_key or b"")
    assert provider.version_of(new_blob) == 2
    assert db.scalar("SELECT kek_version FROM citizen WHERE id = :c", c=before[0]) == 2

    retire_key_version(own_key_file, 1)
    provider.reload()
    assert [(v.version, v.retired) for v in provider.versions()] == [(1, True), (2, False)]
    # Everything was re-wrapped, so everything still reads after retirement.
    _reads_back(db, own_vault, before, "Sam Before", "before@example.org")
    _reads_back(db, own_vault, after, "Alex After", "after@example.org")
    with db.tx() as s:
        assert verify_ledger(s, own_vault).ok
    # A key saved before the rotation (say, in an old backup) is now refused, by version.
    with pytest.raises(RetiredKeyError) as caught:
        provider.unwrap(old_blob, key_context("citizen", before[0]))
    assert caught.value.message == "This was locked with key version 1, which has been retired."


def test_old_wrapped_key_put_back_in_the_database_is_refused(
    db: Database, own_vault: Vault, own_key_file: Path
) -> None:
    provider = _provider(own_vault)
    citizen_id, _account = _person(db, own_vault, "sam@example.org", "Sam")
    with db.tx() as s:
        old_blob = bytes(get_citizen(s, citizen_id).wrapped_key or b"")
    add_key_version(own_key_file)
    provider.reload()
    rewrap_all(db.engine, own_vault)
    retire_key_version(own_key_file, 1)
    provider.reload()
    # As if a stale backup of the citizen row were restored.
    db.execute("UPDATE citizen SET wrapped_key = :b WHERE id = :c", b=old_blob, c=citizen_id)
    with pytest.raises(RetiredKeyError) as caught, db.tx() as s:
        export_citizen(s, own_vault, citizen_id)
    assert "key version 1" in caught.value.message


def test_the_current_version_cannot_be_retired(own_vault: Vault, own_key_file: Path) -> None:
    with pytest.raises(KeyProviderError) as caught:
        retire_key_version(own_key_file, 1)
    assert caught.value.message == (
        "Key version 1 is the current version and cannot be retired. "
        "Run `tellonce keys rotate` first."
    )
    with pytest.raises(KeyProviderError, match="has no key version 9"):
        retire_key_version(own_key_file, 9)


def test_rotation_does_not_undo_an_erasure(
    db: Database, own_vault: Vault, own_key_file: Path
) -> None:
    citizen_id, _account = _person(db, own_vault, "sam@example.org", "Sam")
    with db.tx() as s:
        erase_citizen(s, own_vault, citizen_id)
    add_key_version(own_key_file)
    _provider(own_vault).reload()
    assert rewrap_all(db.engine, own_vault) == 0
    assert db.scalar("SELECT wrapped_key FROM citizen WHERE id = :c", c=citizen_id) is None


# --- the command line -----------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, engine: Engine) -> dict[str, str]:
    """Settings for `tellonce` pointing at a fresh database and a key file of its own."""
    if engine.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'cli' / 'tellonce.db'}"
    else:
        url = engine.url.render_as_string(hide_password=False)
    return {
        "DATABASE_URL": url,
        "TELLONCE_KEY_FILE": str(tmp_path / "cli" / "keys.json"),
        "TELLONCE_INSTANCE": str(tmp_path / "cli"),
        "TELLONCE_MAIL_DIR": str(tmp_path / "cli" / "mail"),
        "TELLONCE_SQLITE_SYNCHRONOUS": "OFF",
    }


def _run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _status(env: dict[str, str]) -> dict[int, str]:
    code, out = _run(env, "keys", "status")
    assert code == 0, out
    lines = {}
    for line in out.splitlines():
        found = re.match(r"version (\d+)  made \S+ \S+  (.*)$", line)
        assert found, line
        lines[int(found.group(1))] = " ".join(found.group(2).split())
    return lines


def test_keys_commands_end_to_end(cli_env: dict[str, str]) -> None:
    assert _run(cli_env, "keys", "init")[0] == 0
    assert _run(cli_env, "db", "upgrade")[0] == 0
    assert _run(cli_env, "demo", "seed") == (0, "Added the demo data.\n")
    assert _status(cli_env) == {1: "citizens 1 accounts 2 current"}

    # A rotation that stopped half way: version 2 is current, but nothing is re-wrapped.
    add_key_version(cli_env["TELLONCE_KEY_FILE"])
    code, out = _run(cli_env, "keys", "retire", "1")
    assert code != 0
    assert out == "Error: 3 data keys still use version 1. Run `tellonce keys rotate` first.\n"
    assert _status(cli_env) == {1: "citizens 1 accounts 2", 2: "citizens 0 accounts 0 current"}

    code, out = _run(cli_env, "keys", "rotate")
    assert code == 0, out
    assert "Key version 3 is now current; re-wrapped 3 data keys." in out
    assert _status(cli_env) == {
        1: "citizens 0 accounts 0",
        2: "citizens 0 accounts 0",
        3: "citizens 1 accounts 2 current",
    }
    assert _run(cli_env, "keys", "retire", "1") == (0, "Key version 1 is retired.\n")
    assert _run(cli_env, "keys", "retire", "2") == (0, "Key version 2 is retired.\n")
    assert _status(cli_env)[1] == "citizens 0 accounts 0 retired"

    code, out = _run(cli_env, "keys", "retire", "3")
    assert code != 0
    assert "still use version 3" in out
    # The demo data still reads under the new key, and the ledger still verifies.
    assert _run(cli_env, "demo", "seed") == (0, "The demo data is already there.\n")
    engine = make_engine(cli_env["DATABASE_URL"])
    with engine.connect() as connection:
        citizen_id = connection.exec_driver_sql("SELECT id FROM citizen").scalar_one()
    engine.dispose()
    code, out = _run(cli_env, "export", citizen_id)
    assert code == 0 and json.loads(out)["your_information"][0]["versions"][0]["value"] == (
        "Sam Taylor"
    )
    code, out = _run(cli_env, "ledger", "verify")
    assert code == 0 and "The ledger verifies" in out


@pytest.mark.skipif(sys.platform != "linux", reason="only Linux gives a thread its own nice value")
def test_rotate_rewraps_in_a_thread_at_lower_priority(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run(cli_env, "keys", "init")[0] == 0
    assert _run(cli_env, "db", "upgrade")[0] == 0
    seen: list[tuple[int, int | None, float]] = []

    def rewrap(_engine: Engine, _vault: Vault, _progress: Any, *, batch: int, pace: float) -> int:
        seen.append((os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), batch, pace))
        return 0

    monkeypatch.setattr(cli, "rewrap_all", rewrap)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert _run(cli_env, "keys", "rotate")[0] == 0
    assert _run(cli_env, "keys", "rotate", "--nice", "3", "--batch", "7", "--pace", "0.5")[0] == 0
    assert _run(cli_env, "keys", "rotate", "--nice", "0")[0] == 0
    assert seen == [
        (min(19, mine + 10), BATCH, PACE),
        (min(19, mine + 3), 7, 0.5),
        (mine, BATCH, PACE),
    ]
    # Only the re-wrapping thread went down: this one (the test, or the command) did not.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine

    def fails(*_args: Any, **_kwargs: Any) -> int:
        raise StorageError("The database refused the change, so nothing was saved.")

    monkeypatch.setattr(cli, "rewrap_all", fails)
    code, out = _run(cli_env, "keys", "rotate")
    assert code == 1
    assert out.endswith("Error: The database refused the change, so nothing was saved.\n")
