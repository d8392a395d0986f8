"""The department API's door: a DPoP-bound access token and a fresh proof, or no entry.

``Authorization: DPoP <token>`` plus a ``DPoP`` proof for this method and URL whose key is
the one the token was bound to and whose ``ath`` is the token's hash (RFC 9449 §7). A bearer
token, a token without its proof, or another key's proof is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlmodel import Session, col

from connectors import dpop
from connectors.departments import active_department
from connectors.errors import InvalidDPoPProof, InvalidToken
from connectors.models import Department, OAuthToken
from connectors.tokens import find_token, token_problem

MAX_TOKEN = 200


@dataclass(frozen=True)
class ApiCaller:
    """Who is calling the API and under what: the department, its grant (if any), its scope."""

    department_id: str
    grant_id: str | None
    scope: str
    token_id: str
    jkt: str


def authenticate_call(
    session: Session,
    *,
    authorization: str | None,
    dpop_values: Sequence[str],
    method: str,
    url: str,
    now: datetime,
    check_grant: bool = True,
) -> ApiCaller:
    """Check the token and its proof; raise InvalidToken or InvalidDPoPProof (status 401).

    A token whose grant has ended or been stopped is dead (the next call fails), unless
    ``check_grant`` is False: the data API lets the consent layer refuse it, so the refusal
    is recorded where the person can see it.
    """
    caller, proof = check_call(
        session,
        authorization=authorization,
        dpop_values=dpop_values,
        method=method,
        url=url,
        now=now,
        check_grant=check_grant,
    )
    _spend(session, proof)
    return caller


def _spend(session: Session, proof: dpop.DPoPProof) -> None:
    try:
        dpop.spend_proof(session, proof)
    except InvalidDPoPProof as error:
        raise InvalidDPoPProof(error.message, status=401) from error  # a replay: 401 too


def check_call(
    session: Session,
    *,
    authorization: str | None,
    dpop_values: Sequence[str],
    method: str,
    url: str,
    now: datetime,
    check_grant: bool = True,
) -> tuple[ApiCaller, dpop.DPoPProof]:
    """Everything ``authenticate_call`` checks but the proof's one use: it only reads.

    A caller checked this way must be confirmed with ``confirm_call`` in the transaction that
    acts for it: that spends the proof and checks again that the token and department are
    still live (either may have been switched off in between).
    """
    if not authorization:
        raise InvalidToken("Send an access token: Authorization: DPoP <token>.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer":
        raise InvalidToken(
            "Bearer tokens are not accepted. Send the token as DPoP with a proof.",
            error="invalid_request",
        )
    token = token.strip()
    if scheme.lower() != "dpop" or not token or len(token) > MAX_TOKEN:
        raise InvalidToken("Send an access token: Authorization: DPoP <token>.")
    try:
        proof = dpop.verify_proof(dpop_values, method=method, url=url, now=now, access_token=token)
    except InvalidDPoPProof as error:
        # At a resource a bad proof means "not authenticated" (RFC 9449 §7.1): 401.
        raise InvalidDPoPProof(error.message, status=401) from error
    found = find_token(session, token, kinds=("access_token",))
    if found is None:
        raise InvalidToken("This access token is not known.")
    row, kind = found
    problem = token_problem(session, row, kind, now, check_grant=check_grant)
    if problem is not None:
        raise InvalidToken(problem)
    if proof.jkt != row.jkt:
        raise InvalidToken("The DPoP proof was made with another key than this token's.")
    if active_department(session, row.department_id) is None:
        raise InvalidToken("This department's access has been switched off.")
    return ApiCaller(row.department_id, row.grant_id, row.scope, row.id, row.jkt), proof


# Built once (it runs on every API call); the same checks as token_problem and
# active_department, made again inside the writing transaction.
_LIVE_TOKEN = (
    select(col(OAuthToken.id))
    .join(Department, col(Department.id) == col(OAuthToken.department_id))
    .where(
        col(OAuthToken.id) == bindparam("token_id"),
        col(OAuthToken.revoked_at).is_(None),
        col(OAuthToken.expires_at) > bindparam("now"),
        col(Department.disabled_at).is_(None),
    )
)


def confirm_call(session: Session, caller: ApiCaller, proof: dpop.DPoPProof, now: datetime) -> None:
    """Spend the proof and check the token and department are still live, in one transaction."""
    _spend(session, proof)
    live = session.execute(_LIVE_TOKEN, {"token_id": caller.token_id, "now": now}).first()
    if live is None:
        raise InvalidToken("This token has been revoked or has expired.")
