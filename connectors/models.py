"""Tables of the connectors layer: departments, their pushed requests, codes, tokens, replays.

Secrets (client secrets, request URIs, codes, tokens) are stored only as SHA-256 hashes: they
are long random strings, so a hash is enough, and a stolen database holds nothing usable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from vault.db import UTCDateTime
from vault.models import new_id


def _when(nullable: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))


def _json(nullable: bool = False) -> Any:
    return Field(sa_column=Column(JSON, nullable=nullable))


class Department(SQLModel, table=True):
    """A public service registered as an OAuth client, with its purposes and accountable officer.

    ``client_metadata`` is the RFC 7591 metadata as registered (redirect URIs, keys, the
    authentication method). ``purposes`` is the list of what it may ask for:
    ``[{"code", "description", "data_points": [...], "story_topics": [...]}]``.
    """

    __tablename__ = "department"

    id: str = Field(primary_key=True, max_length=64)  # the OAuth client_id
    name: str = Field(max_length=200)
    client_metadata: dict[str, Any] = _json()
    secret_hash: str | None = Field(default=None, max_length=64)
    purposes: list[dict[str, Any]] = _json()
    officer: dict[str, Any] = _json()  # {"name", "role", "email"}
    webhook_url: str | None = Field(default=None, max_length=500)
    created_at: datetime = _when()
    disabled_at: datetime | None = _when(nullable=True)


class PushedRequest(SQLModel, table=True):
    """An authorization request pushed by a department (RFC 9126), then the citizen's answer.

    The ``request_uri`` may be opened once, within 60 seconds; opening it starts a consent
    that the person has a few minutes to answer (signing in can take that long).
    """

    __tablename__ = "pushed_request"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    uri_hash: str = Field(max_length=64, unique=True)
    department_id: str = Field(foreign_key="department.id", max_length=64)
    params: dict[str, Any] = _json()
    created_at: datetime = _when()
    expires_at: datetime = _when()
    opened_at: datetime | None = _when(nullable=True)
    answer_by: datetime | None = _when(nullable=True)
    answered_at: datetime | None = _when(nullable=True)


class AuthorizationCode(SQLModel, table=True):
    """A single-use code, 60 seconds, bound to a grant, a redirect URI, PKCE and a DPoP key."""

    __tablename__ = "authorization_code"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    code_hash: str = Field(max_length=64, unique=True)
    department_id: str = Field(foreign_key="department.id", max_length=64)
    citizen_id: str = Field(foreign_key="citizen.id", max_length=36)
    grant_id: str = Field(foreign_key="grant.id", max_length=36)
    redirect_uri: str = Field(max_length=500)
    scope: str = Field(default="", max_length=200)
    code_challenge: str = Field(max_length=128)
    code_challenge_method: str = Field(max_length=8)
    dpop_jkt: str | None = Field(default=None, max_length=64)
    authorization_details: list[dict[str, Any]] = _json()
    created_at: datetime = _when()
    expires_at: datetime = _when()
    used_at: datetime | None = _when(nullable=True)


class OAuthToken(SQLModel, table=True):
    """An access token (5 minutes) and, for a grant, its refresh token; both DPoP-bound."""

    __tablename__ = "oauth_token"
    __table_args__ = (
        Index("ix_oauth_token_grant", "grant_id"),
        Index("ix_oauth_token_code", "code_id"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    access_hash: str = Field(max_length=64, unique=True)
    refresh_hash: str | None = Field(default=None, max_length=64, unique=True)
    department_id: str = Field(foreign_key="department.id", max_length=64)
    grant_id: str | None = Field(default=None, foreign_key="grant.id", max_length=36)
    code_id: str | None = Field(default=None, max_length=36)
    scope: str = Field(default="", max_length=200)
    jkt: str = Field(max_length=64)  # RFC 7638 thumbprint of the DPoP key it is bound to
    issued_at: datetime = _when()
    expires_at: datetime = _when()
    revoked_at: datetime | None = _when(nullable=True)


class SeenJti(SQLModel, table=True):
    """A JWT id already used (DPoP proof or client assertion), kept until it could not recur.

    Shared by every worker through the database, so a replay to another worker is caught.
    """

    __tablename__ = "seen_jti"
    __table_args__ = (Index("ix_seen_jti_expires", "expires_at"),)

    key: str = Field(primary_key=True, max_length=128)
    expires_at: datetime = _when()
