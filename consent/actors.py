"""Who is acting: a citizen for themselves, or a support worker for a citizen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlmodel import Session, col

from consent.errors import NotAllowed
from consent.models import Delegation

SCOPES = ("view", "answer_requests", "manage_story", "challenge")
SCOPE_LABELS = {
    "view": "See your information",
    "answer_requests": "Say yes or no to requests for you",
    "manage_story": "Help write your story",
    "challenge": "Say something is wrong for you",
}


@dataclass(frozen=True)
class Actor:
    """Someone doing something to a citizen's vault: the citizen, or a worker for them."""

    kind: Literal["citizen", "worker"]
    account_id: str
    citizen_id: str

    @property
    def label(self) -> str:
        """How the actor is written in records: ``citizen:<account>`` or ``worker:<account>``."""
        return f"{self.kind}:{self.account_id}"


def citizen(account_id: str, citizen_id: str) -> Actor:
    """The citizen acting for themselves."""
    return Actor("citizen", account_id, citizen_id)


def worker(account_id: str, citizen_id: str) -> Actor:
    """A support worker acting for a citizen."""
    return Actor("worker", account_id, citizen_id)


def active_delegation(
    session: Session, citizen_id: str, worker_account_id: str, now: datetime
) -> Delegation | None:
    """The worker's current, unrevoked, unexpired delegation from this citizen, if any."""
    rows = session.execute(
        select(Delegation).where(
            col(Delegation.citizen_id) == citizen_id,
            col(Delegation.worker_account_id) == worker_account_id,
            col(Delegation.revoked_at).is_(None),
        )
    ).scalars()
    live = [d for d in rows if d.ends_at > now]
    return max(live, key=lambda d: d.created_at) if live else None


def authorise(session: Session, actor: Actor, scope: str, now: datetime) -> str | None:
    """Check the actor may act with this scope; return the delegation id a worker used.

    A citizen may do anything to their own vault. A worker needs a live delegation from that
    citizen that includes the scope.
    """
    if scope not in SCOPES:
        raise NotAllowed("That is not something a helper can be allowed to do.")
    if actor.kind == "citizen":
        return None
    delegation = active_delegation(session, actor.citizen_id, actor.account_id, now)
    if delegation is None or scope not in delegation.scopes:
        raise NotAllowed("You are not allowed to do this for this person.")
    return delegation.id
