"""Tables for decisions about a person, their challenges, and the notices they trigger.

What a decision says (title, outcome, reasons, other information) and what a person writes
in a challenge are personal: they are sealed under the citizen's data key, like a data
point, in ``sealed`` columns. Which data point versions a decision used, who is accountable
and which algorithm decided are kept in the clear: they are what the person checks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

from vault.db import UTCDateTime
from vault.models import new_id, new_time_ordered_id


def _when(nullable: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable))


def _json() -> Any:
    return Field(sa_column=Column(JSON, nullable=False))


def _blob(nullable: bool = False) -> Any:
    return Field(sa_column=Column(LargeBinary, nullable=nullable))


class Decision(SQLModel, table=True):
    """One version of a department's decision about a person.

    A review never edits a decision: it adds a new version (``kind`` adjusted, overturned or
    upheld) in the same ``series_id``; the old one becomes ``superseded``.
    """

    __tablename__ = "decision"
    __table_args__ = (
        UniqueConstraint("series_id", "version", name="uq_decision_series_version"),
        Index("ix_decision_citizen", "citizen_id", "created_at"),
        Index("ix_decision_department", "department_id", "created_at"),
    )

    id: str = Field(default_factory=new_time_ordered_id, primary_key=True, max_length=36)
    series_id: str = Field(max_length=36)
    version: int
    kind: str = Field(max_length=16)  # original | adjusted | overturned | upheld
    citizen_id: str = Field(foreign_key="citizen.id", max_length=36)
    # Departments live in connectors/; consent only knows their id (as for grants).
    department_id: str = Field(max_length=64)
    grant_id: str = Field(foreign_key="grant.id", max_length=36)
    case_reference: str = Field(max_length=64)
    automated: bool
    algorithm_name: str | None = Field(default=None, max_length=200)
    algorithm_version: str | None = Field(default=None, max_length=64)
    officer_name: str = Field(max_length=200)  # the named person accountable for it
    officer_role: str = Field(max_length=200)
    reviewer_name: str | None = Field(default=None, max_length=200)
    reviewer_role: str | None = Field(default=None, max_length=200)
    # [{"key": ..., "version": n}]: exactly the versions served to this department before.
    data_points_used: list[dict[str, Any]] = _json()
    # Sealed JSON: {"title", "outcome", "reasons", "other_information_used": [...],
    # and for a review "review_reasons"}.
    sealed: bytes = _blob()
    recorded_by: str = Field(max_length=200)  # department:<id>/<acting officer>
    created_at: datetime = _when()
    status: str = Field(default="current", max_length=16)  # current | superseded
    # Set when something it used was challenged or corrected, until a review answers it.
    review_requested_at: datetime | None = _when(nullable=True)
    review_requested_because: str | None = Field(default=None, max_length=40)


class Challenge(SQLModel, table=True):
    """A person says a data point version, or a decision, is wrong; the department answers."""

    __tablename__ = "challenge"
    __table_args__ = (
        Index("ix_challenge_citizen", "citizen_id", "opened_at"),
        Index("ix_challenge_department_status", "department_id", "status"),
    )

    id: str = Field(default_factory=new_time_ordered_id, primary_key=True, max_length=36)
    citizen_id: str = Field(foreign_key="citizen.id", max_length=36)
    department_id: str = Field(max_length=64)  # who must answer
    target: str = Field(max_length=16)  # data_point | decision
    decision_id: str = Field(foreign_key="decision.id", max_length=36)  # where it was seen
    data_point_key: str | None = Field(default=None, max_length=64)
    data_point_version: int | None = None
    sealed_reason: bytes = _blob()  # the person's own words
    opened_by: str = Field(max_length=80)  # citizen:<account> | worker:<account>
    opened_at: datetime = _when()
    due_at: datetime = _when()
    # open | corrected | upheld | decision_changed
    status: str = Field(default="open", max_length=24)
    answered_at: datetime | None = _when(nullable=True)
    answered_by: str | None = Field(default=None, max_length=200)
    sealed_answer: bytes | None = _blob(nullable=True)
    corrected_version: int | None = None


class CitizenNotice(SQLModel, table=True):
    """Something the person should hear about, waiting to be emailed (or shown only)."""

    __tablename__ = "citizen_notice"
    __table_args__ = (Index("ix_citizen_notice_pending", "emailed_at", "created_at"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    citizen_id: str = Field(foreign_key="citizen.id", max_length=36)
    kind: str = Field(max_length=40)  # decision_recorded | challenge_answered | ...
    ref_id: str = Field(max_length=36)
    created_at: datetime = _when()
    emailed_at: datetime | None = _when(nullable=True)


class NotificationChoice(SQLModel, table=True):
    """How the person wants to hear news: every time, a daily summary, or not by email."""

    __tablename__ = "notification_choice"

    citizen_id: str = Field(foreign_key="citizen.id", primary_key=True, max_length=36)
    choice: str = Field(default="every_time", max_length=16)  # every_time | daily | quiet
    updated_at: datetime = _when()
    last_summary_at: datetime | None = _when(nullable=True)
