"""What scripts/backup and scripts/restore share: the target database, refusals, and tools."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


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


def private_file(path: Path) -> None:
    """Make an empty file only its owner can read (backups hold wrapped keys and hashes)."""
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def ledger_size_sqlite(connection: sqlite3.Connection, what: str) -> int:
    """Read the ledger size from an SQLite database; refuse one without Tell Once's tables."""
    try:
        row = connection.execute("SELECT size FROM ledger_head WHERE id = 1").fetchone()
    except sqlite3.DatabaseError:
        raise Refused(f"{what} holds no Tell Once tables.") from None
    return int(row[0]) if row else 0


def check_sqlite(connection: sqlite3.Connection, what: str) -> None:
    """Refuse an SQLite database that fails SQLite's own integrity check."""
    (result,) = connection.execute("PRAGMA integrity_check").fetchone()
    if result != "ok":
        raise Refused(f"{what} is damaged: SQLite's integrity check says {result!r}.")


def connect_pg(target: Target) -> psycopg.Connection:
    """Connect to a PostgreSQL target; refuse, saying why, when that is not possible."""
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


def run_pg_tool(command: list[str], what: str, password: str | None = None) -> None:
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
