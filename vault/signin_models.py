"""Tables for signing in: server-side web sessions, one-time email links and passkeys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from vault.db import UTCDateTime
from vault.models import new_id


def _when(nullable: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))


class WebSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; we keep only its hash."""

    __tablename__ = "web_session"
    __table_args__ = (Index("ix_web_session_account", "account_id"),)

    token_hash: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(foreign_key="account.id", max_length=36)
    created_at: datetime = _when()
    last_seen_at: datetime = _when()
    ended_at: datetime | None = _when(nullable=True)
    # For a support worker: whose vault they are acting in right now (None: their own).
    acting_for: str | None = Field(default=None, max_length=36)


class SignInLink(SQLModel, table=True):
    """A one-time email link: its id, who it is for, when it dies, and whether it was used."""

    __tablename__ = "sign_in_link"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    email_lookup: str = Field(max_length=64, index=True)
    purpose: str = Field(max_length=16)  # sign_in | sign_up | invite
    created_at: datetime = _when()
    expires_at: datetime = _when()
    used_at: datetime | None = _when(nullable=True)


class Passkey(SQLModel, table=True):
    """A WebAuthn credential registered to an account."""

    __tablename__ = "passkey"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    account_id: str = Field(foreign_key="account.id", max_length=36, index=True)
    credential_id: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sign_count: int = 0
    transports: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    name: str = Field(default="Passkey", max_length=100)
    created_at: datetime = _when()
    last_used_at: datetime | None = _when(nullable=True)
