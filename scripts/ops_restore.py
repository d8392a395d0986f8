"""The restore side of scripts/restore: load a backup, bring it up to date, and check it.

SQLite: the backup is checked with ``PRAGMA integrity_check`` and copied into place with
SQLite's backup API. PostgreSQL: ``pg_restore --single-transaction`` into an empty database.
Then ``tellonce db upgrade``, ``tellonce ledger verify`` and, given the last checkpoint the
operator saved, ``tellonce ledger check-checkpoint``: any failure refuses.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from psycopg import sql

from scripts.ops_common import (
    Refused,
    Target,
    check_sqlite,
    connect_pg,
    ledger_size_sqlite,
    private_file,
    run_pg_tool,
)

SQLITE_MAGIC = b"SQLite format 3\x00"
PG_DUMP_MAGIC = b"PGDMP"
RESTORE_REMINDER = (
    "The backup held no key file: this data opens only with the key file at {key_file}, "
    "from the time of the backup or later. Keep that key file's own backup apart from this one."
)


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
    private_file(partial)
    copy = sqlite3.connect(partial)
    try:
        check_sqlite(backup_file, f"The backup {source}")
        ledger_size_sqlite(backup_file, f"The backup {source}")
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
    with connect_pg(target) as connection:
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
    run_pg_tool(
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
    # pg_restore brings back rows, not the planner's statistics, and the ledger check runs
    # next. Without them PostgreSQL guesses every table holds a row or two and checks "was
    # every row announced in the log?" as a loop over every entry for every row: 9 times
    # slower at 10,000 entries, hours at a million. Autovacuum would get there, but later.
    with connect_pg(target) as connection:
        connection.execute("ANALYZE")


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
