"""Writing the ledger's rows: Core inserts for the few rows a request appends, and the driver's
own bulk paths for big batches (binary COPY on PostgreSQL, executemany on SQLite).

Every path writes inside the caller's transaction, so a refusal rolls the whole change back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

# From this many rows a batch is written by the driver itself: by COPY on PostgreSQL (one
# stream of rows, no statement per row), by executemany on SQLite (no SQLAlchemy row dicts).
BULK_FROM = 64
# Binary COPY sends each value in its column's own format, so these follow the models.
_COPY = {
    "ledger_entry": (
        "COPY ledger_entry (idx, leaf, leaf_hash, kind, row_table, row_id) "
        "FROM STDIN (FORMAT BINARY)",
        ("int4", "bytea", "bytea", "varchar", "varchar", "varchar"),
    ),
    "ledger_node": (
        "COPY ledger_node (level, idx, hash) FROM STDIN (FORMAT BINARY)",
        ("int4", "int4", "bytea"),
    ),
}
_EXECUTEMANY = {
    "ledger_entry": "INSERT INTO ledger_entry (idx, leaf, leaf_hash, kind, row_table, row_id) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "ledger_node": "INSERT INTO ledger_node (level, idx, hash) VALUES (?, ?, ?)",
}


class CopyFailed(Exception):
    """The database refused a COPY (the driver's own error is its cause)."""


def insert_rows(session: Session, table: Any, rows: list[tuple[Any, ...]]) -> None:
    """Insert rows (tuples in the table's column order) in the session's transaction."""
    connection = session.connection()
    if len(rows) < BULK_FROM:
        # Core inserts: the ORM's bulk path re-inspects every row dict, which cost more than
        # writing the rows.
        names = [column.name for column in table.columns]
        session.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])
    elif connection.dialect.name == "postgresql":
        with copy_rows(session, table.name) as write:
            for row in rows:
                write(row)
    else:
        connection.exec_driver_sql(_EXECUTEMANY[table.name], rows)


@contextmanager
def copy_rows(session: Session, table_name: str) -> Iterator[Callable[[tuple[Any, ...]], None]]:
    """COPY rows into a table inside the session's transaction (PostgreSQL, psycopg 3)."""
    import psycopg

    statement, types = _COPY[table_name]
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(statement) as copy:
            copy.set_types(types)
            yield copy.write_row
    except psycopg.Error as exc:
        raise CopyFailed from exc
    finally:
        cursor.close()
