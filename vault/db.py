"""Database engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with foreign keys on and a busy timeout. Every SQLite transaction
starts with ``BEGIN IMMEDIATE`` so that two writers never both read and then both try to
write (which SQLite answers with an error instead of a wait); readers in WAL mode are not
blocked by it. Before ``BEGIN IMMEDIATE`` a connection takes an exclusive ``flock`` on a file
beside the database (``<database>-writer``) and holds it until ``COMMIT`` or ``ROLLBACK``: a
waiting worker then sleeps in the kernel and wakes the moment the lock is free, where SQLite's
own busy handler would poll with sleeps of up to 100 ms (which made the slowest 1 % of API
calls take over a second under load). PostgreSQL uses psycopg 3 and READ COMMITTED; writers
that must be ordered (the ledger) take a row lock.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.types import DateTime, TypeDecorator
from sqlmodel import Session, create_engine

from vault.errors import StorageError

DEFAULT_DATABASE_URL = "sqlite:///instance/tellonce.db"


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware UTC datetimes the same way on SQLite and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC time")
        value = value.astimezone(UTC)
        # SQLite keeps no zone, so keep the naive UTC wall time there.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def is_sqlite(engine: Engine) -> bool:
    """Say whether this engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


def make_engine(url: str = DEFAULT_DATABASE_URL, *, synchronous: str = "FULL") -> Engine:
    """Create an engine for a database URL, with our settings for its dialect."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            folder = Path(database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError:
                raise StorageError(
                    f"The folder for the database, {folder}, cannot be made."
                ) from None
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        lock_path = f"{database}-writer" if database and database != ":memory:" else None
        _configure_sqlite(engine, synchronous, lock_path)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True, pool_size=10, max_overflow=20)


class _WriterLock:
    """One SQLite writer at a time across processes, handed over without polling.

    Each connection opens its own descriptor of the lock file (``flock`` locks belong to an
    open file description, so two connections in one process exclude each other too). A
    thread that already holds the lock through another connection does not wait for it again
    (that would wait for itself forever): it falls back to SQLite's busy timeout, as before.
    """

    _HELD = "tellonce_writer_lock_held"

    def __init__(self, path: str) -> None:
        self.path = path
        self._mine = threading.local()

    def open(self, record: Any) -> None:
        record.info[self._HELD] = False
        record.info["tellonce_writer_fd"] = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def close(self, record: Any) -> None:
        if (
            record.info.get(self._HELD)
            and record.info.get("tellonce_writer") == threading.get_ident()
        ):
            self._mine.held = False
        fd = record.info.pop("tellonce_writer_fd", None)
        if fd is not None:
            os.close(fd)  # closing the descriptor also drops a lock still held

    def acquire(self, info: dict[str, Any]) -> None:
        if getattr(self._mine, "held", False):
            return
        fcntl.flock(info["tellonce_writer_fd"], fcntl.LOCK_EX)
        info[self._HELD] = True
        info["tellonce_writer"] = threading.get_ident()
        self._mine.held = True

    def release(self, info: dict[str, Any]) -> None:
        if info.get(self._HELD):
            fcntl.flock(info["tellonce_writer_fd"], fcntl.LOCK_UN)
            info[self._HELD] = False
            if info.get("tellonce_writer") == threading.get_ident():
                self._mine.held = False


def _configure_sqlite(engine: Engine, synchronous: str, lock_path: str | None) -> None:
    lock = _WriterLock(lock_path) if lock_path else None

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        if lock is not None:
            lock.open(record)
        # Take transaction control away from the sqlite3 module so that BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(READ_ONLY):
            # A read-only unit of work: a snapshot from its first read, no writer lock.
            connection.exec_driver_sql("BEGIN")
            return
        if lock is None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        info = connection.connection.info
        lock.acquire(info)
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            lock.release(info)
            raise

    if lock is None:
        return

    # End the transaction ourselves, then let the lock go at once. The sqlite3 module's own
    # commit() or rollback() that SQLAlchemy calls next finds no transaction and does nothing.
    def end_then_release(connection: Any, statement: str) -> None:
        try:
            if connection.connection.dbapi_connection.in_transaction:
                connection.exec_driver_sql(statement)
        finally:
            lock.release(connection.connection.info)

    event.listen(engine, "commit", lambda connection: end_then_release(connection, "COMMIT"))
    event.listen(engine, "rollback", lambda connection: end_then_release(connection, "ROLLBACK"))

    @event.listens_for(engine, "close")
    def on_close(_dbapi_connection: Any, record: Any) -> None:
        lock.close(record)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Run a unit of work: commit if the block ends well, roll everything back if not."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except DBAPIError as exc:
        session.rollback()
        raise StorageError("The database refused the change, so nothing was saved.") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


READ_ONLY = "tellonce_read_only"


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A read-only unit of work: one consistent snapshot, no writer lock, never committed.

    For the part of a request that only reads (checking a token, opening the values to
    serve), so that the writer lock is held only for the writes that follow. Whatever it
    loads must be checked again under the lock if a later write depends on it.
    """
    with engine.connect() as connection:
        connection.execution_options(**{READ_ONLY: True})
        session = Session(bind=connection, expire_on_commit=False)
        try:
            yield session
        except DBAPIError as exc:
            raise StorageError("The database could not be read.") from exc
        finally:
            session.close()
            connection.rollback()


def check_database(engine: Engine) -> None:
    """Raise StorageError with a plain message if the database cannot be reached."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise StorageError("The database cannot be reached.") from exc
