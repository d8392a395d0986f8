"""Pushed authorization requests (RFC 9126): store, open once, answer once.

A department pushes its whole request first, authenticated; the browser then carries only
an opaque ``request_uri``. It can be opened once within 60 seconds. Opening it starts a
consent that the person has ``ANSWER_WITHIN`` to answer, because signing in takes time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from connectors.errors import ConnectorError
from connectors.models import PushedRequest
from connectors.tokens import new_secret, secret_hash

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
REQUEST_URI_LIFETIME = timedelta(seconds=60)
ANSWER_WITHIN = timedelta(minutes=15)


class RequestExpired(ConnectorError):
    """The request URI is unknown, used, expired, or belongs to another department."""

    error = "invalid_request_uri"


def push_request(
    session: Session, department_id: str, params: dict[str, Any], now: datetime
) -> tuple[str, PushedRequest]:
    """Store a validated request; return the ``request_uri`` to give the department once."""
    token = new_secret()
    uri = REQUEST_URI_PREFIX + token
    row = PushedRequest(
        uri_hash=secret_hash(uri),
        department_id=department_id,
        params=params,
        created_at=now,
        expires_at=now + REQUEST_URI_LIFETIME,
    )
    session.add(row)
    session.flush()
    return uri, row


def open_request(
    session: Session, request_uri: str, client_id: str, now: datetime
) -> PushedRequest:
    """Open a request URI for the consent page: once only, within its lifetime."""
    message = (
        "This request has expired or was already used. Go back to the service and start again."
    )
    if not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > 200:
        raise RequestExpired(message)
    digest = secret_hash(request_uri)
    opened = session.execute(
        update(PushedRequest)
        .where(
            col(PushedRequest.uri_hash) == digest,
            col(PushedRequest.department_id) == client_id,
            col(PushedRequest.opened_at).is_(None),
            col(PushedRequest.expires_at) > now,
        )
        .values(opened_at=now, answer_by=now + ANSWER_WITHIN)
    )
    if getattr(opened, "rowcount", 0) != 1:
        raise RequestExpired(message)
    row = session.execute(
        select(PushedRequest).where(col(PushedRequest.uri_hash) == digest)
    ).scalar_one()
    return row


def pending_request(session: Session, request_id: str, now: datetime) -> PushedRequest:
    """An opened request still waiting for the person's answer."""
    row = session.get(PushedRequest, request_id)
    if (
        row is None
        or row.opened_at is None
        or row.answered_at is not None
        or row.answer_by is None
        or row.answer_by <= now
    ):
        raise RequestExpired(
            "This request has expired or was already answered. "
            "Go back to the service and start again."
        )
    return row


def mark_answered(session: Session, request_id: str, now: datetime) -> None:
    """Record that the person answered, so the same request cannot be answered twice."""
    answered = session.execute(
        update(PushedRequest)
        .where(col(PushedRequest.id) == request_id, col(PushedRequest.answered_at).is_(None))
        .values(answered_at=now)
    )
    if getattr(answered, "rowcount", 0) != 1:
        raise RequestExpired("This request was already answered.")
