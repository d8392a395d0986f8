"""Tables of the consent layer: grants, delegations and access events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from vault.db import UTCDateTime
from vault.models import new_id, new_time_ordered_id


def _when(nullable: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))


def _json() -> Any:
    return Field(sa_column=Column(JSON, nullable=False))


class Grant(SQLModel, table=True):
    """A consent: one department may have these facts, for this purpose and case, for a time.

    Whether a grant is active is worked out from ``revoked_at``, ``expired_at`` and the clock
    (see ``consent.grants.grant_status``), never stored as a flag that could drift.
    """

    __tablename__ = "grant"
    __table_args__ = (
        Index("ix_grant_citizen", "citizen_id", "created_at"),
        Index("ix_grant_department", "department_id"),
    )

    id: str = Field(default_factory=new_time_ordered_id, primary_key=True, max_length=36)
    citizen_id: str = Field(foreign_key="citizen.id", max_length=36)
    # Departments live in connectors/; consent only knows their id.
    department_id: str = Field(max_length=64)
    purpose_code: str = Field(max_length=64)
    purpose_text: str = Field(max_length=500)
    data_points: list[str] = _json()
    story_topics: list[str] = _json()
    # "Ask me each time" topics the person said a second, explicit yes to for this grant.
    explicit_topics: list[str] = _json()
    case_reference: str = Field(max_length=64)
    starts_at: datetime = _when()
    ends_at: datetime = _when()
    data_life_days: int
    max_fetches: int
    fetch_count: int = 0
    given_by: str = Field(max_length=80)  # citizen:<account id> | worker:<account id>
    delegation_id: str | None = Field(default=None, foreign_key="delegation.id", max_length=36)
    created_at: datetime = _when()
    revoked_at: datetime | None = _when(nullable=True)
    revoked_by: str | None = Field(default=None, max_length=80)
    expired_at: datetime | None = _when(nullable=True)
    # The department's word that it deleted what it received, once the grant has ended.
    deletion_confirmed_at: datetime | None = _when(nullable=True)
    deletion_confirmed_by: str | None = Field(default=None, max_length=200)


class Delegation(SQLModel, table=True):
    """A citizen lets a support worker help them, with some scopes, until an end date.

    Delegations are never widened in place: changing scopes ends one and gives another,
    and only the citizen can do either.
    """

    __tablename__ = "delegation"
    __table_args__ = (
        Index("ix_delegation_citizen", "citizen_id"),
        Index("ix_delegation_worker", "worker_account_id"),
    )

    id: str = Field(default_factory=new_time_ordered_id, primary_key=True, max_length=36)
    citizen_id: str = Field(foreign_key="citizen.id", max_length=36)
    worker_account_id: str = Field(foreign_key="account.id", max_length=36)
    scopes: list[str] = _json()
    created_by: str = Field(max_length=80)
    created_at: datetime = _when()
    ends_at: datetime = _when()
    revoked_at: datetime | None = _when(nullable=True)
    revoked_by: str | None = Field(default=None, max_length=80)


class AccessEvent(SQLModel, table=True):
    """One time data left the vault for a department, or was refused."""

    __tablename__ = "access_event"
    __table_args__ = (
        # The history page's exact order (newest first by time, then id): see migration 0005.
        Index("ix_access_event_citizen_at_id", "citizen_id", "at", "id"),
        Index("ix_access_event_grant", "grant_id"),
    )

    id: str = Field(default_factory=new_time_ordered_id, primary_key=True, max_length=36)
    citizen_id: str = Field(foreign_key="citizen.id", max_length=36)
    grant_id: str = Field(foreign_key="grant.id", max_length=36)
    department_id: str = Field(max_length=64)
    acting_officer: str = Field(max_length=200)
    case_reference: str = Field(max_length=64)
    # [{"key": ..., "version": n}] and [{"topic": ..., "version": n}]: never values.
    data_points: list[dict[str, Any]] = _json()
    story: list[dict[str, Any]] = _json()
    result: str = Field(max_length=16)  # served | refused
    reason: str | None = Field(default=None, max_length=200)
    at: datetime = _when()


class Invitation(SQLModel, table=True):
    """A citizen's one-time invitation for a support worker, with the scopes on offer.

    Only a hash of the code is kept; the code itself is shown once (or sent once).
    """

    __tablename__ = "invitation"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    citizen_id: str = Field(foreign_key="citizen.id", max_length=36, index=True)
    code_hash: str = Field(max_length=64, unique=True)
    scopes: list[str] = _json()
    delegation_ends_at: datetime = _when()
    created_by: str = Field(max_length=80)
    created_at: datetime = _when()
    expires_at: datetime = _when()
    used_at: datetime | None = _when(nullable=True)
    used_by: str | None = Field(default=None, max_length=36)
    revoked_at: datetime | None = _when(nullable=True)
