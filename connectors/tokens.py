"""Authorization codes and tokens: issue, claim once, look up, revoke.

Codes and tokens are random strings handed to a department once; only their SHA-256 hashes
are kept. Whether a grant's tokens still work follows the grant itself: a stopped or ended
grant makes every token and refresh token issued for it useless at once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlmodel import Session, col

from connectors.models import AuthorizationCode, OAuthToken
from consent.grants import grant_status
from consent.models import Grant

CODE_LIFETIME = timedelta(seconds=60)
ACCESS_TOKEN_LIFETIME = timedelta(minutes=5)


def secret_hash(value: str) -> str:
    """The SHA-256 hex digest under which a code, token or request URI is stored."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A fresh random code or token: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class CodeClaim:
    """The outcome of presenting a code: the row if this was its first use, else why not."""

    code: AuthorizationCode | None
    reused: bool = False


def save_code(
    session: Session,
    *,
    code: str,
    department_id: str,
    citizen_id: str,
    grant_id: str,
    redirect_uri: str,
    code_challenge: str,
    code_challenge_method: str,
    dpop_jkt: str | None,
    authorization_details: list[dict[str, Any]],
    now: datetime,
) -> AuthorizationCode:
    """Store a freshly issued authorization code (its hash) with everything it is bound to."""
    row = AuthorizationCode(
        code_hash=secret_hash(code),
        department_id=department_id,
        citizen_id=citizen_id,
        grant_id=grant_id,
        redirect_uri=redirect_uri,
        code_challenge=code_challenge,
        code_challenge_method=code_challenge_method,
        dpop_jkt=dpop_jkt,
        authorization_details=authorization_details,
        created_at=now,
        expires_at=now + CODE_LIFETIME,
    )
    session.add(row)
    session.flush()
    return row


def claim_code(session: Session, code: str, department_id: str, now: datetime) -> CodeClaim:
    """Use a code once. A second use revokes every token the first use gave (RFC 6749 §4.1.2).

    The claim is one conditional UPDATE, so of many racing redemptions exactly one wins.
    """
    digest = secret_hash(code)
    claimed = session.execute(
        update(AuthorizationCode)
        .where(
            col(AuthorizationCode.code_hash) == digest,
            col(AuthorizationCode.department_id) == department_id,
            col(AuthorizationCode.used_at).is_(None),
            col(AuthorizationCode.expires_at) > now,
        )
        .values(used_at=now)
    )
    row = session.execute(
        select(AuthorizationCode).where(
            col(AuthorizationCode.code_hash) == digest,
            col(AuthorizationCode.department_id) == department_id,
        )
    ).scalar_one_or_none()
    if getattr(claimed, "rowcount", 0) == 1 and row is not None:
        return CodeClaim(row)
    if row is not None and row.used_at is not None:
        revoke_tokens_of_code(session, row.id, now)
        return CodeClaim(None, reused=True)
    return CodeClaim(None)


def revoke_tokens_of_code(session: Session, code_id: str, now: datetime) -> int:
    """Revoke every token issued from one authorization code; return how many."""
    result = session.execute(
        update(OAuthToken)
        .where(col(OAuthToken.code_id) == code_id, col(OAuthToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def save_token(
    session: Session,
    *,
    access_token: str,
    refresh_token: str | None,
    department_id: str,
    grant_id: str | None,
    code_id: str | None,
    scope: str,
    jkt: str,
    now: datetime,
) -> OAuthToken:
    """Store a DPoP-bound access token (and its refresh token, if any) by their hashes."""
    row = OAuthToken(
        access_hash=secret_hash(access_token),
        refresh_hash=secret_hash(refresh_token) if refresh_token else None,
        department_id=department_id,
        grant_id=grant_id,
        code_id=code_id,
        scope=scope,
        jkt=jkt,
        issued_at=now,
        expires_at=now + ACCESS_TOKEN_LIFETIME,
    )
    session.add(row)
    session.flush()
    return row


# Built once: find_token runs on every API call, and building a select each time cost more
# than running it (see connectors/replay.py for the same pattern).
_TOKEN_BY_HASH = {
    ("access_token",): select(OAuthToken).where(col(OAuthToken.access_hash) == bindparam("h")),
    ("refresh_token",): select(OAuthToken).where(col(OAuthToken.refresh_hash) == bindparam("h")),
    ("access_token", "refresh_token"): select(OAuthToken).where(
        or_(
            col(OAuthToken.access_hash) == bindparam("h"),
            col(OAuthToken.refresh_hash) == bindparam("h"),
        )
    ),
}


def find_token(
    session: Session,
    value: str,
    *,
    kinds: Sequence[str] = ("access_token", "refresh_token"),
) -> tuple[OAuthToken, str] | None:
    """The token row a presented value belongs to, and which kind of token it was."""
    wanted = tuple(kind for kind in ("access_token", "refresh_token") if kind in kinds)
    if not wanted:
        return None
    digest = secret_hash(value)
    row = session.execute(_TOKEN_BY_HASH[wanted], {"h": digest}).scalar_one_or_none()
    if row is None:
        return None
    return row, ("access_token" if row.access_hash == digest else "refresh_token")


def grant_alive(session: Session, grant_id: str | None, now: datetime) -> bool:
    """True when tokens for this grant may still be used (no grant: department-wide token)."""
    if grant_id is None:
        return True
    grant = session.get(Grant, grant_id)
    return grant is not None and grant_status(grant, now) in ("active", "not_started")


def token_problem(
    session: Session, row: OAuthToken, kind: str, now: datetime, *, check_grant: bool = True
) -> str | None:
    """Why a token cannot be used now, in plain words; None when it can.

    The data API passes ``check_grant=False``: it lets the consent layer refuse a stopped
    grant itself, so the refusal is recorded where the person can see it.
    """
    if row.revoked_at is not None:
        return "This token has been revoked."
    if kind == "access_token" and row.expires_at <= now:
        return "This token has expired."
    if check_grant and not grant_alive(session, row.grant_id, now):
        return "The permission this token was for has ended or been stopped."
    return None


def revoke_authorization(session: Session, row: OAuthToken, now: datetime) -> int:
    """Revoke a token and every token issued from the same authorization (RFC 7009 §2.1)."""
    statement = update(OAuthToken).where(col(OAuthToken.revoked_at).is_(None))
    if row.code_id is not None:
        statement = statement.where(
            col(OAuthToken.code_id) == row.code_id,
            col(OAuthToken.department_id) == row.department_id,
        )
    else:
        statement = statement.where(col(OAuthToken.id) == row.id)
    result = session.execute(statement.values(revoked_at=now))
    return int(getattr(result, "rowcount", 0) or 0)
