"""Back up and restore Tell Once's database: what scripts/backup and scripts/restore run.

    scripts/backup FILE                                  # DATABASE_URL's database, to FILE
    scripts/restore [--force] [--checkpoint SAVED] FILE  # FILE into DATABASE_URL's database

SQLite: SQLite's online backup API copies a consistent snapshot while the service runs (a
plain file copy of a database in WAL mode can miss or tear recent transactions); the copy
is checked with ``PRAGMA integrity_check`` and is one self-contained file.
PostgreSQL: ``pg_dump --format=custom`` inside a snapshot the script also reads the ledger
size from, and ``pg_restore --single-transaction`` into an empty database.

A restore ends with ``tellonce db upgrade``, ``tellonce ledger verify`` and, given the last
checkpoint the operator saved, ``tellonce ledger check-checkpoint``: any failure exits 1.
The key file is never in a backup; both scripts say so.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
KEY_FILE_REMINDER = (
    "The key file ({key_file}) is not in this backup, and must never be stored beside it. "
    "Back it up separately after every `tellonce keys ...` command (docs/operations.md)."
)

RESTORE_REMINDER = (
    "The backup held no key file: this data opens only with the key file at {key_file}, "
    "from the time of the backup or later. Keep that key file's own backup apart from this one."
)


class Refused(Exception):
    """The script will not go on; the message says why in plain words."""


@dataclass(frozen=True)
class Target:
    """A database named by a Tell Once DATABASE_URL."""

    url: str
    kind: str  # "sqlite" or "postgresql"
    sqlite_path: Path | None = None
    libpq_url: str = ""  # for psycopg, pg_dump and pg_restore: no "+psycopg", no password
    password: str | None = None  # passed as PGPASSWORD, never on a command line (ps shows those)
    shown: str = ""  # for messages, without a password


def parse_target(url: str) -> Target:
    """Read a DATABASE_URL; refuse anything that is not an SQLite file or PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise Refused(f"The database URL {url!r} is not a database URL.") from None
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise Refused("The database URL names an in-memory SQLite database: give a file.")
        return Target(url, "sqlite", sqlite_path=Path(parsed.database), shown=shown)
    if backend == "postgresql":
        if not parsed.database:
            raise Refused(f"The database URL {shown} names no database.")
        # URL.set() takes None as "leave as it is", so the password is dropped with _replace.
        plain = parsed.set(drivername="postgresql")._replace(password=None)
        return Target(
            url,
            "postgresql",
            libpq_url=plain.render_as_string(hide_password=False),
            password=parsed.password,
            shown=shown,
        )
    raise Refused(f"Tell Once runs on SQLite or PostgreSQL; {shown} is neither.")


def backup_kind(path: Path) -> str:
    """Say whether a file is an SQLite database or a pg_dump custom-format archive."""
    if not path.is_file():
        raise Refused(f"There is no backup file at {path}.")
    with path.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PG_DUMP_MAGIC):
        return "postgresql"
    raise Refused(f"{path} is not a Tell Once backup (not SQLite, not pg_dump --format=custom).")


def _private_file(path: Path) -> None:
    """Make an empty file only its owner can read (backups hold wrapped keys and hashes)."""
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _ledger_size_sqlite(connection: sqlite3.Connection, what: str) -> int:
    try:
        row = connection.execute("SELECT size FROM ledger_head WHERE id = 1").fetchone()
    except sqlite3.DatabaseError:
        raise Refused(f"{what} holds no Tell Once tables.") from None
    return int(row[0]) if row else 0


def _check_sqlite(connection: sqlite3.Connection, what: str) -> None:
    (result,) = connection.execute("PRAGMA integrity_check").fetchone()
    if result != "ok":
        raise Refused(f"{what} is damaged: SQLite's integrity check says {result!r}.")


def _connect_pg(target: Target) -> psycopg.Connection:
    try:
        return psycopg.connect(target.libpq_url, password=target.password, connect_timeout=10)
    except psycopg.OperationalError as exc:
        if "does not exist" in str(exc):
            raise Refused(
                f"The database {target.shown} does not exist. Make it first, empty "
                "(for example with createdb), and run this again."
            ) from None
        if "authentication failed" in str(exc):
            raise Refused(
                f"The database {target.shown} refused the user name or password in the URL."
            ) from None
        raise Refused(f"The database {target.shown} cannot be reached.") from None


def _run(command: list[str], what: str, password: str | None = None) -> None:
    """Run pg_dump or pg_restore; refuse with its own error lines if it fails."""
    if shutil.which(command[0]) is None:
        raise Refused(
            f"{command[0]} is not installed (on Debian: apt-get install postgresql-client)."
        )
    # Our own fixed commands (pg_dump, pg_restore) with paths and URLs as arguments, no shell.
    env = {**os.environ, **({"PGPASSWORD": password} if password is not None else {})}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # nosec B603
    if done.returncode != 0:
        raise Refused(f"{what} failed: {done.stderr.strip()}")


def backup(target: Target, out: Path, *, force: bool = False) -> int:
    """Write a consistent backup of the database to ``out``; return its ledger size."""
    if out.exists() and not force:
        raise Refused(f"{out} is there already. Choose a new name, or add --force to replace it.")
    if not out.parent.is_dir():
        raise Refused(f"The folder {out.parent} does not exist.")
    # Written beside the target and renamed at the end: a failed or interrupted backup never
    # leaves a file that looks complete.
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    _private_file(partial)
    try:
        size = (
            _backup_sqlite(target, partial)
            if target.kind == "sqlite"
            else _backup_pg(target, partial)
        )
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, out)
    return size


def _backup_sqlite(target: Target, partial: Path) -> int:
    assert target.sqlite_path is not None
    if not target.sqlite_path.is_file():
        raise Refused(f"There is no database at {target.sqlite_path}.")
    source = sqlite3.connect(target.sqlite_path, timeout=30)
    copy = sqlite3.connect(partial)
    try:
        _ledger_size_sqlite(source, f"The database at {target.sqlite_path}")
        source.backup(copy)
        # One self-contained file, with no -wal beside it to lose.
        copy.execute("PRAGMA journal_mode=DELETE")
        _check_sqlite(copy, "The backup just made")
        return _ledger_size_sqlite(copy, "The backup just made")
    finally:
        copy.close()
        source.close()


def _backup_pg(target: Target, partial: Path) -> int:
    with _connect_pg(target) as connection:
        # pg_dump reads the snapshot this transaction exports, so the ledger size printed
        # is exactly the size in the dump, however busy the service is meanwhile.
        connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        connection.read_only = True
        snapshot = connection.execute("SELECT pg_export_snapshot()").fetchone()
        try:
            row = connection.execute("SELECT size FROM ledger_head WHERE id = 1").fetchone()
        except psycopg.errors.UndefinedTable:
            raise Refused(f"The database {target.shown} holds no Tell Once tables.") from None
        assert snapshot is not None
        _run(
            [
                "pg_dump",
                "--format=custom",
                f"--snapshot={snapshot[0]}",
                f"--file={partial}",
                f"--dbname={target.libpq_url}",
            ],
            "pg_dump",
            target.password,
        )
        connection.rollback()
    _run(["pg_restore", "--list", str(partial)], "Reading the new backup back")
    return int(row[0]) if row else 0


def _sqlite_holds_data(path: Path) -> bool:
    if not path.exists() or path.stat().st_size == 0:
        return False
    connection = sqlite3.connect(path)
    try:
        (count,) = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError:
        return True  # something that is not an empty database: never overwrite it silently
    finally:
        connection.close()
    return bool(count)


def load(target: Target, source: Path, *, force: bool = False) -> None:
    """Put a backup file into the target database (empty, or emptied with ``force``)."""
    kind = backup_kind(source)
    if kind != target.kind:
        names = {"sqlite": "an SQLite", "postgresql": "a PostgreSQL"}
        raise Refused(
            f"{source} is {names[kind]} backup, but the database URL names "
            f"{names[target.kind]} database ({target.shown})."
        )
    if kind == "sqlite":
        _load_sqlite(target, source, force=force)
    else:
        _load_pg(target, source, force=force)


def _load_sqlite(target: Target, source: Path, *, force: bool) -> None:
    path = target.sqlite_path
    assert path is not None
    if _sqlite_holds_data(path) and not force:
        raise Refused(
            f"The database at {path} already holds data. Restore into a new file, or stop the "
            "service and add --force to replace it."
        )
    backup_file = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    _private_file(partial)
    copy = sqlite3.connect(partial)
    try:
        _check_sqlite(backup_file, f"The backup {source}")
        _ledger_size_sqlite(backup_file, f"The backup {source}")
        backup_file.backup(copy)
        copy.execute("PRAGMA journal_mode=WAL")  # as the service runs it
    finally:
        copy.close()
        backup_file.close()
    # An old -wal left beside the restored file would be replayed into it: remove both.
    for leftover in ("-wal", "-shm"):
        path.with_name(path.name + leftover).unlink(missing_ok=True)
    os.replace(partial, path)


def _load_pg(target: Target, source: Path, *, force: bool) -> None:
    with _connect_pg(target) as connection:
        others = connection.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
        if others and others[0]:
            raise Refused(
                f"{others[0]} other connections are open to {target.shown}. Stop the service "
                "and the outbox worker first."
            )
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        if tables and not force:
            raise Refused(
                f"The database {target.shown} already holds {len(tables)} tables. Restore into "
                "a new, empty database, or stop the service and add --force to replace them."
            )
        if tables:
            names = sql.SQL(", ").join(sql.Identifier(name) for name in tables)
            connection.execute(sql.SQL("DROP TABLE {} CASCADE").format(names))
            connection.commit()
    # One transaction: a restore that fails half-way leaves the database as empty as before.
    _run(
        [
            "pg_restore",
            "--exit-on-error",
            "--single-transaction",
            "--no-owner",
            f"--dbname={target.libpq_url}",
            str(source),
        ],
        "pg_restore",
        target.password,
    )


def tellonce(*args: str) -> int:
    """Run one ``tellonce`` command in this process (the same settings); return its status."""
    from web.cli import main

    print(f"\n$ tellonce {' '.join(args)}", flush=True)
    try:
        main.main(args=list(args), prog_name="tellonce", standalone_mode=True)
    except SystemExit as finished:
        code = finished.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def restore(
    target: Target, source: Path, *, key_file: Path, force: bool, checkpoint: Path | None
) -> None:
    """Load a backup, bring it up to date, and check it: the ledger, then the checkpoint."""
    backup_kind(source)
    if not key_file.is_file():
        raise Refused(
            f"There is no key file at {key_file}. A backup never holds it: put back your key "
            "file (from the same time as the backup, or later) first, or set TELLONCE_KEY_FILE."
        )
    if checkpoint is not None and not checkpoint.is_file():
        raise Refused(f"There is no saved checkpoint at {checkpoint}.")
    load(target, source, force=force)
    print(f"Restored {source} into {target.shown}.")
    # The tellonce commands read the same settings as the service; point them at the target.
    os.environ["DATABASE_URL"] = target.url
    if tellonce("db", "upgrade") != 0:
        raise Refused("The restored database could not be brought up to date (see above).")
    if tellonce("ledger", "verify") != 0:
        raise Refused(
            "The restored database does not pass `tellonce ledger verify` (see above). "
            "Do not start the service on it."
        )
    if checkpoint is None:
        print(
            "\nNot compared with a saved checkpoint (--checkpoint): a backup older than the "
            "last checkpoint you published would pass the checks above. Compare it now with "
            "`tellonce ledger check-checkpoint FILE`."
        )
    elif tellonce("ledger", "check-checkpoint", str(checkpoint)) != 0:
        raise Refused(
            "The restored ledger is behind, or not consistent with, the checkpoint in "
            f"{checkpoint} (see above). Do not start the service on it: find a newer backup."
        )


def app_settings() -> dict[str, Any]:
    """The app's own settings (web/config.py), read without importing the whole app.

    ``import web.config`` would run ``web/__init__.py`` (Flask and every blueprint): a second
    or more for a backup that needs two settings. web/config.py imports only the standard
    library, so it is loaded on its own.
    """
    path = Path(__file__).resolve().parent.parent / "web" / "config.py"
    spec = importlib.util.spec_from_file_location("tellonce_settings", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    settings: dict[str, Any] = module.from_environment()
    return settings


def main(argv: list[str] | None = None) -> int:
    """Parse the command line of scripts/backup or scripts/restore and run it."""
    settings = app_settings()
    parser = argparse.ArgumentParser(prog="scripts/backup | scripts/restore")
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("backup", help="Back up the database to FILE.")
    make.add_argument("file", type=Path)
    make.add_argument("--force", action="store_true", help="Replace FILE if it is there.")
    put = commands.add_parser("restore", help="Restore FILE into the database.")
    put.add_argument("file", type=Path)
    put.add_argument("--force", action="store_true", help="Replace a database that holds data.")
    put.add_argument("--checkpoint", type=Path, help="The last checkpoint you saved or published.")
    for sub in (make, put):
        sub.add_argument(
            "--database-url", default=settings["DATABASE_URL"], help="Default: DATABASE_URL."
        )
    args = parser.parse_args(argv)
    reminder = (KEY_FILE_REMINDER if args.command == "backup" else RESTORE_REMINDER).format(
        key_file=settings["KEY_FILE"]
    )
    try:
        target = parse_target(args.database_url)
        if args.command == "backup":
            size = backup(target, args.file, force=args.force)
            print(f"Backed up {target.shown} ({size} ledger entries) to {args.file}.")
        else:
            restore(
                target,
                args.file,
                key_file=Path(settings["KEY_FILE"]),
                force=args.force,
                checkpoint=args.checkpoint,
            )
            print("\nThe restore is complete and checked.")
    except Refused as refused:
        print(f"Error: {refused}", file=sys.stderr)
        return 1
    print(reminder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
