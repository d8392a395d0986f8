"""scripts/backup and scripts/restore: a real back up, wipe, restore and verify on each
database (scripts/check_restore), and every plain refusal before anything is touched."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from scripts import ops_backup
from scripts.ops_check_restore import check_restore
from tests.conftest import BACKENDS, PG_URL
from vault.keys import init_key_file


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_back_up_wipe_restore_verify_and_an_older_backup_is_caught(
    tmp_path: Path, backend: str
) -> None:
    said: list[str] = []
    problems = check_restore(tmp_path, PG_URL if backend == "postgresql" else None, said.append)
    assert problems == []
    restored = next(line for line in said if line.startswith("Restored: "))
    assert "53 ledger entries, 24 values of 6 people decrypt as before" in restored
    refused = next(line for line in said if line.startswith("The older backup was refused"))
    assert "holds 37 ledger entries" in refused
    assert "signed for 53: 16 entries are missing" in refused


@pytest.fixture
def settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_template: Path
) -> dict[str, Path]:
    """A key file, and a migrated SQLite database holding Tell Once's (empty) tables."""
    key_file = tmp_path / "keys.json"
    init_key_file(key_file)
    database = tmp_path / "live.db"
    database.write_bytes(sqlite_template.read_bytes())
    monkeypatch.setenv("TELLONCE_KEY_FILE", str(key_file))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    return {"key_file": key_file, "database": database, "folder": tmp_path}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    status = ops_backup.main(list(args))
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_a_backup_is_one_private_checked_file_and_the_key_file_is_not_in_it(
    settings: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = settings["folder"] / "b.db"
    status, said = run(capsys, "backup", str(out))
    assert status == 0, said
    assert "(0 ledger entries)" in said
    assert f"The key file ({settings['key_file']}) is not in this backup" in said
    assert out.stat().st_mode & 0o777 == 0o600
    assert not out.with_name("b.db-wal").exists()
    with sqlite3.connect(out) as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    assert settings["key_file"].read_bytes() not in out.read_bytes()


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (["backup", "{folder}/live.db"], "is there already. Choose a new name, or add --force"),
        (["backup", "{folder}/no-folder/b.db"], "The folder {folder}/no-folder does not exist."),
        (["backup", "--database-url", "mysql://x@h/db", "{folder}/b"], "is neither"),
        (["backup", "--database-url", "sqlite://", "{folder}/b"], "in-memory SQLite database"),
        (
            ["backup", "--database-url", "sqlite:///{folder}/none.db", "{folder}/b"],
            "There is no database at",
        ),
        (
            ["backup", "--database-url", "sqlite:///{folder}/junk.db", "{folder}/b"],
            "holds no Tell Once tables",
        ),
        (
            ["restore", "{folder}/missing.backup"],
            "There is no backup file at {folder}/missing.backup.",
        ),
        (["restore", "{folder}/junk.db"], "is not a Tell Once backup"),
        (
            ["restore", "{folder}/fake.dump"],
            "is a PostgreSQL backup, but the database URL names an SQLite",
        ),
        (
            ["restore", "{folder}/good.db"],
            "already holds data. Restore into a new file, or stop the service",
        ),
        (
            ["restore", "--checkpoint", "{folder}/cp.txt", "{folder}/good.db"],
            "There is no saved checkpoint",
        ),
        (
            ["restore", "--database-url", "postgresql://u@h", "{folder}/good.db"],
            "names no database",
        ),
    ],
)
def test_bad_input_is_refused_plainly_and_changes_nothing(
    settings: dict[str, Path], capsys: pytest.CaptureFixture[str], args: list[str], refusal: str
) -> None:
    folder = settings["folder"]
    (folder / "junk.db").write_bytes(b"a note, not a database")
    (folder / "fake.dump").write_bytes(b"PGDMP\x01\x0e")
    assert ops_backup.main(["backup", str(folder / "good.db")]) == 0
    capsys.readouterr()
    before = settings["database"].read_bytes()
    status, said = run(capsys, *(a.format(folder=folder) for a in args))
    assert status == 1
    assert refusal.format(folder=folder) in said
    assert said.count("Error: ") == 1
    assert settings["database"].read_bytes() == before
    assert not list(folder.glob("*.partial"))


def test_a_restore_without_the_key_file_is_refused_before_anything_changes(
    settings: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = settings["folder"]
    assert ops_backup.main(["backup", str(folder / "good.db")]) == 0
    settings["key_file"].unlink()
    target = folder / "new.db"
    status, said = run(
        capsys, "restore", "--database-url", f"sqlite:///{target}", str(folder / "good.db")
    )
    assert status == 1
    assert f"There is no key file at {settings['key_file']}. A backup never holds it" in said
    assert not target.exists()


@pytest.mark.skipif(PG_URL is None, reason="TEST_DATABASE_URL is not set")
def test_postgresql_targets_that_are_missing_or_in_use_are_refused(
    settings: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert PG_URL is not None
    folder = settings["folder"]
    server = make_url(PG_URL).set(drivername="postgresql")
    name = f"tellonce_ops_refuse_{os.getpid()}"
    missing = server.set(database=name).render_as_string(hide_password=False)
    (folder / "fake.dump").write_bytes(b"PGDMP\x01\x0e")
    status, said = run(capsys, "restore", "--database-url", missing, str(folder / "fake.dump"))
    assert status == 1
    assert f"The database {missing} does not exist. Make it first" in said
    admin = server.render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(missing) as service:  # the service, still running
            service.execute("CREATE TABLE citizen (id text)")
            service.commit()
            status, said = run(
                capsys, "restore", "--force", "--database-url", missing, str(folder / "fake.dump")
            )
            assert status == 1
            assert "1 other connections are open" in said
        status, said = run(capsys, "restore", "--database-url", missing, str(folder / "fake.dump"))
        assert status == 1
        assert "already holds 1 tables. Restore into a new, empty database" in said
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_postgresql_password_is_never_on_a_command_line_or_in_a_message() -> None:
    target = ops_backup.parse_target(
        "postgresql+psycopg://tellonce:s3cret@db.example:5432/tellonce"
    )
    assert target.libpq_url == "postgresql://tellonce@db.example:5432/tellonce"
    assert target.password == "s3cret"
    assert "s3cret" not in target.shown
