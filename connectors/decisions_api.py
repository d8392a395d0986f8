"""The department API for decisions, reviews, challenges and deletion confirmations.

Plain values in, plain dicts out: the consent layer decides every rule; this module checks
that the caller's token may ask, hands the request on, and shapes the answer. A person is
named to a department only by their pairwise subject, never by their id in the vault.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from connectors.errors import ConnectorError
from connectors.resource import ApiCaller
from connectors.subjects import pairwise_subject
from consent import challenges as consent_challenges
from consent import decisions as consent_decisions
from consent import grants as consent_grants
from consent.challenges import ChallengeRejected, ChallengeView
from consent.decision_models import Challenge, Decision
from consent.decisions import DecisionInput
from vault.catalogue import validate_value
from vault.errors import InvalidValue
from vault.services import Vault


class InsufficientScope(ConnectorError):
    """The token is valid but not the kind this call needs."""

    error = "insufficient_scope"
    status = 403


class Conflict(ConnectorError):
    """The request is well formed but the thing it acts on is not in a state that allows it."""

    error = "conflict"
    status = 409


def _recorded_by(caller: ApiCaller, officer: str) -> str:
    # The same shape as a decision's recorded_by: which department, and who in it.
    return f"department:{caller.department_id}/{officer.strip()}"


def decision_answer(vault: Vault, decision: Decision) -> dict[str, Any]:
    """What the department gets back for a recorded decision or review."""
    return {
        "id": decision.id,
        "series_id": decision.series_id,
        "version": decision.version,
        "kind": decision.kind,
        "subject": pairwise_subject(vault, decision.department_id, decision.citizen_id),
        "created_at": decision.created_at,
        "data_points_used": [
            {"key": used["key"], "version": int(used["version"])}
            for used in decision.data_points_used
        ],
    }


def record_decision(
    session: Session,
    vault: Vault,
    caller: ApiCaller,
    body: Mapping[str, Any],
    *,
    acting_officer: str,
) -> dict[str, Any]:
    """Record a decision under the caller's grant; DecisionRejected names what is wrong."""
    if caller.grant_id is None:
        raise InsufficientScope(
            "Record a decision with the token from the person's permission: the decision "
            "belongs to that permission."
        )
    algorithm = body.get("algorithm") or {}
    officer = body["accountable_officer"]
    data = DecisionInput(
        case_reference=body["case_reference"],
        title=body["title"],
        outcome=body["outcome"],
        reasons=body["reasons"],
        automated=body["automated"],
        algorithm_name=algorithm.get("name"),
        algorithm_version=algorithm.get("version"),
        officer_name=officer["name"],
        officer_role=officer["role"],
        data_points_used=[(p["key"], p["version"]) for p in body["data_points_used"]],
        other_information_used=[dict(item) for item in body.get("other_information_used", [])],
    )
    decision = consent_decisions.record_decision(
        session,
        vault,
        caller.department_id,
        caller.grant_id,
        data,
        acting_officer=acting_officer,
    )
    return decision_answer(vault, decision)


def review_decision(
    session: Session,
    vault: Vault,
    caller: ApiCaller,
    decision_id: str,
    body: Mapping[str, Any],
    *,
    acting_officer: str | None,
) -> dict[str, Any]:
    """Record a named person's review as the decision's next version."""
    reviewer = body["reviewer"]
    decision = consent_decisions.review_decision(
        session,
        vault,
        caller.department_id,
        decision_id,
        kind=body["kind"],
        reviewer_name=reviewer["name"],
        reviewer_role=reviewer["role"],
        reasons=body["reasons"],
        new_outcome=body.get("outcome"),
        acting_officer=acting_officer or reviewer["name"],
    )
    return decision_answer(vault, decision)


def _citizens_of(session: Session, challenge_ids: list[str]) -> dict[str, str]:
    if not challenge_ids:
        return {}
    rows = session.execute(
        select(col(Challenge.id), col(Challenge.citizen_id)).where(
            col(Challenge.id).in_(challenge_ids)
        )
    ).all()
    return {challenge_id: citizen_id for challenge_id, citizen_id in rows}


def _challenge_answer(vault: Vault, view: ChallengeView, citizen_id: str) -> dict[str, Any]:
    return {
        "id": view.id,
        "target": view.target,
        "decision_id": view.decision_id,
        "subject": pairwise_subject(vault, view.department_id, citizen_id),
        "key": view.data_point_key,
        "version": view.data_point_version,
        "reason": view.reason,
        "opened_at": view.opened_at,
        "due_at": view.due_at,
        "overdue": view.overdue,
        "status": view.status,
        "answer": view.answer,
        "answered_at": view.answered_at,
        "corrected_version": view.corrected_version,
    }


def department_challenges(
    session: Session, vault: Vault, caller: ApiCaller, *, status: str
) -> dict[str, Any]:
    """The caller's department's challenges with one status (``open`` ...) or ``all``."""
    views = consent_challenges.challenges_for_department(
        session, vault, caller.department_id, status=None if status == "all" else status
    )
    citizens = _citizens_of(session, [view.id for view in views])
    return {"challenges": [_challenge_answer(vault, v, citizens[v.id]) for v in views]}


def _check_answer(
    session: Session, department_id: str, challenge_id: str, body: Mapping[str, Any]
) -> None:
    # Checks that need the challenge run only on the department's own challenge: any other
    # id is left to the consent layer's "not found", so nobody learns another's exists.
    # Locked, so of two answers racing the second waits, then sees the first (409).
    found = session.get(Challenge, challenge_id, with_for_update=True)
    if found is None or found.department_id != department_id:
        return
    if found.status != "open":
        raise Conflict("This challenge has already been answered.")
    if body["outcome"] != "corrected" or found.data_point_key is None:
        return
    if body.get("value") is None:
        raise ChallengeRejected("value: give the corrected value when the outcome is corrected.")
    try:
        validate_value(found.data_point_key, body["value"])
    except InvalidValue as error:
        raise ChallengeRejected(f"value: {error.message}") from None


def answer_challenge(
    session: Session,
    vault: Vault,
    caller: ApiCaller,
    challenge_id: str,
    body: Mapping[str, Any],
    *,
    acting_officer: str,
) -> dict[str, Any]:
    """Answer one of the department's open challenges: corrected, upheld or decision changed."""
    _check_answer(session, caller.department_id, challenge_id, body)
    answered = consent_challenges.answer_challenge(
        session,
        vault,
        caller.department_id,
        challenge_id,
        outcome=body["outcome"],
        reasons=body["reasons"],
        answered_by=_recorded_by(caller, acting_officer),
        new_value=body.get("value"),
    )
    view = consent_challenges.challenge_for_citizen(
        session, vault, answered.citizen_id, answered.id
    )
    return _challenge_answer(vault, view, answered.citizen_id)


def confirm_deletion(
    session: Session, vault: Vault, caller: ApiCaller, grant_id: str, *, acting_officer: str
) -> dict[str, Any]:
    """The department's word that it deleted what it received under an ended permission."""
    try:
        grant = consent_grants.confirm_deletion(
            session,
            vault,
            caller.department_id,
            grant_id,
            confirmed_by=_recorded_by(caller, acting_officer),
        )
    except InvalidValue as error:
        # Not ended yet, or already confirmed: the grant's state, not the request, is wrong.
        raise Conflict(error.message) from None
    return {"grant_id": grant.id, "deletion_confirmed_at": grant.deletion_confirmed_at}
