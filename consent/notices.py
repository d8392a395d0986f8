"""Notices: what departments must be told, handed on in the same transaction as their cause.

The consent layer knows *that* a department must hear of something, not how: it puts a
``DepartmentNotice`` on the session with ``tell_department``. The connectors layer listens
for the session's commit and turns each notice into an outbox row in that same
transaction (``connectors.outbox``), so a notice is never lost and never sent for a change
that was rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

NOTICES_KEY = "tellonce_department_notices"

# The events departments can be told about (RFC 8417 event URIs are built from these).
GRANT_REVOKED = "grant_revoked"
DATA_POINT_CONTESTED = "data_point_contested"
DATA_POINT_CORRECTED = "data_point_corrected"
CHALLENGE_OPENED = "challenge_opened"
DECISION_REVIEW_REQUESTED = "decision_review_requested"
EVENTS = (
    GRANT_REVOKED,
    DATA_POINT_CONTESTED,
    DATA_POINT_CORRECTED,
    CHALLENGE_OPENED,
    DECISION_REVIEW_REQUESTED,
)


@dataclass(frozen=True)
class DepartmentNotice:
    """One event one department must hear about; ``details`` holds ids only, never values."""

    department_id: str
    event: str
    citizen_id: str | None
    details: dict[str, Any] = field(default_factory=dict)


def tell_department(session: Session, notice: DepartmentNotice) -> None:
    """Queue a notice to be written to the outbox when this session commits."""
    if notice.event not in EVENTS:
        raise ValueError(f"unknown department event {notice.event!r}")
    session.info.setdefault(NOTICES_KEY, []).append(notice)


def take_notices(session: Session) -> list[DepartmentNotice]:
    """Remove and return the notices queued on this session (the outbox calls this)."""
    return list(session.info.pop(NOTICES_KEY, []))
