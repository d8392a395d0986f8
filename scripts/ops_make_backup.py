"""The backup side of scripts/backup: one consistent, checked, private file per backup.

SQLite: SQLite's online backup API copies a consistent snapshot while the service runs (a
plain file copy of a database in WAL mode can miss or tear recent transactions); the copy
is checked with ``PRAGMA integrity_check`` and is one self-contained file.
PostgreSQL: ``pg_dump --format=custom`` inside a snapshot the script also reads the ledger
size from.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import psycopg

from scripts.ops_common import (
    Refused,
    Target,
    check_sqlite,
    connect_pg,
    ledger_size_sqlite,
    private_file,
    run_pg_tool,
)

KEY_FILE_REMINDER = (
    "The key file ({key_file}) is not in this backup, and must never be stored beside it. "
    "Back it up separately after every `tellonce keys ...` command (docs/operations.md)."
)


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
    private_file(partial)
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
        ledger_size_sqlite(source, f"The database at {target.sqlite_path}")
        source.backup(copy)
        # One self-contained file, with no -wal beside it to lose.
        copy.execute("PRAGMA journal_mode=DELETE")
        check_sqlite(copy, "The backup just made")
        return ledger_size_sqlite(copy, "The backup just made")
    finally:
        copy.close()
        source.close()


def _backup_pg(target: Target, partial: Path) -> int:
    with connect_pg(target) as connection:
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
        run_pg_tool(
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
    run_pg_tool(["pg_restore", "--list", str(partial)], "Reading the new backup back")
    return int(row[0]) if row else 0
