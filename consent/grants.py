"""Grants (consents): give, stop, expire, and the one rule for what a department may receive."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, select, update
from sqlmodel import Session, col

from consent import notices, receipts
from consent.actors import Actor, authorise
from consent.errors import NotAllowed
from consent.events import GRANT_DELETION_CONFIRMED, GRANT_EXPIRED, GRANT_GIVEN, GRANT_REVOKED
from consent.models import Grant
from consent.notices import DepartmentNotice, tell_department
from vault import catalogue, ledger
from vault.citizens import get_citizen, ledger_key
from vault.errors import InvalidValue, NotFound
from vault.services import Vault

CASE_REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,63}$")
CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_DURATION_DAYS = 366
MAX_DATA_LIFE_DAYS = 3650
MAX_FETCHES = 10_000
MAX_CONFIRMED_BY = 200
STORY_PREFIX = "story:"


@dataclass(frozen=True)
class GrantRequest:
    """What a department asks for, and the person agrees to."""

    department_id: str
    purpose_code: str
    purpose_text: str
    data_points: Sequence[str]
    case_reference: str
    duration_days: int
    data_life_days: int
    max_fetches: int
    story_topics: Sequence[str] = ()
    # "Ask me each time" topics the person said a second, explicit yes to.
    explicit_topics: Sequence[str] = ()
    starts_at: datetime | None = None


@dataclass(frozen=True)
class ServeDecision:
    """The answer of ``may_serve``: yes, or no with a reason in plain words."""

    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class GivenGrant:
    """A grant just given, where it landed in the ledger, and the citizen's signed receipt."""

    grant: Grant
    leaf: ledger.LeafReceipt
    receipt: str


def _positive(name: str, value: int, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise InvalidValue(f"{name} must be a whole number from 1 to {most}.")
    return value


def validate_request(request: GrantRequest) -> GrantRequest:
    """Check every field of a grant request; raise InvalidValue naming the first problem."""
    if not request.department_id or len(request.department_id) > 64:
        raise InvalidValue("The grant must name a department.")
    if not CODE.fullmatch(request.purpose_code):
        raise InvalidValue("The purpose code must be short lower-case letters, digits or _.")
    if not request.purpose_text.strip() or len(request.purpose_text) > 500:
        raise InvalidValue("The purpose must be explained in 1 to 500 characters.")
    if not CASE_REFERENCE.fullmatch(request.case_reference):
        raise InvalidValue("The case reference must be 1 to 64 letters, digits, or - _ / .")
    keys = list(dict.fromkeys(request.data_points))
    for key in keys:
        catalogue.entry(key)
    topics = [catalogue.validate_topic(t) for t in dict.fromkeys(request.story_topics)]
    explicit = list(dict.fromkeys(request.explicit_topics))
    if not set(explicit) <= set(topics):
        raise InvalidValue("A topic can only be shared once if it is part of the request.")
    if not keys and not topics:
        raise InvalidValue("A grant must share at least one thing.")
    _positive("Duration in days", request.duration_days, MAX_DURATION_DAYS)
    _positive("Data life in days", request.data_life_days, MAX_DATA_LIFE_DAYS)
    _positive("The fetch limit", request.max_fetches, MAX_FETCHES)
    return GrantRequest(
        department_id=request.department_id,
        purpose_code=request.purpose_code,
        purpose_text=request.purpose_text.strip(),
        data_points=keys,
        case_reference=request.case_reference,
        duration_days=request.duration_days,
        data_life_days=request.data_life_days,
        max_fetches=request.max_fetches,
        story_topics=topics,
        explicit_topics=explicit,
        starts_at=request.starts_at,
    )


def give_grant(
    session: Session,
    vault: Vault,
    actor: Actor,
    request: GrantRequest,
    *,
    issuer: str | None = None,
) -> GivenGrant:
    """Record the person's yes (or their helper's, with permission), log it, sign a receipt.

    ``issuer`` names the receipt's signer (default: the ledger origin).
    """
    request = validate_request(request)
    now = vault.clock()
    delegation_id = authorise(session, actor, "answer_requests", now)
    citizen = get_citizen(session, actor.citizen_id)
    starts = request.starts_at or now
    grant = Grant(
        citizen_id=actor.citizen_id,
        department_id=request.department_id,
        purpose_code=request.purpose_code,
        purpose_text=request.purpose_text,
        data_points=list(request.data_points),
        story_topics=list(request.story_topics),
        explicit_topics=list(request.explicit_topics),
        case_reference=request.case_reference,
        starts_at=starts,
        ends_at=starts + timedelta(days=request.duration_days),
        data_life_days=request.data_life_days,
        max_fetches=request.max_fetches,
        given_by=actor.label,
        delegation_id=delegation_id,
        created_at=now,
    )
    session.add(grant)
    (leaf,) = ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                GRANT_GIVEN.name,
                grant,
                now,
                citizen_key=ledger_key(vault, citizen),
                details={
                    "grant_id": grant.id,
                    "department_id": grant.department_id,
                    "purpose": grant.purpose_code,
                    "data_points": grant.data_points,
                    "story_topics": grant.story_topics,
                    "by": actor.kind,
                },
            )
        ],
    )
    receipt = receipts.issue_receipt(vault, grant, leaf, "given", issuer or vault.ledger_origin)
    return GivenGrant(grant, leaf, receipt)


def get_grant(session: Session, grant_id: str) -> Grant:
    """Fetch a grant by id, or raise NotFound."""
    grant = session.get(Grant, grant_id)
    if grant is None:
        raise NotFound("We could not find that permission.")
    return grant


def _revoke(
    session: Session, vault: Vault, actor: Actor, grant_id: str
) -> tuple[Grant, ledger.LeafReceipt | None]:
    grant = session.get(Grant, grant_id)
    if grant is None or grant.citizen_id != actor.citizen_id:
        raise NotFound("We could not find that permission.")
    authorise(session, actor, "answer_requests", vault.clock())
    if grant.revoked_at is not None:
        return grant, None
    citizen = get_citizen(session, grant.citizen_id)
    return grant, revoke_grant_row(session, vault, grant, actor.label, ledger_key(vault, citizen))


def revoke_grant(
    session: Session, vault: Vault, actor: Actor, grant_id: str
) -> ledger.LeafReceipt | None:
    """Stop sharing: the citizen (or a helper allowed to answer requests) ends a grant."""
    return _revoke(session, vault, actor, grant_id)[1]


def revoke_grant_with_receipt(
    session: Session, vault: Vault, actor: Actor, grant_id: str, *, issuer: str | None = None
) -> tuple[ledger.LeafReceipt, str] | None:
    """Stop sharing and sign the citizen a receipt; None if it was already stopped."""
    grant, leaf = _revoke(session, vault, actor, grant_id)
    if leaf is None:
        return None
    receipt = receipts.issue_receipt(vault, grant, leaf, "withdrawn", issuer or vault.ledger_origin)
    return leaf, receipt


def revoke_grant_row(
    session: Session, vault: Vault, grant: Grant, by: str, key: ledger.CitizenLedgerKey
) -> ledger.LeafReceipt:
    """Mark one grant stopped, log it and tell the department (callers checked permission)."""
    now = vault.clock()
    grant.revoked_at = now
    grant.revoked_by = by
    session.add(grant)
    # Every way a grant stops (the person, their helper, a helper's permission ending) ends up
    # here, so the department always hears that it must stop using the data.
    tell_department(
        session,
        DepartmentNotice(
            grant.department_id, notices.GRANT_REVOKED, grant.citizen_id, {"grant_id": grant.id}
        ),
    )
    (leaf,) = ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                GRANT_REVOKED.name,
                grant,
                now,
                citizen_key=key,
                details={"grant_id": grant.id, "department_id": grant.department_id},
            )
        ],
    )
    return leaf


def expire_due_grants(session: Session, vault: Vault) -> int:
    """Mark every grant past its end as expired, with a ledger entry each; return how many."""
    now = vault.clock()
    due = (
        session.execute(
            select(Grant).where(
                col(Grant.ends_at) <= now,
                col(Grant.expired_at).is_(None),
                col(Grant.revoked_at).is_(None),
            )
        )
        .scalars()
        .all()
    )
    events = []
    for grant in due:
        grant.expired_at = now
        session.add(grant)
        citizen = get_citizen(session, grant.citizen_id)
        key = None if citizen.status == "erased" else ledger_key(vault, citizen)
        events.append(
            ledger.LedgerEvent(
                GRANT_EXPIRED.name, grant, now, citizen_key=key, details={"grant_id": grant.id}
            )
        )
    ledger.append(session, vault, events)
    return len(due)


def grant_status(grant: Grant, now: datetime) -> str:
    """``revoked``, ``expired``, ``not_started`` or ``active``, worked out from the clock."""
    if grant.revoked_at is not None:
        return "revoked"
    if grant.expired_at is not None or now >= grant.ends_at:
        return "expired"
    if now < grant.starts_at:
        return "not_started"
    return "active"


def active_grant_clause(now: datetime | BindParameter[Any]) -> list[ColumnElement[bool]]:
    """SQL criteria true exactly when ``grant_status(grant, now)`` is ``active``.

    ``now`` may be a bound parameter, for a statement built once and run with the time.

    For writes that must find the grant still active at the moment they happen (a guarded
    UPDATE). tests/consent/test_grant_clause.py checks the two agree at every edge.
    """
    return [
        col(Grant.revoked_at).is_(None),
        col(Grant.expired_at).is_(None),
        col(Grant.ends_at) > now,
        col(Grant.starts_at) <= now,
    ]


def may_serve(
    grant: Grant, item: str, now: datetime, *, sensitivity: str | None = None
) -> ServeDecision:
    """Decide whether the grant's department may receive one item now.

    ``item`` is a data point key (``contact.address``) or a story topic (``story:housing``);
    for a story topic pass the current section's ``sensitivity``. This is the only place
    that rule lives: every path that serves data asks it.
    """
    status = grant_status(grant, now)
    if status == "revoked":
        return ServeDecision(False, "The person stopped this permission.")
    if status == "expired":
        return ServeDecision(False, "This permission has ended.")
    if status == "not_started":
        return ServeDecision(False, "This permission has not started yet.")
    if grant.fetch_count >= grant.max_fetches:
        return ServeDecision(False, "This permission has been used as many times as agreed.")
    if item.startswith(STORY_PREFIX):
        topic = item.removeprefix(STORY_PREFIX)
        if topic not in grant.story_topics:
            return ServeDecision(False, "This part of the story is not covered.")
        if sensitivity == "ask_me_each_time":
            # Never under a standing grant: only with the person's explicit yes for this
            # request, and only on its first use.
            if topic not in grant.explicit_topics or grant.fetch_count > 0:
                return ServeDecision(False, "The person wants to be asked each time.")
        elif sensitivity != "normal":
            return ServeDecision(False, "This part of the story is not covered.")
        return ServeDecision(True)
    if item not in grant.data_points:
        return ServeDecision(False, "This information is not covered.")
    return ServeDecision(True)


def grants_for_citizen(session: Session, citizen_id: str) -> list[Grant]:
    """Every grant a citizen has given, newest first."""
    return list(
        session.execute(
            select(Grant)
            .where(col(Grant.citizen_id) == citizen_id)
            .order_by(col(Grant.created_at).desc())
        ).scalars()
    )


def require_department(grant: Grant, department_id: str) -> None:
    """Refuse (as not found, revealing nothing) if the grant is not this department's."""
    if grant.department_id != department_id:
        raise NotAllowed("We could not find that permission.")


def ended_at(grant: Grant, now: datetime) -> datetime | None:
    """When the grant stopped, ran out or ended; None while it has not ended."""
    if grant.revoked_at is not None:
        return grant.revoked_at
    if grant.expired_at is not None:
        return grant.expired_at
    return grant.ends_at if now >= grant.ends_at else None


def deletion_overdue(grant: Grant, now: datetime) -> bool:
    """Whether the department kept the data past its data life without confirming deletion."""
    ended = ended_at(grant, now)
    if ended is None or grant.deletion_confirmed_at is not None:
        return False
    return ended + timedelta(days=grant.data_life_days) < now


def confirm_deletion(
    session: Session, vault: Vault, department_id: str, grant_id: str, *, confirmed_by: str
) -> Grant:
    """The department says it deleted what it received under a grant that has ended."""
    grant = session.get(Grant, grant_id)
    if grant is None or grant.department_id != department_id:
        raise NotFound("We could not find that permission.")
    now = vault.clock()
    if ended_at(grant, now) is None:
        raise InvalidValue("This permission has not ended yet.")
    if grant.deletion_confirmed_at is not None:
        raise InvalidValue("You already confirmed this.")
    who = confirmed_by.strip() if isinstance(confirmed_by, str) else ""
    if not who or len(who) > MAX_CONFIRMED_BY:
        raise InvalidValue(
            f"Name who confirmed the deletion, in 1 to {MAX_CONFIRMED_BY} characters."
        )
    # Only the first of two racing confirmations wins: a second leaf for the same grant
    # would read as a replay in the ledger.
    claimed = session.execute(
        update(Grant)
        .where(col(Grant.id) == grant.id, col(Grant.deletion_confirmed_at).is_(None))
        .values(deletion_confirmed_at=now, deletion_confirmed_by=who)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        raise InvalidValue("You already confirmed this.")
    session.refresh(grant)
    citizen = get_citizen(session, grant.citizen_id)
    key = None if citizen.status == "erased" else ledger_key(vault, citizen)
    ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                GRANT_DELETION_CONFIRMED.name,
                grant,
                now,
                citizen_key=key,
                details={"grant_id": grant.id, "department_id": grant.department_id},
            )
        ],
    )
    return grant
