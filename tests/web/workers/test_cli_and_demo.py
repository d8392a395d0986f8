"""`tellonce citizen invite` and the demo seed's support worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from consent.actors import active_delegation
from consent.models import Delegation
from vault.accounts import find_account
from vault.keys import init_key_file
from vault.services import Vault
from vault.signin_models import SignInLink
from web.cli import main
from web.demo import seed_demo
from web.mail import read_outbox


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A fresh SQLite database, key file and mail folder, with the tables made."""
    folder = tmp_path / "instance"
    settings = {
        "DATABASE_URL": f"sqlite:///{folder / 'tellonce.db'}",
        "TELLONCE_KEY_FILE": str(folder / "keys.json"),
        "TELLONCE_INSTANCE": str(folder),
        "TELLONCE_MAIL_DIR": str(folder / "mail"),
        "TELLONCE_SQLITE_SYNCHRONOUS": "OFF",
        "BASE_URL": "https://tellonce.example",
    }
    init_key_file(settings["TELLONCE_KEY_FILE"])
    assert run(settings, "db", "upgrade").exit_code == 0
    return settings


def run(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def test_invite_emails_a_link_and_prints_none(env: dict[str, str]) -> None:
    result = run(env, "citizen", "invite", "--email", "New@Example.org")
    assert (result.exit_code, result.output) == (0, "We sent a link to finish signing up.\n")
    (message,) = read_outbox(env["TELLONCE_MAIL_DIR"])
    assert message["To"] == "new@example.org"
    assert "https://tellonce.example/sign-in/link?token=" in message.get_content()


def test_print_link_is_for_operators_without_mail(env: dict[str, str]) -> None:
    result = run(env, "citizen", "invite", "--email", "new@example.org", "--print-link")
    lines = result.output.splitlines()
    assert lines[0] == "We sent a link to finish signing up."
    assert lines[1].startswith("https://tellonce.example/sign-in/link?token=")
    assert lines[1] in read_outbox(env["TELLONCE_MAIL_DIR"])[0].get_content()


def test_a_bad_email_gets_one_plain_line(env: dict[str, str]) -> None:
    result = run(env, "citizen", "invite", "--email", "not-an-email")
    assert result.exit_code != 0
    assert result.output.strip() == (
        "Error: Enter an email address in the right format, like name@example.com."
    )
    assert read_outbox(env["TELLONCE_MAIL_DIR"]) == []


def test_the_demo_seed_adds_jo_once(db: Any, vault: Vault) -> None:
    with db.tx() as session:
        assert seed_demo(session, vault) is True
    with db.tx() as session:
        assert seed_demo(session, vault) is False
    with db.tx() as session:
        sam = find_account(session, vault, "sam@example.org")
        jo = find_account(session, vault, "jo@example.org")
        assert sam is not None and jo is not None and jo.citizen_id is None
        live = active_delegation(session, str(sam.citizen_id), jo.id, vault.clock())
        assert live is not None
        assert live.scopes == ["view", "answer_requests"]
        assert (live.ends_at - vault.clock()).days == 180
        assert live.created_by == f"citizen:{sam.id}"
        assert session.execute(select(func.count()).select_from(Delegation)).scalar_one() == 1
        assert session.execute(select(func.count()).select_from(SignInLink)).scalar_one() == 0


def test_without_a_database_it_says_so_plainly(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    settings = {
        "DATABASE_URL": f"sqlite:///{folder / 'missing' / 'tellonce.db'}",
        "TELLONCE_KEY_FILE": str(folder / "keys.json"),
        "TELLONCE_MAIL_DIR": str(folder / "mail"),
    }
    init_key_file(settings["TELLONCE_KEY_FILE"])
    result = run(settings, "citizen", "invite", "--email", "new@example.org")
    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error: ")
    assert read_outbox(settings["TELLONCE_MAIL_DIR"]) == []
