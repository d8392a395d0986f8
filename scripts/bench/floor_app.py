"""The floor for scripts/bench/floor.py: the least work any recorded, DPoP-checked fetch must do.

    FLOOR_DATABASE=/tmp/floor.db BASE_URL=http://127.0.0.1:8002 \
        gunicorn -w 4 -b 127.0.0.1:8002 --pythonpath .,scripts/bench 'floor_app:create_app()'

(``FLOOR_DATABASE=postgresql://…`` for PostgreSQL: psycopg, the server's own durability.)

``GET /api/v1/data`` checks the DPoP proof with the same function as the real API
(``connectors.dpop.verify_proof``: one ES256 signature), then writes one durable transaction,
as the real API must before it answers: the proof's ``jti`` into a replay table (a replayed
proof gets 401) and one access row, then a commit (SQLite: ``BEGIN IMMEDIATE`` … ``COMMIT``
with ``synchronous=FULL`` in WAL mode). It answers a small fixed JSON object.

It leaves out everything else the real fetch does: the token lookup, the consent rule, the
decryption, the ledger leaf and its Merkle nodes, the rate limit, the OpenAPI layer. So no
design that records each fetch durably before answering can be faster than this on the same
machine; its requests per second, divided by the bare Flask app's, is the highest ratio the
data API goal could reach here.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Any, Protocol

from flask import Flask, request

from connectors.dpop import verify_proof
from connectors.errors import InvalidDPoPProof

PATH = "/api/v1/data"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS seen_jti (key TEXT PRIMARY KEY, expires_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS access (id {serial} PRIMARY KEY, officer TEXT NOT NULL, "
    "case_reference TEXT NOT NULL, at TEXT NOT NULL)",
)


class _Store(Protocol):
    def record(self, jti: str, officer: str, case: str, now: str) -> bool: ...


class _Sqlite:
    """Two inserts in one ``BEGIN IMMEDIATE`` transaction, committed with synchronous=FULL."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=FULL")
        self.connection.execute("PRAGMA busy_timeout=30000")

    def record(self, jti: str, officer: str, case: str, now: str) -> bool:
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            self.connection.execute(
                "INSERT INTO seen_jti (key, expires_at) VALUES (?, ?)", (jti, now)
            )
            self.connection.execute(
                "INSERT INTO access (officer, case_reference, at) VALUES (?, ?, ?)",
                (officer, case, now),
            )
        except sqlite3.IntegrityError:
            self.connection.execute("ROLLBACK")
            return False
        self.connection.execute("COMMIT")
        return True


class _Postgres:
    """The same two inserts and commit on PostgreSQL (synchronous_commit as the server has it)."""

    def __init__(self, url: str) -> None:
        import psycopg  # only for this store: SQLite runs without it

        self.unique_violation = psycopg.errors.UniqueViolation
        self.connection = psycopg.connect(_plain(url))

    def record(self, jti: str, officer: str, case: str, now: str) -> bool:
        try:
            with self.connection.transaction():
                self.connection.execute(
                    "INSERT INTO seen_jti (key, expires_at) VALUES (%s, %s)", (jti, now)
                )
                self.connection.execute(
                    "INSERT INTO access (officer, case_reference, at) VALUES (%s, %s, %s)",
                    (officer, case, now),
                )
        except self.unique_violation:
            return False
        return True


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_schema(where: str) -> None:
    """Make the floor's two tables, once, before the workers start (``CREATE TABLE IF NOT
    EXISTS`` from four workers at once can fail on PostgreSQL)."""
    if "://" in where:
        import psycopg

        with psycopg.connect(_plain(where)) as connection:
            for statement in _SCHEMA:
                connection.execute(statement.format(serial="BIGSERIAL"))
        return
    with sqlite3.connect(where) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            connection.execute(statement.format(serial="INTEGER"))


def create_app() -> Flask:
    """A Flask app whose one route checks a DPoP proof and commits one access row."""
    app = Flask(__name__)
    where = os.environ["FLOOR_DATABASE"]  # a URL (postgresql://…) or a SQLite file's path
    url = os.environ["BASE_URL"].rstrip("/") + PATH
    local = threading.local()  # one connection per worker, made after gunicorn forks

    def store() -> _Store:
        found: _Store | None = getattr(local, "store", None)
        if found is None:
            found = local.store = _Postgres(where) if "://" in where else _Sqlite(where)
        return found

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(PATH)
    def data() -> Any:
        _scheme, _space, token = request.headers.get("Authorization", "").partition(" ")
        try:
            proof = verify_proof(
                request.headers.getlist("DPoP"),
                method="GET",
                url=url,
                now=datetime.now(UTC),
                access_token=token,
            )
        except InvalidDPoPProof as error:
            return {"error": "invalid_dpop_proof", "message": error.message}, 401
        officer = request.headers.get("Acting-Officer", "")
        case = request.headers.get("Case-Reference", "")
        if not store().record(proof.jti, officer, case, datetime.now(UTC).isoformat()):
            return {"error": "invalid_dpop_proof", "message": "This proof was used before."}, 401
        return {"status": "ok", "items": [1, 2, 3]}

    return app
