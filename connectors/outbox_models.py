"""The outbox: notifications to departments, written in the same transaction as their cause.

A worker (``tellonce outbox run``) claims due rows, signs each as a Security Event Token
(RFC 8417) and POSTs it to the department's webhook (RFC 8935), retrying with backoff until
it is accepted. Rows hold ids only, never personal values.
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


class OutboxMessage(SQLModel, table=True):
    """One event for one department, until its webhook has accepted it."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("ix_outbox_due", "delivered_at", "next_attempt_at"),
        Index("ix_outbox_department", "department_id", "created_at"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    department_id: str = Field(foreign_key="department.id", max_length=64)
    event: str = Field(max_length=64)  # grant_revoked | data_point_contested | ...
    citizen_id: str | None = Field(default=None, foreign_key="citizen.id", max_length=36)
    details: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # ids only
    created_at: datetime = _when()
    attempts: int = 0
    next_attempt_at: datetime = _when()
    claimed_until: datetime | None = _when(nullable=True)
    delivered_at: datetime | None = _when(nullable=True)
    last_error: str | None = Field(default=None, max_length=300)
