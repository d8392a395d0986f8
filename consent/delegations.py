"""Delegations: a citizen lets a support worker help, within limits, until a date."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from consent import grants
from consent.actors import SCOPES, Actor
from consent.errors import NotAllowed
from consent.events import DELEGATION_GIVEN, DELEGATION_REVOKED
from consent.models import Delegation, Grant
from vault import ledger
from vault.accounts import get_account
from vault.citizens import get_citizen, ledger_key
from vault.errors import InvalidValue, NotFound
from vault.services import Vault

MAX_DELEGATION = timedelta(days=366)


def check_terms(scopes: Iterable[str], ends_at: datetime, now: datetime) -> list[str]:
    """Check what a helper may do and until when; return the scopes in their usual order."""
    chosen = set(scopes)
    unknown = chosen - set(SCOPES)
    if unknown:
        raise InvalidValue("Choose what your helper can do from the list.")
    if not chosen:
        raise InvalidValue("Choose at least one thing your helper can do.")
    if ends_at <= now:
        raise InvalidValue("The end date must be in the future.")
    if ends_at - now > MAX_DELEGATION:
        raise InvalidValue("The end date must be within one year.")
    return [scope for scope in SCOPES if scope in chosen]


def give_delegation(
    session: Session,
    vault: Vault,
    actor: Actor,
    worker_account_id: str,
    scopes: Iterable[str],
    ends_at: datetime,
) -> Delegation:
    """The citizen lets a worker help them. Only the citizen can do this, never a worker."""
    if actor.kind != "citizen":
        raise NotAllowed("Only the person themselves can choose who helps them.")
    now = vault.clock()
    clean = check_terms(scopes, ends_at, now)
    worker_account = get_account(session, worker_account_id)
    if worker_account.citizen_id == actor.citizen_id:
        raise InvalidValue("You cannot choose yourself as your helper.")
    citizen = get_citizen(session, actor.citizen_id)
    delegation = Delegation(
        citizen_id=actor.citizen_id,
        worker_account_id=worker_account_id,
        scopes=clean,
        created_by=actor.label,
        created_at=now,
        ends_at=ends_at,
    )
    session.add(delegation)
    ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                DELEGATION_GIVEN.name,
                delegation,
                now,
                citizen_key=ledger_key(vault, citizen),
                details={"delegation_id": delegation.id, "scopes": clean},
            )
        ],
    )
    return delegation


def revoke_delegation(session: Session, vault: Vault, actor: Actor, delegation_id: str) -> None:
    """End a delegation and every grant given under it.

    The citizen can end any of their delegations; a worker can step down from their own.
    """
    delegation = session.get(Delegation, delegation_id)
    if delegation is None or delegation.citizen_id != actor.citizen_id:
        raise NotFound("We could not find that helper.")
    if actor.kind == "worker" and delegation.worker_account_id != actor.account_id:
        raise NotFound("We could not find that helper.")
    if delegation.revoked_at is not None:
        return
    now = vault.clock()
    delegation.revoked_at = now
    delegation.revoked_by = actor.label
    session.add(delegation)
    citizen = get_citizen(session, delegation.citizen_id)
    key = ledger_key(vault, citizen)
    ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                DELEGATION_REVOKED.name,
                delegation,
                now,
                citizen_key=key,
                details={"delegation_id": delegation.id},
            )
        ],
    )
    given_under = session.execute(
        select(Grant).where(
            col(Grant.delegation_id) == delegation.id,
            col(Grant.revoked_at).is_(None),
        )
    ).scalars()
    for grant in given_under:
        grants.revoke_grant_row(session, vault, grant, f"delegation-ended:{delegation.id}", key)


def change_scopes(
    session: Session,
    vault: Vault,
    actor: Actor,
    delegation_id: str,
    scopes: Iterable[str],
    ends_at: datetime | None = None,
) -> Delegation:
    """The citizen changes what a helper may do: the old delegation ends, a new one starts.

    Delegations are never edited in place, so the ledger shows exactly what the helper could
    do when. Grants the helper gave under the old delegation end with it.
    """
    if actor.kind != "citizen":
        raise NotAllowed("Only the person themselves can change what a helper can do.")
    old = session.get(Delegation, delegation_id)
    if old is None or old.citizen_id != actor.citizen_id or old.revoked_at is not None:
        raise NotFound("We could not find that helper.")
    new = give_delegation(
        session, vault, actor, old.worker_account_id, scopes, ends_at or old.ends_at
    )
    revoke_delegation(session, vault, actor, old.id)
    return new


def delegations_for_citizen(session: Session, citizen_id: str) -> list[Delegation]:
    """Every delegation a citizen has given, newest first."""
    return list(
        session.execute(
            select(Delegation)
            .where(col(Delegation.citizen_id) == citizen_id)
            .order_by(col(Delegation.created_at).desc())
        ).scalars()
    )


def delegations_for_worker(
    session: Session, worker_account_id: str, now: datetime
) -> list[Delegation]:
    """The live delegations a worker holds: the people they may help now."""
    rows = session.execute(
        select(Delegation).where(
            col(Delegation.worker_account_id) == worker_account_id,
            col(Delegation.revoked_at).is_(None),
        )
    ).scalars()
    return [d for d in rows if d.ends_at > now]
