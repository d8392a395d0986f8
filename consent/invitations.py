"""Invitations: a citizen gives a helper a one-time code; the helper turns it into a delegation.

Only a hash of the code is stored. The code is shown to the citizen once (or sent once); it is
not personal data, and the ledger entry for the delegation it becomes is the only record kept.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session, col

from consent.actors import Actor, active_delegation
from consent.actors import citizen as citizen_actor
from consent.delegations import check_terms, give_delegation, revoke_delegation
from consent.errors import NotAllowed
from consent.models import Delegation, Invitation
from vault.accounts import get_account
from vault.errors import InvalidValue, NotFound
from vault.services import Vault

INVITATION_LIFE = timedelta(days=7)
# No 0/O, 1/I/L, 5/S or 2/Z: letters and digits nobody mixes up when reading them aloud.
ALPHABET = "ABCDEFGHJKMNPQRTUVWXY346789"
GROUPS = 3
GROUP_SIZE = 4
BAD_CODE = "That code does not work. Ask the person for a new one."


@dataclass(frozen=True)
class NewInvitation:
    """An invitation just made, with its code: the only time the code is known."""

    invitation: Invitation
    code: str


def _new_code() -> str:
    groups = ("".join(secrets.choice(ALPHABET) for _ in range(GROUP_SIZE)) for _ in range(GROUPS))
    return "-".join(groups)


def normalise_code(code: str) -> str:
    """The code as typed, without spaces or dashes, in capitals (how it is hashed)."""
    return "".join(ch for ch in code.upper() if ch.isalnum())


def code_hash(code: str) -> str:
    """The SHA-256 of the normalised code: all the database ever holds."""
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def create_invitation(
    session: Session,
    vault: Vault,
    actor: Actor,
    scopes: Iterable[str],
    delegation_ends_at: datetime,
) -> NewInvitation:
    """The citizen invites a helper: returns the one-time code, to show once."""
    if actor.kind != "citizen":
        raise NotAllowed("Only the person themselves can invite a helper.")
    now = vault.clock()
    # The same terms a delegation will have, checked by the same rule.
    clean = check_terms(scopes, delegation_ends_at, now)
    code = _new_code()
    invitation = Invitation(
        citizen_id=actor.citizen_id,
        code_hash=code_hash(code),
        scopes=clean,
        delegation_ends_at=delegation_ends_at,
        created_by=actor.label,
        created_at=now,
        expires_at=now + INVITATION_LIFE,
    )
    session.add(invitation)
    session.flush()
    return NewInvitation(invitation, code)


def _usable(invitation: Invitation | None, now: datetime) -> Invitation:
    if (
        invitation is None
        or invitation.used_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= now
        or invitation.delegation_ends_at <= now
    ):
        # One answer for every reason, so a guesser learns nothing about which codes exist.
        raise InvalidValue(BAD_CODE)
    return invitation


def find_open_invitation(session: Session, vault: Vault, code: str) -> Invitation:
    """The invitation a code belongs to, if it can still be used; else the one plain error."""
    if not normalise_code(code):
        raise InvalidValue(BAD_CODE)
    found = session.execute(
        select(Invitation).where(col(Invitation.code_hash) == code_hash(code))
    ).scalar_one_or_none()
    return _usable(found, vault.clock())


def accept_invitation(
    session: Session, vault: Vault, code: str, worker_account_id: str
) -> Delegation:
    """A helper uses a code: the citizen's delegation to them starts now. Single use."""
    invitation = find_open_invitation(session, vault, code)
    now = vault.clock()
    worker = get_account(session, worker_account_id)
    if worker.citizen_id == invitation.citizen_id:
        raise InvalidValue("You cannot be your own helper.")
    # Mark it used only if nobody else did first: two people racing with one code get one win.
    claimed = session.execute(
        update(Invitation)
        .where(col(Invitation.id) == invitation.id, col(Invitation.used_at).is_(None))
        .values(used_at=now, used_by=worker_account_id)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidValue(BAD_CODE)
    kind, _, created_by = invitation.created_by.partition(":")
    if kind != "citizen" or not created_by:
        raise InvalidValue(BAD_CODE)
    actor = citizen_actor(created_by, invitation.citizen_id)
    earlier = active_delegation(session, invitation.citizen_id, worker_account_id, now)
    delegation = give_delegation(
        session, vault, actor, worker_account_id, invitation.scopes, invitation.delegation_ends_at
    )
    if earlier is not None:
        # A new invitation replaces what this helper could do before, so each person has
        # one entry in their list of helpers.
        revoke_delegation(session, vault, actor, earlier.id)
    return delegation


def revoke_invitation(session: Session, vault: Vault, actor: Actor, invitation_id: str) -> None:
    """The citizen cancels a code they have not used yet."""
    if actor.kind != "citizen":
        raise NotAllowed("Only the person themselves can cancel an invitation.")
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or invitation.citizen_id != actor.citizen_id:
        raise NotFound("We could not find that invitation.")
    if invitation.revoked_at is None and invitation.used_at is None:
        invitation.revoked_at = vault.clock()
        session.add(invitation)


def invitations_for_citizen(session: Session, citizen_id: str) -> list[Invitation]:
    """Every invitation a citizen has made, newest first."""
    return list(
        session.execute(
            select(Invitation)
            .where(col(Invitation.citizen_id) == citizen_id)
            .order_by(col(Invitation.created_at).desc())
        ).scalars()
    )


def open_invitations(session: Session, citizen_id: str, now: datetime) -> list[Invitation]:
    """The codes a citizen made that nobody has used yet and that still work."""
    return [
        i
        for i in invitations_for_citizen(session, citizen_id)
        if i.used_at is None and i.revoked_at is None and i.expires_at > now
    ]
