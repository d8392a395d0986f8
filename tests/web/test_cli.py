"""The `tellonce` command line with bad and good input: one plain line and a non-zero exit
when something is wrong, never a stack trace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from vault.keys import init_key_file
from web.cli import main


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Settings for a fresh SQLite database and a key file, both in a temporary folder."""
    folder = tmp_path / "instance"
    return {
        "DATABASE_URL": f"sqlite:///{folder / 'tellonce.db'}",
        "TELLONCE_KEY_FILE": str(folder / "keys.json"),
        "TELLONCE_INSTANCE": str(folder),
        "TELLONCE_MAIL_DIR": str(folder / "mail"),
        "TELLONCE_SQLITE_SYNCHRONOUS": "OFF",
    }


@pytest.fixture
def ready(env: dict[str, str]) -> dict[str, str]:
    """The same, with the key file made and the tables created."""
    init_key_file(env["TELLONCE_KEY_FILE"])
    assert run(env, "db", "upgrade").output == "The database is up to date.\n"
    return env


def run(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env=env)
    # Anything but a clean exit means an exception escaped: the user would see a traceback.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def plain_error(result: Result) -> str:
    """The single line a failed command printed (without click's 'Error: ')."""
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0].removeprefix("Error: ")


COMMANDS = [
    ["db", "upgrade"],
    ["keys", "status"],
    ["keys", "rotate"],
    ["keys", "retire", "1"],
    ["ledger", "verify"],
    ["ledger", "checkpoint"],
    ["demo", "seed"],
    ["export", "someone"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_missing_key_file(env: dict[str, str], command: list[str]) -> None:
    message = plain_error(run(env, *command))
    assert (
        message
        == f"No key file at {env['TELLONCE_KEY_FILE']}. Run `tellonce keys init` to make one."
    )


@pytest.mark.parametrize("command", [["keys", "status"], ["keys", "rotate"], ["db", "upgrade"]])
def test_key_file_readable_by_others(env: dict[str, str], command: list[str]) -> None:
    path = Path(env["TELLONCE_KEY_FILE"])
    init_key_file(path)
    path.chmod(0o644)
    before = path.read_bytes()
    message = plain_error(run(env, *command))
    assert message == f"The key file {path} can be read by other users. Run `chmod 600 {path}`."
    assert path.read_bytes() == before  # a refused rotation leaves the key file alone


def test_keys_init_makes_a_private_file_once(env: dict[str, str]) -> None:
    path = Path(env["TELLONCE_KEY_FILE"])
    result = run(env, "keys", "init")
    assert result.exit_code == 0
    assert result.output.startswith(f"Made a new key file at {path}.")
    assert path.stat().st_mode & 0o777 == 0o600
    assert plain_error(run(env, "keys", "init")) == (
        f"There is already a key file at {path}; it was not replaced."
    )


def test_upgrade_seed_twice_and_verify(ready: dict[str, str]) -> None:
    assert run(ready, "db", "upgrade").output == "The database is up to date.\n"  # again: no-op
    seeded = run(ready, "demo", "seed")
    assert (seeded.exit_code, seeded.output) == (0, "Added the demo data.\n")
    again = run(ready, "demo", "seed")
    assert (again.exit_code, again.output) == (0, "The demo data is already there.\n")
    verified = run(ready, "ledger", "verify")
    assert verified.exit_code == 0
    # A citizen, seven facts, two story topics, Jo's delegation and the demo department:
    # 12 entries, all checked.
    assert re.fullmatch(
        r"The ledger verifies: 12 entries, [1-9][0-9]* signed checkpoints, 12 rows checked\.\n",
        verified.stdout,
    ), verified.stdout


def test_verify_reports_a_changed_row(ready: dict[str, str]) -> None:
    from vault.db import make_engine

    run(ready, "demo", "seed")
    engine = make_engine(ready["DATABASE_URL"])
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE data_point SET recorded_by = 'someone else'")
    engine.dispose()
    result = run(ready, "ledger", "verify")
    assert result.exit_code == 1
    assert "PROBLEM: The data_point row behind entry 1 has been changed." in result.stderr
    assert "The ledger verifies" not in result.output


def test_empty_ledger_and_unknown_citizen(ready: dict[str, str]) -> None:
    assert plain_error(run(ready, "ledger", "checkpoint")) == (
        "The ledger is empty, so there is nothing to sign."
    )
    assert plain_error(run(ready, "export", "no-such-person")) == "We could not find that person."
    assert run(ready, "ledger", "verify").stdout.startswith("The ledger verifies: 0 entries")


def test_tables_not_made_yet(env: dict[str, str]) -> None:
    init_key_file(env["TELLONCE_KEY_FILE"])
    message = plain_error(run(env, "demo", "seed"))
    assert "Traceback" not in message and "sqlite3" not in message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql+psycopg://postgres@127.0.0.1:1/test", "The database cannot be reached."),
        (
            "sqlite:////proc/tellonce-nowhere/tellonce.db",
            "The folder for the database, /proc/tellonce-nowhere, cannot be made.",
        ),
    ],
    ids=["postgres-closed-port", "sqlite-no-such-folder"],
)
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_unreachable_database(
    env: dict[str, str], url: str, expected: str, command: list[str]
) -> None:
    path = Path(env["TELLONCE_KEY_FILE"])
    init_key_file(path)
    before = path.read_bytes()
    assert plain_error(run({**env, "DATABASE_URL": url}, *command)) == expected
    assert path.read_bytes() == before  # no key version was added or retired meanwhile


def test_commands_on_the_test_database(engine: Engine, env: dict[str, str]) -> None:
    # The same commands against the fixture database (PostgreSQL too, when configured).
    env = {**env, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    init_key_file(env["TELLONCE_KEY_FILE"])
    assert run(env, "db", "upgrade").exit_code == 0
    assert run(env, "demo", "seed").output == "Added the demo data.\n"
    assert run(env, "demo", "seed").output == "The demo data is already there.\n"
    assert run(env, "ledger", "verify").stdout.startswith("The ledger verifies: 12 entries")
