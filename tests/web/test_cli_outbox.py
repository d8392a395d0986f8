"""`tellonce outbox run` and `tellonce outbox status` against a real database (both kinds):
what an operator sees when webhooks answer, when one is down, and when the worker is stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from consent import notices
from consent.citizen_notices import notify_citizen
from consent.notices import DepartmentNotice, tell_department
from tests.connectors.webhook import Webhook, add_department, refused_url, running_webhook
from tests.web.test_cli import plain_error, run
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.services import Vault
from web.mail import read_outbox

HOUSING = "dept-housing"
TELLONCE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "tellonce"


@pytest.fixture
def env(engine: Engine, key_file: Path, tmp_path: Path) -> dict[str, str]:
    """Settings for the test database (SQLite or PostgreSQL) and the tests' key file."""
    return {
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "TELLONCE_KEY_FILE": str(key_file),
        "TELLONCE_INSTANCE": str(tmp_path / "instance"),
        "TELLONCE_MAIL_DIR": str(tmp_path / "mail"),
        "TELLONCE_SQLITE_SYNCHRONOUS": "OFF",
        "BASE_URL": "https://tellonce.example",
    }


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with running_webhook() as hook:
        yield hook


def department_with_webhook(db: Any, vault: Vault, url: str) -> None:
    add_department(db, vault, HOUSING, url, name="Anytown Council housing")


def grant_revoked(db: Any, vault: Vault) -> None:
    """Commit a unit of work that tells the department a grant was stopped (wall clock)."""
    with db.tx() as session:
        citizen_id = create_citizen(session, vault).id
    with db.tx() as session:
        tell_department(
            session,
            DepartmentNotice(HOUSING, notices.GRANT_REVOKED, citizen_id, {"grant_id": "g-1"}),
        )


def test_run_once_sends_what_is_due(
    db: Any, vault: Vault, env: dict[str, str], webhook: Webhook
) -> None:
    department_with_webhook(db, vault, webhook.url)
    grant_revoked(db, vault)
    result = run(env, "outbox", "run", "--once")
    assert (result.exit_code, result.output) == (0, "Sent 1.\n")
    assert len(webhook.received) == 1
    assert run(env, "outbox", "run", "--once").output == "Nothing to send.\n"
    assert run(env, "outbox", "status").output == "Waiting: 0. Delivered: 1. Failing: 0.\n"


def test_a_webhook_that_is_down_shows_in_the_status(
    db: Any, vault: Vault, env: dict[str, str]
) -> None:
    department_with_webhook(db, vault, refused_url())
    grant_revoked(db, vault)
    result = run(env, "outbox", "run", "--once")
    assert (result.exit_code, result.output) == (0, "Sent 0, 1 failed: will retry.\n")
    status = run(env, "outbox", "status")
    assert status.exit_code == 0
    first, second = status.output.splitlines()
    assert re.fullmatch(
        r"Waiting: 1 \(the oldest for \d+ seconds\)\. Delivered: 0\. Failing: 1\.", first
    )
    assert re.fullmatch(
        r"Anytown Council housing \(dept-housing\): 1 failing, next try "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\. Last error: The webhook refused the connection\.",
        second,
    )


def test_an_empty_outbox(env: dict[str, str]) -> None:
    assert run(env, "outbox", "status").output == "Waiting: 0. Delivered: 0. Failing: 0.\n"
    assert run(env, "outbox", "run", "--once").output == "Nothing to send.\n"


def test_run_once_emails_people_with_news(db: Any, vault: Vault, env: dict[str, str]) -> None:
    with db.tx() as session:
        citizen_id = create_citizen(session, vault).id
        create_account(session, vault, "sam@example.org", citizen_id=citizen_id)
    with db.tx() as session:
        notify_citizen(session, citizen_id, "decision_recorded", "d-1", vault.clock())
    result = run(env, "outbox", "run", "--once")
    assert (result.exit_code, result.output) == (0, "Emailed 1 person.\n")
    [email] = read_outbox(env["TELLONCE_MAIL_DIR"])
    assert email["To"] == "sam@example.org"
    assert "https://tellonce.example/" in email.get_content()


@pytest.mark.parametrize("command", [["run", "--once"], ["status"]], ids=" ".join)
def test_missing_key_file(env: dict[str, str], tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "no-keys.json"
    message = plain_error(run({**env, "TELLONCE_KEY_FILE": str(missing)}, "outbox", *command))
    assert message == f"No key file at {missing}. Run `tellonce keys init` to make one."


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_the_worker_stops_cleanly(
    db: Any, vault: Vault, env: dict[str, str], webhook: Webhook, stop: signal.Signals
) -> None:
    department_with_webhook(db, vault, webhook.url)
    grant_revoked(db, vault)
    worker = subprocess.Popen(
        [str(TELLONCE), "outbox", "run", "--interval", "0.2"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout is not None
        assert worker.stdout.readline() == "Sent 1.\n"  # it is running, and has sent
        worker.send_signal(stop)
        out, err = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert (worker.returncode, out, err) == (0, "Stopped sending notifications.\n", "")
    assert len(webhook.received) == 1
