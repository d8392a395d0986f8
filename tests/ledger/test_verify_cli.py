"""`tellonce ledger verify` on the command line: exit 0 on a clean ledger, non-zero with the
first problem on a tampered one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.ledger.builders import build_log
from vault import ledger
from web.cli import main


@pytest.fixture
def verify(db: Any, vault: Any, key_file: Path) -> Any:
    """Run `tellonce ledger verify [args]` against the test's database, keys and log name."""
    with db.tx() as session:
        build_log(session, vault, 300)
        ledger.make_checkpoint(session, vault)
    env = {
        "DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        "TELLONCE_KEY_FILE": str(key_file),
        "TELLONCE_LEDGER_ORIGIN": vault.ledger_origin,
    }

    def run(*args: str) -> Result:
        return CliRunner().invoke(main, ["ledger", "verify", *args], env=env)

    return run


def _problems(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("PROBLEM: ")]


def test_a_clean_ledger_verifies(verify: Any) -> None:
    result = verify()
    assert result.exit_code == 0, result.output
    assert "The ledger verifies: 300 entries" in result.stdout
    assert "300 rows checked" in result.stdout
    assert not _problems(result)


def test_a_removed_entry_fails_with_the_first_problem(db: Any, verify: Any) -> None:
    db.execute("DELETE FROM ledger_entry WHERE idx = 123")
    result = verify()
    assert result.exit_code == 1
    assert _problems(result)[0] == "PROBLEM: Entry 123 is missing."
    assert "verifies" not in result.stdout


def test_a_changed_row_fails_unless_rows_are_skipped(db: Any, verify: Any) -> None:
    entry = db.scalar("SELECT min(idx) FROM ledger_entry WHERE kind = 'data_point.recorded'")
    row_id = db.scalar("SELECT row_id FROM ledger_entry WHERE idx = :i", i=entry)
    db.execute("UPDATE data_point SET recorded_by = 'someone-else' WHERE id = :id", id=row_id)
    result = verify()
    assert result.exit_code == 1
    assert _problems(result) == [
        f"PROBLEM: The data_point row behind entry {entry} has been changed."
    ]
    # The log itself is intact, which --no-rows (log and checkpoints only) confirms.
    assert verify("--no-rows").exit_code == 0
