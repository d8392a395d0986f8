"""`tellonce ledger save-checkpoint` and `check-checkpoint`: a checkpoint kept apart from the
database shows whether a database (or the live service) still holds every entry it signed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from werkzeug.serving import BaseWSGIServer, make_server

from tests.ledger.builders import build_log
from vault import ledger, note
from web.cli import main


@pytest.fixture
def tellonce(db: Any, vault: Any, key_file: Path) -> Any:
    """Run `tellonce ledger ...` against the test's database, keys and ledger name."""
    env = {
        "DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        "TELLONCE_KEY_FILE": str(key_file),
        "TELLONCE_LEDGER_ORIGIN": vault.ledger_origin,
    }

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["ledger", *args], env=env)

    return run


def grow(db: Any, vault: Any, entries: int) -> None:
    with db.tx() as session:
        build_log(session, vault, entries)


def signed_checkpoint(
    vault: Any, size: int, root: bytes, key: Ed25519PrivateKey | None = None
) -> str:
    body = note.checkpoint_body(vault.ledger_origin, size, root)
    return note.sign_note(body, vault.ledger_origin, key or vault.checkpoint_key)


def test_a_ledger_that_grew_is_consistent_with_the_checkpoint_saved_before(
    db: Any, vault: Any, tellonce: Any, tmp_path: Path
) -> None:
    grow(db, vault, 37)
    saved = tmp_path / "published.txt"
    made = tellonce("save-checkpoint", str(saved))
    assert made.exit_code == 0, made.output
    assert made.stdout == f"Saved the checkpoint for 37 entries to {saved}.\n"
    assert (
        note.parse_checkpoint(note.open_note(saved.read_text(), ledger.verifier_key(vault))).size
        == 37
    )
    assert tellonce("check-checkpoint", str(saved)).exit_code == 0
    grow(db, vault, 26)
    checked = tellonce("check-checkpoint", str(saved))
    assert checked.exit_code == 0, checked.output
    assert "its 37 entries are unchanged, and 26 were added since" in checked.stdout


def test_a_database_behind_the_checkpoint_is_reported_with_what_it_lost(
    db: Any, vault: Any, tellonce: Any, tmp_path: Path
) -> None:
    grow(db, vault, 20)
    saved = tmp_path / "later.txt"
    # As a restored older backup sees it: the operator's checkpoint is from 5 entries later.
    saved.write_text(signed_checkpoint(vault, 25, bytes(32)))
    result = tellonce("check-checkpoint", str(saved))
    assert result.exit_code == 1
    assert "holds 20 ledger entries, but the checkpoint" in result.output
    assert "signed for 25: 5 entries are missing" in result.output


@pytest.mark.parametrize("size", [8, 20])
def test_a_rewritten_history_fails_the_consistency_proof(
    db: Any, vault: Any, tellonce: Any, tmp_path: Path, size: int
) -> None:
    grow(db, vault, 20)
    with db.tx() as session:
        real_root = ledger.root_at(session, size)
    forked = bytes([real_root[0] ^ 1]) + real_root[1:]
    saved = tmp_path / "forked.txt"
    saved.write_text(signed_checkpoint(vault, size, forked))
    result = tellonce("check-checkpoint", str(saved))
    assert result.exit_code == 1
    assert f"does not hold the entries the checkpoint in {saved} signed" in result.output
    saved.write_text(signed_checkpoint(vault, size, real_root))
    assert tellonce("check-checkpoint", str(saved)).exit_code == 0


def test_a_checkpoint_signed_by_another_key_or_missing_is_refused(
    db: Any, vault: Any, tellonce: Any, tmp_path: Path
) -> None:
    grow(db, vault, 5)
    saved = tmp_path / "other.txt"
    saved.write_text(signed_checkpoint(vault, 5, bytes(32), Ed25519PrivateKey.generate()))
    result = tellonce("check-checkpoint", str(saved))
    assert result.exit_code == 1
    assert "is not one this ledger signed" in result.output
    missing = tellonce("check-checkpoint", str(tmp_path / "nothing.txt"))
    assert missing.exit_code == 1
    assert "There is no checkpoint file at" in missing.output


@pytest.fixture
def live_url(app: Any) -> Iterator[str]:
    server: BaseWSGIServer = make_server("localhost", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_running_service_is_checked_through_its_consistency_proof_endpoint(
    db: Any, vault: Any, tellonce: Any, tmp_path: Path, live_url: str
) -> None:
    grow(db, vault, 13)
    saved = tmp_path / "published.txt"
    assert tellonce("save-checkpoint", str(saved)).exit_code == 0
    grow(db, vault, 9)
    result = tellonce("check-checkpoint", str(saved), "--url", live_url)
    assert result.exit_code == 0, result.output
    assert "its 13 entries are unchanged, and 9 were added since" in result.stdout
    with db.tx() as session:
        root = ledger.root_at(session, 13)
    saved.write_text(signed_checkpoint(vault, 13, bytes([root[0] ^ 1]) + root[1:]))
    forked = tellonce("check-checkpoint", str(saved), "--url", live_url)
    assert forked.exit_code == 1
    assert f"{live_url} does not hold the entries" in forked.output
