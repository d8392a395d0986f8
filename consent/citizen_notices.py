"""Telling the person what happened: notices waiting to be emailed, as often as they chose.

A notice holds only its kind and the id of what it is about; the email and the page say the
rest once the person has signed in. Each person chooses: an email every time, a daily
summary at most, or no email (the news is still on their home page).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session, col

from consent.actors import Actor
from consent.decision_models import CitizenNotice, NotificationChoice
from consent.errors import NotAllowed
from vault.errors import InvalidValue
from vault.models import Citizen
from vault.services import Vault

CHOICES = ("every_time", "daily", "quiet")
CHOICE_LABELS = {
    "every_time": "Email me every time",
    "daily": "Email me once a day at most",
    "quiet": "Do not email me",
}
DEFAULT_CHOICE = "every_time"
SUMMARY_INTERVAL = timedelta(hours=24)
# What a notice can be about, in the words the person reads.
KIND_LABELS = {
    "decision_recorded": "A decision was made about you",
    "decision_reviewed": "A decision about you was reviewed",
    "challenge_opened": "We sent on what you said is wrong",
    "challenge_answered": "Your challenge has been answered",
}


@dataclass(frozen=True)
class DueEmail:
    """Notices one person should be emailed now; ``summary`` when they chose a daily digest."""

    citizen_id: str
    notices: list[CitizenNotice]
    summary: bool


def notify_citizen(
    session: Session, citizen_id: str, kind: str, ref_id: str, now: datetime
) -> CitizenNotice:
    """Queue a notice for the person, in the same transaction as what it tells them about."""
    if kind not in KIND_LABELS:
        # A programming error, not the person's: every kind needs words they can read.
        raise ValueError(f"unknown citizen notice kind {kind!r}")
    notice = CitizenNotice(citizen_id=citizen_id, kind=kind, ref_id=ref_id, created_at=now)
    session.add(notice)
    return notice


def get_choice(session: Session, citizen_id: str) -> str:
    """How the person wants to hear news (``every_time`` until they choose)."""
    row = session.get(NotificationChoice, citizen_id)
    return row.choice if row is not None else DEFAULT_CHOICE


def set_choice(session: Session, vault: Vault, actor: Actor, choice: str) -> None:
    """The person chooses how often we email them; a helper may not choose for them."""
    if actor.kind != "citizen":
        raise NotAllowed("Only the person themselves can choose how we contact them.")
    if choice not in CHOICES:
        raise InvalidValue("Choose how often we should email you.")
    now = vault.clock()
    row = session.get(NotificationChoice, actor.citizen_id)
    if row is None:
        row = NotificationChoice(citizen_id=actor.citizen_id, choice=choice, updated_at=now)
    else:
        row.choice = choice
        row.updated_at = now
    session.add(row)


def due_emails(session: Session, now: datetime) -> list[DueEmail]:
    """Who should be emailed now, and about which waiting notices (oldest first)."""
    pending = session.execute(
        select(CitizenNotice, NotificationChoice)
        .join(Citizen, col(Citizen.id) == col(CitizenNotice.citizen_id))
        .outerjoin(
            NotificationChoice,
            col(NotificationChoice.citizen_id) == col(CitizenNotice.citizen_id),
        )
        .where(col(CitizenNotice.emailed_at).is_(None), col(Citizen.status) != "erased")
        .order_by(col(CitizenNotice.created_at), col(CitizenNotice.id))
    ).all()
    by_citizen: dict[str, tuple[NotificationChoice | None, list[CitizenNotice]]] = {}
    for notice, choice in pending:
        by_citizen.setdefault(notice.citizen_id, (choice, []))[1].append(notice)
    due: list[DueEmail] = []
    for citizen_id, (choice, notices) in by_citizen.items():
        chosen = choice.choice if choice is not None else DEFAULT_CHOICE
        if chosen == "every_time":
            due.append(DueEmail(citizen_id, notices, summary=False))
        elif chosen == "daily":
            last = choice.last_summary_at if choice is not None else None
            if last is None or now - last >= SUMMARY_INTERVAL:
                due.append(DueEmail(citizen_id, notices, summary=True))
    return due


def mark_emailed(
    session: Session,
    citizen_id: str,
    notice_ids: Sequence[str],
    now: datetime,
    *,
    summary: bool,
) -> None:
    """Record that these notices were emailed (and when the last daily summary went)."""
    if notice_ids:
        session.execute(
            update(CitizenNotice)
            .where(
                col(CitizenNotice.citizen_id) == citizen_id,
                col(CitizenNotice.id).in_(list(notice_ids)),
                col(CitizenNotice.emailed_at).is_(None),
            )
            .values(emailed_at=now)
        )
    if summary:
        row = session.get(NotificationChoice, citizen_id)
        if row is None:
            row = NotificationChoice(citizen_id=citizen_id, choice="daily", updated_at=now)
        row.last_summary_at = now
        session.add(row)


def recent_notices(session: Session, citizen_id: str, limit: int = 10) -> list[CitizenNotice]:
    """The person's newest notices, emailed or not, for their home page."""
    return list(
        session.execute(
            select(CitizenNotice)
            .where(col(CitizenNotice.citizen_id) == citizen_id)
            .order_by(col(CitizenNotice.created_at).desc(), col(CitizenNotice.id).desc())
            .limit(limit)
        ).scalars()
    )
