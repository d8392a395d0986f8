"""Decisions about a person: recorded by a department, reviewed by a named human, never edited.

A decision may cite only the data point versions its department was actually served under
the grant, so the person sees exactly what was used. A review adds a new version in the same
series; the old one is kept, superseded. What a decision says is sealed under the person's
data key; who is accountable and which versions were used stay in the clear.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from consent import citizen_notices
from consent.access import served_versions
from consent.decision_models import Decision
from consent.decision_views import (
    DECISION_KIND,
    NOT_FOUND,
    decision_texts,
)
from consent.events import DECISION_RECORDED, DECISION_REVIEWED
from consent.models import Grant
from consent.notices import DECISION_REVIEW_REQUESTED, DepartmentNotice, tell_department
from vault import envelope, ledger
from vault.citizens import data_key, get_citizen, ledger_key
from vault.clock import system_clock
from vault.errors import InvalidValue, NotFound
from vault.services import Vault

REVIEW_KINDS = ("adjusted", "overturned", "upheld")
MAX_DATA_POINTS_USED = 200
MAX_OTHER_INFORMATION = 50
_SAFE_KEY = re.compile(r"^[a-z0-9_.]{1,64}$")


@dataclass(frozen=True)
class DecisionInput:
    """What a department says it decided, why, who is accountable, and what it used."""

    case_reference: str
    title: str
    outcome: str
    reasons: str
    automated: bool
    algorithm_name: str | None
    algorithm_version: str | None
    officer_name: str
    officer_role: str
    data_points_used: Sequence[tuple[str, int]]
    other_information_used: Sequence[Mapping[str, str]]


class DecisionRejected(InvalidValue):
    """A decision or review breaks a rule; the message names the field (API: 422)."""


def _text(value: object, what: str, most: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > most:
        raise DecisionRejected(f"{what} must be 1 to {most} characters.")
    return value.strip()


def _shown(key: object) -> str:
    # Keys are not personal, but only a catalogue-shaped one is safe to repeat back.
    return key if isinstance(key, str) and _SAFE_KEY.fullmatch(key) else "?"


def same_person(first: str, second: str) -> bool:
    """Whether two names are the same, ignoring case and extra spaces."""
    return " ".join(first.split()).casefold() == " ".join(second.split()).casefold()


def _used_points(items: Sequence[tuple[str, int]], served: set[tuple[str, int]]) -> list[Any]:
    if len(items) > MAX_DATA_POINTS_USED:
        raise DecisionRejected(f"A decision can list at most {MAX_DATA_POINTS_USED} data points.")
    used: list[dict[str, Any]] = []
    for item in items:
        key, version = item
        if not isinstance(version, int) or isinstance(version, bool):
            raise DecisionRejected(f"The version of {_shown(key)} must be a whole number.")
        if (key, version) not in served:
            raise DecisionRejected(
                f"{_shown(key)} version {version} was never given to you under this permission."
            )
        if {"key": key, "version": version} not in used:
            used.append({"key": key, "version": version})
    return used


def _other_information(items: Sequence[Mapping[str, str]]) -> list[dict[str, str]]:
    if len(items) > MAX_OTHER_INFORMATION:
        raise DecisionRejected(
            f"A decision can list at most {MAX_OTHER_INFORMATION} other pieces of information."
        )
    return [
        {
            "description": _text(
                item.get("description"), "Each description of other information", 500
            ),
            "source": _text(item.get("source"), "Each source of other information", 500),
        }
        for item in items
    ]


def _acting_officer(department_id: str, acting_officer: str) -> str:
    prefix = f"department:{department_id}/"
    officer = _text(acting_officer, "The acting officer", 200 - len(prefix))
    return prefix + officer


def _seal(vault: Vault, session: Session, decision: Decision, texts: dict[str, Any]) -> bytes:
    dek = data_key(vault, get_citizen(session, decision.citizen_id))
    aad = envelope.associated_data(
        decision.citizen_id, DECISION_KIND, decision.id, decision.version
    )
    return envelope.seal_json(dek, texts, aad)


def _log(session: Session, vault: Vault, kind: str, decision: Decision) -> None:
    citizen = get_citizen(session, decision.citizen_id)
    ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                kind,
                decision,
                decision.created_at,
                citizen_key=ledger_key(vault, citizen),
                details={
                    "decision_id": decision.id,
                    "series_id": decision.series_id,
                    "version": decision.version,
                    "decision_kind": decision.kind,
                    "department_id": decision.department_id,
                    "grant_id": decision.grant_id,
                    "data_points_used": decision.data_points_used,
                    "automated": decision.automated,
                },
            )
        ],
    )


def record_decision(
    session: Session,
    vault: Vault,
    department_id: str,
    grant_id: str,
    data: DecisionInput,
    *,
    acting_officer: str,
) -> Decision:
    """Record a department's decision about the person whose grant it holds, and log it."""
    grant = session.get(Grant, grant_id)
    if grant is None or grant.department_id != department_id:
        raise NotFound("We could not find that permission.")
    if not isinstance(data.case_reference, str) or data.case_reference.strip() != (
        grant.case_reference
    ):
        raise DecisionRejected("The case reference does not match this permission.")
    title = _text(data.title, "The title", 200)
    outcome = _text(data.outcome, "The outcome", 2000)
    reasons = _text(data.reasons, "The reasons", 5000)
    if not isinstance(data.automated, bool):
        raise DecisionRejected("Say whether the decision was automated.")
    if data.automated:
        algorithm_name: str | None = _text(data.algorithm_name, "The algorithm's name", 200)
        algorithm_version: str | None = _text(data.algorithm_version, "The algorithm's version", 64)
    elif data.algorithm_name or data.algorithm_version:
        raise DecisionRejected("Only an automated decision names an algorithm.")
    else:
        algorithm_name = algorithm_version = None
    officer_name = _text(data.officer_name, "The accountable officer's name", 200)
    officer_role = _text(data.officer_role, "The accountable officer's role", 200)
    other = _other_information(data.other_information_used)
    used = _used_points(data.data_points_used, served_versions(session, grant.id))
    recorded_by = _acting_officer(department_id, acting_officer)
    now = vault.clock()
    decision = Decision(
        version=1,
        series_id="",
        kind="original",
        citizen_id=grant.citizen_id,
        department_id=department_id,
        grant_id=grant.id,
        case_reference=grant.case_reference,
        automated=data.automated,
        algorithm_name=algorithm_name,
        algorithm_version=algorithm_version,
        officer_name=officer_name,
        officer_role=officer_role,
        data_points_used=used,
        sealed=b"",
        recorded_by=recorded_by,
        created_at=now,
    )
    decision.series_id = decision.id
    decision.sealed = _seal(
        vault,
        session,
        decision,
        {"title": title, "outcome": outcome, "reasons": reasons, "other_information_used": other},
    )
    session.add(decision)
    _log(session, vault, DECISION_RECORDED.name, decision)
    citizen_notices.notify_citizen(
        session, decision.citizen_id, "decision_recorded", decision.id, now
    )
    return decision


def review_decision(
    session: Session,
    vault: Vault,
    department_id: str,
    decision_id: str,
    *,
    kind: str,
    reviewer_name: str,
    reviewer_role: str,
    reasons: str,
    new_outcome: str | None,
    acting_officer: str,
) -> Decision:
    """A named reviewer adjusts, overturns or upholds a decision: a new version in its series."""
    previous = get_decision_for_department(session, department_id, decision_id)
    if kind not in REVIEW_KINDS:
        raise DecisionRejected("The review must say adjusted, overturned or upheld.")
    reviewer = _text(reviewer_name, "The reviewer's name", 200)
    role = _text(reviewer_role, "The reviewer's role", 200)
    review_reasons = _text(reasons, "The reasons for the review", 5000)
    if kind == "upheld":
        if new_outcome is not None and new_outcome.strip():
            raise DecisionRejected("An upheld decision keeps its outcome: give no new outcome.")
        outcome = None
    else:
        outcome = _text(new_outcome, "The new outcome", 2000)
    if previous.automated and same_person(reviewer, previous.officer_name):
        raise DecisionRejected(
            "The reviewer of an automated decision must be someone other than the "
            "accountable officer."
        )
    recorded_by = _acting_officer(department_id, acting_officer)
    # Claim the version being reviewed: of two reviews racing, only one supersedes it.
    claimed = session.execute(
        update(Decision)
        .where(col(Decision.id) == previous.id, col(Decision.status) == "current")
        .values(status="superseded")
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise DecisionRejected("This decision has been reviewed since: review the newest version.")
    session.refresh(previous)
    now = vault.clock()
    dek = data_key(vault, get_citizen(session, previous.citizen_id))
    texts = decision_texts(dek, previous)
    if outcome is not None:
        texts["outcome"] = outcome
    texts["review_reasons"] = review_reasons
    reviewed = Decision(
        series_id=previous.series_id,
        version=previous.version + 1,
        kind=kind,
        citizen_id=previous.citizen_id,
        department_id=previous.department_id,
        grant_id=previous.grant_id,
        case_reference=previous.case_reference,
        automated=previous.automated,
        algorithm_name=previous.algorithm_name,
        algorithm_version=previous.algorithm_version,
        officer_name=previous.officer_name,
        officer_role=previous.officer_role,
        reviewer_name=reviewer,
        reviewer_role=role,
        data_points_used=list(previous.data_points_used),
        sealed=b"",
        recorded_by=recorded_by,
        created_at=now,
    )
    reviewed.sealed = _seal(vault, session, reviewed, texts)
    session.add(reviewed)
    _log(session, vault, DECISION_REVIEWED.name, reviewed)
    citizen_notices.notify_citizen(
        session, reviewed.citizen_id, "decision_reviewed", reviewed.id, now
    )
    return reviewed


def get_decision_for_department(session: Session, department_id: str, decision_id: str) -> Decision:
    """One version of a decision this department made, or NotFound (revealing nothing)."""
    decision = session.get(Decision, decision_id)
    if decision is None or decision.department_id != department_id:
        raise NotFound(NOT_FOUND)
    return decision


def flag_for_review(
    session: Session,
    decision: Decision,
    because: str,
    now: datetime,
    *,
    key: str | None = None,
    version: int | None = None,
) -> None:
    """Ask the decision's department to review it, and say why (a challenge, a correction)."""
    decision.review_requested_at = now
    decision.review_requested_because = because
    session.add(decision)
    tell_department(
        session,
        DepartmentNotice(
            decision.department_id,
            DECISION_REVIEW_REQUESTED,
            decision.citizen_id,
            {
                "decision_id": decision.id,
                "series_id": decision.series_id,
                "key": key,
                "version": version,
                "because": because,
            },
        ),
    )


def flag_decisions_using(
    session: Session,
    citizen_id: str,
    key: str,
    version: int,
    because: str,
    *,
    now: datetime | None = None,
) -> list[Decision]:
    """Flag for review every current decision about the person that used this version."""
    when = now or system_clock()
    wanted = {"key": key, "version": version}
    # data_points_used is JSON: matched here rather than in SQL, the same on both databases
    # (a person has few current decisions).
    rows = session.execute(
        select(Decision)
        .where(col(Decision.citizen_id) == citizen_id, col(Decision.status) == "current")
        .order_by(col(Decision.created_at), col(Decision.id))
    ).scalars()
    flagged = [row for row in rows if wanted in row.data_points_used]
    for decision in flagged:
        flag_for_review(session, decision, because, when, key=key, version=version)
    return flagged
