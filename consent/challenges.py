"""Challenges: the person says a data point or a decision is wrong, and the department answers.

Opening one starts a one-month clock, marks the data point as being checked, tells every
department that received it, and flags every decision that used it for review. The answer
corrects the data point (a new version, from the department), upholds it, or points to the
decision the department has already changed.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select, update
from sqlmodel import Session, col

from consent import citizen_notices, notices
from consent.actors import Actor, authorise
from consent.decision_models import Challenge, Decision
from consent.decision_views import decision_texts
from consent.decisions import flag_decisions_using, flag_for_review
from consent.events import CHALLENGE_ANSWERED, CHALLENGE_OPENED
from consent.models import AccessEvent
from vault import catalogue, envelope, ledger
from vault.citizens import data_key, get_citizen, ledger_key
from vault.errors import InvalidValue, NotFound
from vault.models import Citizen, DataPoint
from vault.records import record_data_point
from vault.services import Vault

REASON_KIND = "challenge"
ANSWER_KIND = "challenge_answer"
OUTCOMES = ("corrected", "upheld", "decision_changed")
STATUSES = ("open", *OUTCOMES)
NOT_FOUND = "We could not find that challenge."


@dataclass(frozen=True)
class ChallengeView:
    """A challenge opened for the person who made it, or the department that must answer."""

    id: str
    target: str  # data_point | decision
    decision_id: str
    department_id: str
    data_point_key: str | None
    data_point_version: int | None
    label: str  # the data point's label, or the decision's title
    reason: str
    status: str  # open | corrected | upheld | decision_changed
    opened_by: str
    opened_at: datetime
    due_at: datetime
    overdue: bool
    answered_at: datetime | None
    answered_by: str | None
    answer: str | None
    corrected_version: int | None


class ChallengeRejected(InvalidValue):
    """A challenge or an answer breaks a rule; the message says which, in plain words."""


def due_date(opened_at: datetime) -> datetime:
    """One calendar month later at the same time (31 January gives the end of February)."""
    year = opened_at.year + opened_at.month // 12
    month = opened_at.month % 12 + 1
    day = min(opened_at.day, calendar.monthrange(year, month)[1])
    return opened_at.replace(year=year, month=month, day=day)


def is_overdue(challenge: Challenge, now: datetime) -> bool:
    """Whether the department has let the deadline pass without answering."""
    return challenge.status == "open" and challenge.due_at < now


def _text(value: object, what: str, most: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > most:
        raise ChallengeRejected(f"{what} must be 1 to {most} characters.")
    return value.strip()


def _locked(session: Session, statement: Select[Any]) -> Any:
    # Openings and answers on the same thing queue behind one row lock on PostgreSQL
    # (SQLite's BEGIN IMMEDIATE already lets one writer in at a time), so a duplicate check
    # always sees the other's result.
    if session.get_bind().dialect.name != "sqlite":
        statement = statement.with_for_update()
    return session.execute(statement.execution_options(populate_existing=True)).scalar_one_or_none()


def _point_statement(citizen_id: str, key: str, version: int) -> Select[Any]:
    return select(DataPoint).where(
        col(DataPoint.citizen_id) == citizen_id,
        col(DataPoint.key) == key,
        col(DataPoint.version) == version,
    )


def departments_served(session: Session, citizen_id: str, key: str, version: int) -> list[str]:
    """Every department that was served this version of this data point."""
    wanted = {"key": key, "version": version}
    rows = session.execute(
        select(col(AccessEvent.department_id), col(AccessEvent.data_points)).where(
            col(AccessEvent.citizen_id) == citizen_id, col(AccessEvent.result) == "served"
        )
    ).all()
    return sorted({department for department, points in rows if wanted in points})


def _already_open(
    session: Session, decision: Decision, key: str | None, version: int | None
) -> bool:
    statement = select(col(Challenge.id)).where(col(Challenge.status) == "open")
    if key is None:
        statement = statement.join(Decision, col(Decision.id) == col(Challenge.decision_id)).where(
            col(Challenge.target) == "decision", col(Decision.series_id) == decision.series_id
        )
    else:
        statement = statement.where(
            col(Challenge.target) == "data_point",
            col(Challenge.citizen_id) == decision.citizen_id,
            col(Challenge.data_point_key) == key,
            col(Challenge.data_point_version) == version,
        )
    return session.execute(statement.limit(1)).first() is not None


def open_challenge(
    session: Session,
    vault: Vault,
    actor: Actor,
    *,
    decision_id: str,
    reason: str,
    data_point: tuple[str, int] | None = None,
) -> Challenge:
    """The person (or a helper allowed to) says a decision, or a data point it used, is wrong."""
    now = vault.clock()
    authorise(session, actor, "challenge", now)
    decision = session.get(Decision, decision_id)
    if decision is None or decision.citizen_id != actor.citizen_id:
        raise NotFound("We could not find that decision.")
    words = _text(reason, "Saying what is wrong", 2000)
    key: str | None = None
    version: int | None = None
    if data_point is not None:
        key, version = data_point
        if {"key": key, "version": version} not in decision.data_points_used:
            raise ChallengeRejected("This decision did not use that piece of information.")
        point = _locked(session, _point_statement(decision.citizen_id, key, version))
        if point is None:
            raise NotFound("We could not find that piece of information.")
    current = _locked(
        session,
        select(Decision).where(
            col(Decision.series_id) == decision.series_id, col(Decision.status) == "current"
        ),
    )
    if _already_open(session, decision, key, version):
        raise ChallengeRejected("You already said this is wrong. We are checking it.")
    citizen = get_citizen(session, decision.citizen_id)
    dek = data_key(vault, citizen)
    challenge = Challenge(
        citizen_id=decision.citizen_id,
        department_id=decision.department_id,
        target="decision" if key is None else "data_point",
        decision_id=decision.id,
        data_point_key=key,
        data_point_version=version,
        sealed_reason=b"",
        opened_by=actor.label,
        opened_at=now,
        due_at=due_date(now),
    )
    challenge.sealed_reason = envelope.seal_text(
        dek, words, envelope.associated_data(citizen.id, REASON_KIND, challenge.id, 1)
    )
    session.add(challenge)
    ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                CHALLENGE_OPENED.name,
                challenge,
                now,
                citizen_key=ledger_key(vault, citizen),
                details={
                    "challenge_id": challenge.id,
                    "decision_id": decision.id,
                    "target": challenge.target,
                    "key": key,
                    "version": version,
                    "department_id": challenge.department_id,
                    "by": actor.kind,
                },
            )
        ],
    )
    if key is not None and version is not None:
        _contest(session, challenge, key, version, now)
    elif current is not None:
        flag_for_review(session, current, "decision_challenged", now)
    notices.tell_department(
        session,
        notices.DepartmentNotice(
            challenge.department_id,
            notices.CHALLENGE_OPENED,
            challenge.citizen_id,
            {
                "challenge_id": challenge.id,
                "decision_id": decision.id,
                "target": challenge.target,
                "key": key,
                "version": version,
            },
        ),
    )
    citizen_notices.notify_citizen(session, citizen.id, "challenge_opened", challenge.id, now)
    return challenge


def _contest(session: Session, challenge: Challenge, key: str, version: int, now: datetime) -> None:
    # Only the newest version shows as being checked: an older one stays superseded, or it
    # would be read back as current.
    session.execute(
        update(DataPoint)
        .where(
            col(DataPoint.citizen_id) == challenge.citizen_id,
            col(DataPoint.key) == key,
            col(DataPoint.version) == version,
            col(DataPoint.status) == "current",
        )
        .values(status="contested")
    )
    for department in departments_served(session, challenge.citizen_id, key, version):
        notices.tell_department(
            session,
            notices.DepartmentNotice(
                department,
                notices.DATA_POINT_CONTESTED,
                challenge.citizen_id,
                {"challenge_id": challenge.id, "key": key, "version": version},
            ),
        )
    flag_decisions_using(
        session, challenge.citizen_id, key, version, "data_point_contested", now=now
    )


def answer_challenge(
    session: Session,
    vault: Vault,
    department_id: str,
    challenge_id: str,
    *,
    outcome: str,
    reasons: str,
    answered_by: str,
    new_value: Any = None,
) -> Challenge:
    """The department answers a challenge: corrected, upheld, or decision changed."""
    challenge = _locked(session, select(Challenge).where(col(Challenge.id) == challenge_id))
    if challenge is None or challenge.department_id != department_id:
        raise NotFound(NOT_FOUND)
    if challenge.status != "open":
        raise ChallengeRejected("This has already been answered.")
    if outcome not in OUTCOMES:
        raise ChallengeRejected("The answer must be corrected, upheld or decision_changed.")
    words = _text(reasons, "The reasons", 5000)
    answerer = _text(answered_by, "The name of who answered", 200)
    key, old_version = challenge.data_point_key, challenge.data_point_version
    if outcome == "corrected":
        if key is None or old_version is None:
            raise ChallengeRejected("Only a piece of information can be corrected.")
        if new_value is None:
            raise ChallengeRejected("Give the corrected value.")
        try:
            catalogue.validate_value(key, new_value)
        except InvalidValue as error:
            raise ChallengeRejected(error.message) from None
    if outcome == "decision_changed" and not _changed_since(session, challenge.decision_id):
        raise ChallengeRejected("Record the changed decision first, as a review.")
    now = vault.clock()
    citizen = get_citizen(session, challenge.citizen_id)
    dek = data_key(vault, citizen)
    if outcome == "corrected" and key is not None and old_version is not None:
        source = f"department:{department_id}"
        corrected = record_data_point(
            session, vault, citizen.id, key, new_value, recorded_by=source, source=source
        )
        challenge.corrected_version = corrected.version
        _tell_corrected(session, challenge, key, old_version, corrected.version, now)
    elif key is not None:
        # Checked and not corrected: it is no longer being checked.
        session.execute(
            update(DataPoint)
            .where(
                col(DataPoint.citizen_id) == challenge.citizen_id,
                col(DataPoint.key) == key,
                col(DataPoint.version) == old_version,
                col(DataPoint.status) == "contested",
            )
            .values(status="current")
        )
    challenge.status = outcome
    challenge.answered_at = now
    challenge.answered_by = answerer
    challenge.sealed_answer = envelope.seal_text(
        dek, words, envelope.associated_data(citizen.id, ANSWER_KIND, challenge.id, 1)
    )
    session.add(challenge)
    ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                CHALLENGE_ANSWERED.name,
                challenge,
                now,
                citizen_key=ledger_key(vault, citizen),
                details={
                    "challenge_id": challenge.id,
                    "status": outcome,
                    "target": challenge.target,
                    "key": key,
                    "version": old_version,
                    "corrected_version": challenge.corrected_version,
                    "department_id": department_id,
                },
            )
        ],
    )
    citizen_notices.notify_citizen(session, citizen.id, "challenge_answered", challenge.id, now)
    return challenge


def _changed_since(session: Session, decision_id: str) -> bool:
    challenged = session.get(Decision, decision_id)
    if challenged is None:
        return False
    newer = session.execute(
        select(col(Decision.id))
        .where(
            col(Decision.series_id) == challenged.series_id,
            col(Decision.version) > challenged.version,
        )
        .limit(1)
    ).first()
    return newer is not None


def _tell_corrected(
    session: Session, challenge: Challenge, key: str, old: int, new: int, now: datetime
) -> None:
    for department in departments_served(session, challenge.citizen_id, key, old):
        notices.tell_department(
            session,
            notices.DepartmentNotice(
                department,
                notices.DATA_POINT_CORRECTED,
                challenge.citizen_id,
                {"challenge_id": challenge.id, "key": key, "old_version": old, "new_version": new},
            ),
        )
    flag_decisions_using(session, challenge.citizen_id, key, old, "data_point_corrected", now=now)


def _views(
    session: Session, vault: Vault, rows: Sequence[Challenge], now: datetime
) -> list[ChallengeView]:
    decisions: Mapping[str, Decision] = {
        d.id: d
        for d in session.execute(
            select(Decision).where(col(Decision.id).in_(sorted({r.decision_id for r in rows})))
        ).scalars()
    }
    keys: dict[str, bytes] = {}
    views = []
    for row in rows:
        if row.citizen_id not in keys:
            keys[row.citizen_id] = data_key(vault, get_citizen(session, row.citizen_id))
        views.append(_view(keys[row.citizen_id], row, decisions[row.decision_id], now))
    return views


def _view(dek: bytes, row: Challenge, decision: Decision, now: datetime) -> ChallengeView:
    if row.data_point_key is not None:
        label = catalogue.entry(row.data_point_key).label
    else:
        label = str(decision_texts(dek, decision)["title"])
    reason = envelope.open_text(
        dek, row.sealed_reason, envelope.associated_data(row.citizen_id, REASON_KIND, row.id, 1)
    )
    answer = None
    if row.sealed_answer is not None:
        answer = envelope.open_text(
            dek,
            row.sealed_answer,
            envelope.associated_data(row.citizen_id, ANSWER_KIND, row.id, 1),
        )
    return ChallengeView(
        id=row.id,
        target=row.target,
        decision_id=row.decision_id,
        department_id=row.department_id,
        data_point_key=row.data_point_key,
        data_point_version=row.data_point_version,
        label=label,
        reason=reason,
        status=row.status,
        opened_by=row.opened_by,
        opened_at=row.opened_at,
        due_at=row.due_at,
        overdue=is_overdue(row, now),
        answered_at=row.answered_at,
        answered_by=row.answered_by,
        answer=answer,
        corrected_version=row.corrected_version,
    )


def challenges_for_citizen(session: Session, vault: Vault, citizen_id: str) -> list[ChallengeView]:
    """Everything the person has said is wrong, newest first."""
    rows = session.execute(
        select(Challenge)
        .where(col(Challenge.citizen_id) == citizen_id)
        .order_by(col(Challenge.opened_at).desc(), col(Challenge.id).desc())
    ).scalars()
    return _views(session, vault, list(rows), vault.clock())


def challenge_for_citizen(
    session: Session, vault: Vault, citizen_id: str, challenge_id: str
) -> ChallengeView:
    """One of the person's challenges; NotFound if it is not theirs."""
    row = session.get(Challenge, challenge_id)
    if row is None or row.citizen_id != citizen_id:
        raise NotFound(NOT_FOUND)
    return _views(session, vault, [row], vault.clock())[0]


def challenges_for_department(
    session: Session, vault: Vault, department_id: str, *, status: str | None = "open"
) -> list[ChallengeView]:
    """The challenges a department must answer (or all of them), soonest deadline first.

    Challenges from people who have since deleted their account cannot be read and are left out.
    """
    if status is not None and status not in STATUSES:
        raise ChallengeRejected("The status must be open, corrected, upheld or decision_changed.")
    statement = (
        select(Challenge)
        .join(Citizen, col(Citizen.id) == col(Challenge.citizen_id))
        .where(col(Challenge.department_id) == department_id, col(Citizen.status) != "erased")
        .order_by(col(Challenge.due_at), col(Challenge.id))
    )
    if status is not None:
        statement = statement.where(col(Challenge.status) == status)
    return _views(session, vault, list(session.execute(statement).scalars()), vault.clock())
