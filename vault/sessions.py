"""Server-side web sessions: a fresh random token at sign-in, idle and absolute timeouts,
and sign-out that ends the session on the server, not just in the browser."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col

from vault.models import Account
from vault.services import Vault
from vault.signin_models import WebSession

IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, vault: Vault, account_id: str) -> str:
    """Start a new session for an account; return the token to put in the cookie."""
    token = secrets.token_urlsafe(32)
    now = vault.clock()
    session.add(
        WebSession(token_hash=_hash(token), account_id=account_id, created_at=now, last_seen_at=now)
    )
    return token


def resume_session(session: Session, vault: Vault, token: str | None) -> WebSession | None:
    """The live session for a cookie token, touched; None if missing, ended or timed out."""
    if not token or len(token) > 200:
        return None
    found = session.get(WebSession, _hash(token))
    if found is None or found.ended_at is not None:
        return None
    now = vault.clock()
    if now - found.last_seen_at > IDLE_TIMEOUT or now - found.created_at > ABSOLUTE_TIMEOUT:
        found.ended_at = now
        session.add(found)
        return None
    # Touch at most once a minute, so reading pages does not write on every request.
    if now - found.last_seen_at > timedelta(minutes=1):
        found.last_seen_at = now
        session.add(found)
    return found


def end_session(session: Session, vault: Vault, token: str | None) -> None:
    """Sign out: end the session on the server."""
    if token:
        found = session.get(WebSession, _hash(token))
        if found is not None and found.ended_at is None:
            found.ended_at = vault.clock()
            session.add(found)


def end_all_sessions(session: Session, vault: Vault, account_id: str) -> None:
    """End every session of an account (after deleting it, or on request)."""
    session.execute(
        update(WebSession)
        .where(col(WebSession.account_id) == account_id, col(WebSession.ended_at).is_(None))
        .values(ended_at=vault.clock())
    )


def session_account(session: Session, web_session: WebSession) -> Account | None:
    """The account a live session belongs to."""
    return session.get(Account, web_session.account_id)
