"""Where the scale generator writes: PostgreSQL through COPY, or SQLite through batched inserts.

PostgreSQL loads fastest into tables without indexes or foreign keys, so ``without_indexes``
drops them (remembering their exact definitions) and builds them again after the load, as a
restore from ``pg_dump`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import insert
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel

from scripts.scale.rows import JSON_COLUMNS

BIG_TABLES = ("citizen", "data_point", "grant", "access_event", "ledger_entry", "ledger_node")


def libpq_url(url: str) -> str:
    """The same PostgreSQL URL without SQLAlchemy's driver name, for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresSink:
    """Writes rows with COPY on one connection; ``commit`` ends the transaction."""

    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(libpq_url(url))
        # Loading only: a crash mid-load means starting again anyway, so no need to wait for
        # each commit to reach the disk. The final state is flushed by the checkpoint.
        self.connection.execute("SET synchronous_commit = off")

    def write(self, table: str, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
        """COPY rows (dicts keyed by column) into a table."""
        if not rows:
            return
        json_at = [i for i, name in enumerate(columns) if name in JSON_COLUMNS]
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
        )
        with self.connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = [row[name] for name in columns]
                for i in json_at:
                    values[i] = json.dumps(values[i])
                copy.write_row(values)

    def commit(self) -> None:
        """Commit what was written."""
        self.connection.commit()

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()


class SqliteSink:
    """Writes rows with batched INSERTs through SQLAlchemy (the app's own column types)."""

    def __init__(self, engine: Engine) -> None:
        self.connection = engine.connect()
        self.connection.begin()

    def write(self, table: str, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
        """Insert rows (dicts keyed by column) into a table."""
        if rows:
            self.connection.execute(insert(SQLModel.metadata.tables[table]), rows)

    def commit(self) -> None:
        """Commit what was written and start the next transaction."""
        self.connection.commit()
        self.connection.begin()

    def close(self) -> None:
        """Commit and close."""
        self.connection.commit()
        self.connection.close()


_CONSTRAINTS = """
SELECT c.conrelid::regclass::text, quote_ident(c.conname), pg_get_constraintdef(c.oid), c.contype
FROM pg_constraint c
WHERE c.contype IN ('p', 'u', 'f')
  AND (c.conrelid IN (SELECT oid FROM pg_class WHERE relname = ANY(%(t)s)
                      AND relnamespace = 'public'::regnamespace)
       OR c.confrelid IN (SELECT oid FROM pg_class WHERE relname = ANY(%(t)s)
                          AND relnamespace = 'public'::regnamespace))
ORDER BY c.contype = 'f' DESC
"""
_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
WHERE t.relname = ANY(%(t)s) AND t.relnamespace = 'public'::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                  WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
"""


@contextmanager
def without_indexes(url: str, say: Any) -> Iterator[None]:
    """Drop the big tables' indexes and keys for the load; build them again afterwards."""
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        constraints = connection.execute(_CONSTRAINTS, {"t": list(BIG_TABLES)}).fetchall()
        indexes = connection.execute(_INDEXES, {"t": list(BIG_TABLES)}).fetchall()
        # Foreign keys first (ordered 'f' before 'p'/'u'), then the keys they point at.
        # Names and definitions come from PostgreSQL's own catalogue (quote_ident,
        # pg_get_constraintdef, pg_get_indexdef), not from outside.
        for table, name, _definition, _kind in constraints:
            connection.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        for name, _definition in indexes:
            connection.execute(f"DROP INDEX {name}")
    try:
        yield
    finally:
        _restore(url, say, constraints, indexes)


def _restore(url: str, say: Any, constraints: list[Any], indexes: list[Any]) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("SET maintenance_work_mem = '1GB'")
        keys = [c for c in constraints if c[3] != "f"]
        foreign = [c for c in constraints if c[3] == "f"]
        for table, name, definition, _kind in keys:
            say(f"building {table} {name}")
            connection.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        for name, definition in indexes:
            say(f"building {name}")
            connection.execute(definition)
        for table, name, definition, _kind in foreign:
            say(f"checking {table} {name}")
            connection.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        say("vacuum analyze")
        for table in BIG_TABLES:
            connection.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
