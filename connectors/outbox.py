"""The outbox: notices to departments, written with their cause and delivered at least once.

The consent layer queues a ``DepartmentNotice`` on the session (``consent.notices``). When
that session commits, the listener below turns each notice into an ``OutboxMessage`` row in
the same transaction, so a notice exists exactly when its cause does. A rollback drops the
queued notices.

Nothing in a request path sends anything: only the worker (``tellonce outbox run``) calls
``deliver``, which claims due rows in one short transaction, POSTs each as a signed Security
Event Token (RFC 8417, delivered as RFC 8935 says) outside any transaction, and records the
results in another short transaction. A webhook that is down only delays its own messages:
each failure waits longer (10 s, 20 s, 40 s ... at most an hour) and nothing is ever given up.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import SessionTransaction
from sqlmodel import Session, col

from connectors.models import Department
from connectors.outbox_models import OutboxMessage
from connectors.set_tokens import SET_MEDIA_TYPE, make_set
from consent.notices import NOTICES_KEY, take_notices
from vault.db import session_scope
from vault.services import Vault

# A caller may put its clock (a callable returning an aware datetime) here on the session, so
# outbox rows carry the same time as the change that caused them. Without it, the listener
# uses the wall clock: it is only a queue time, never shown as the time of the event itself.
CLOCK_KEY = "tellonce_clock"
POST_TIMEOUT_SECONDS = 5
FIRST_BACKOFF = timedelta(seconds=10)
MAX_BACKOFF = timedelta(hours=1)
MAX_ERROR_CHARS = 300
MAX_ANSWER_BYTES = 4096
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")


@dataclass(frozen=True)
class WebhookAnswer:
    """What a webhook answered: the HTTP status and, for RFC 8935 errors, its ``err`` code."""

    status: int
    err: str | None = None


@dataclass(frozen=True)
class DeliveryReport:
    """How one pass went: messages accepted by their webhook, and messages that will retry."""

    sent: int
    failed: int


class WebhookUnreachable(Exception):
    """The webhook could not be reached; the message is plain words, without personal data."""


Post = Callable[[str, str], WebhookAnswer]


def _queue_time(session: Session) -> datetime:
    clock = session.info.get(CLOCK_KEY)
    return clock() if callable(clock) else datetime.now(UTC)


@event.listens_for(Session, "before_commit")
def _write_outbox_rows(session: Session) -> None:
    """Turn the notices queued on this session into outbox rows, in the committing transaction."""
    if not session.info.get(NOTICES_KEY):
        return
    now = _queue_time(session)
    for notice in take_notices(session):
        department = session.get(Department, notice.department_id)
        # No webhook, nothing to send: the department reads the same facts through the API.
        if department is None or not department.webhook_url:
            continue
        session.add(
            OutboxMessage(
                department_id=notice.department_id,
                event=notice.event,
                citizen_id=notice.citizen_id,
                details=dict(notice.details),
                created_at=now,
                next_attempt_at=now,
            )
        )


@event.listens_for(Session, "after_soft_rollback")
def _drop_queued_notices(session: Session, previous_transaction: SessionTransaction) -> None:
    """A rolled-back unit of work tells nobody anything.

    SQLAlchemy only reports the rollback of a transaction that began; notices are queued
    after the change they report, which begins one.
    """
    # A savepoint rolling back leaves the outer transaction (and what it queued) alive; we use
    # no savepoints, so keeping its notices errs towards telling, never towards losing one.
    if previous_transaction.nested:
        return
    take_notices(session)


def _due(now: datetime) -> Any:
    return (
        col(OutboxMessage.delivered_at).is_(None)
        & (col(OutboxMessage.next_attempt_at) <= now)
        & or_(col(OutboxMessage.claimed_until).is_(None), col(OutboxMessage.claimed_until) < now)
    )


def claim_due(
    session: Session, now: datetime, *, limit: int = 20, lease: timedelta = timedelta(seconds=60)
) -> list[OutboxMessage]:
    """Claim up to ``limit`` due messages for ``lease``: no other worker sends them meanwhile."""
    candidates = select(col(OutboxMessage.id)).where(_due(now))
    candidates = candidates.order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
    candidates = candidates.limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        # Another worker's claimed rows are skipped rather than waited for.
        candidates = candidates.with_for_update(skip_locked=True)
    ids = list(session.execute(candidates).scalars())
    claimed: list[str] = []
    for message_id in ids:
        # Conditional: if another worker claimed it since we looked, this changes nothing.
        result = session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == message_id, _due(now))
            .values(claimed_until=now + lease)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(message_id)
    if not claimed:
        return []
    rows = session.execute(
        select(OutboxMessage)
        .where(col(OutboxMessage.id).in_(claimed))
        .order_by(col(OutboxMessage.next_attempt_at), col(OutboxMessage.id))
        .execution_options(populate_existing=True)
    )
    return list(rows.scalars())


def backoff(attempts: int) -> timedelta:
    """How long to wait after ``attempts`` failures: 10 s, doubling each time, at most 1 hour."""
    if attempts <= 0:
        return timedelta(0)
    # Past 2**9 the cap is reached anyway; stop doubling before the numbers grow huge.
    return min(FIRST_BACKOFF * (2 ** min(attempts - 1, 10)), MAX_BACKOFF)


def post_set(url: str, token: str) -> WebhookAnswer:
    """POST a SET to a webhook as RFC 8935 says; WebhookUnreachable if it cannot be reached."""
    request = urllib.request.Request(  # noqa: S310 (the URL is checked at registration)
        url,
        data=token.encode("ascii"),
        method="POST",
        headers={"Content-Type": SET_MEDIA_TYPE, "Accept": "application/json"},
    )
    try:
        with _no_redirects().open(request, timeout=POST_TIMEOUT_SECONDS) as response:
            return WebhookAnswer(response.status)
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the open response
            return WebhookAnswer(exc.code, _error_code(exc))
    except urllib.error.URLError as exc:
        raise WebhookUnreachable(_unreachable(exc.reason)) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise WebhookUnreachable(_unreachable(exc)) from None


def _no_redirects() -> urllib.request.OpenerDirector:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        # A redirect would turn the POST into a GET, or lead somewhere never registered.
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


def _error_code(exc: urllib.error.HTTPError) -> str | None:
    """The RFC 8935 ``err`` code of an error answer, if it is one of the short codes."""
    try:
        body = json.loads(exc.read(MAX_ANSWER_BYTES))
    except (ValueError, OSError, http.client.HTTPException):
        return None
    code = body.get("err") if isinstance(body, dict) else None
    # Only a short code is kept: a free-text description could hold anything.
    return code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else None


def _unreachable(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return f"The webhook did not answer within {POST_TIMEOUT_SECONDS} seconds."
    if isinstance(reason, ConnectionRefusedError):
        return "The webhook refused the connection."
    if isinstance(reason, socket.gaierror):
        return "The webhook's host name could not be found."
    if isinstance(reason, ConnectionError):
        return "The connection to the webhook was broken."
    return "The webhook could not be reached."


def _failure(answer: WebhookAnswer) -> str | None:
    if 200 <= answer.status < 300:
        return None
    code = f" ({answer.err})" if answer.err else ""
    return f"The webhook answered with HTTP status {answer.status}{code}."


def deliver(
    engine: Engine,
    vault: Vault,
    issuer: str,
    *,
    now: datetime | None = None,
    post: Post = post_set,
    limit: int = 20,
    lease: timedelta = timedelta(seconds=60),
) -> DeliveryReport:
    """Send the due messages once each; record every acceptance and every failure."""
    when = now or vault.clock()
    started = time.monotonic()
    with session_scope(engine) as session:
        batch = claim_due(session, when, limit=limit, lease=lease)
        webhooks = {
            message.department_id: _webhook(session, message.department_id) for message in batch
        }
    results: dict[str, str | None] = {}  # message id -> None when accepted, else the error
    for message in batch:
        # Stop before the lease could run out mid-send: another worker may claim after it.
        if time.monotonic() - started > lease.total_seconds() / 2:
            break
        results[message.id] = _send(
            vault, issuer, message, webhooks[message.department_id], post, when
        )
    with session_scope(engine) as session:
        for message in batch:
            if message.id in results:
                _record(session, message, results[message.id], when)
            else:
                _release(session, message.id)
    failed = sum(1 for error in results.values() if error is not None)
    return DeliveryReport(sent=len(results) - failed, failed=failed)


def _webhook(session: Session, department_id: str) -> str | None:
    department = session.get(Department, department_id)
    return department.webhook_url if department is not None else None


def _send(
    vault: Vault, issuer: str, message: OutboxMessage, url: str | None, post: Post, now: datetime
) -> str | None:
    """POST one message; None when accepted, else a plain reason (no personal data)."""
    if not url:
        return "The department has no webhook address now."
    token = make_set(vault, issuer, message, now=now)
    try:
        return _failure(post(url, token))
    except WebhookUnreachable as exc:
        return str(exc)


def _record(session: Session, message: OutboxMessage, error: str | None, now: datetime) -> None:
    if error is None:
        session.execute(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == message.id)
            .values(delivered_at=now, claimed_until=None, last_error=None)
            .execution_options(synchronize_session=False)
        )
        return
    attempts = message.attempts + 1
    session.execute(
        update(OutboxMessage)
        # Another worker may have delivered it after our lease ran out: keep that.
        .where(col(OutboxMessage.id) == message.id, col(OutboxMessage.delivered_at).is_(None))
        .values(
            attempts=col(OutboxMessage.attempts) + 1,
            last_error=error[:MAX_ERROR_CHARS],
            next_attempt_at=now + backoff(attempts),
            claimed_until=None,
        )
        .execution_options(synchronize_session=False)
    )


def _release(session: Session, message_id: str) -> None:
    """Give back a claimed message that was not tried this pass (the next pass takes it)."""
    session.execute(
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id)
        .values(claimed_until=None)
        .execution_options(synchronize_session=False)
    )


def outbox_status(session: Session, now: datetime) -> dict[str, Any]:
    """Counts for the operator, the oldest waiting message, and each failing department's error."""
    pending = col(OutboxMessage.delivered_at).is_(None)
    counts = session.execute(
        select(
            func.count().filter(pending),
            func.count().filter(col(OutboxMessage.delivered_at).is_not(None)),
            func.count().filter(pending & (col(OutboxMessage.attempts) > 0)),
            func.min(col(OutboxMessage.created_at)).filter(pending),
        )
    ).one()
    oldest: datetime | None = counts[3]
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)  # SQLite's aggregate skips the column's type
    failing_rows = session.execute(
        select(OutboxMessage, col(Department.name))
        .join(Department, col(Department.id) == col(OutboxMessage.department_id))
        .where(pending, col(OutboxMessage.attempts) > 0)
        .order_by(col(OutboxMessage.department_id), col(OutboxMessage.next_attempt_at).desc())
    ).all()
    departments: dict[str, dict[str, Any]] = {}
    for message, name in failing_rows:
        entry = departments.setdefault(
            message.department_id,
            {
                "department_id": message.department_id,
                "name": name,
                "failing": 0,
                # Rows come latest retry first: near enough the latest failure's error.
                "last_error": message.last_error,
                "next_attempt_at": message.next_attempt_at,
            },
        )
        entry["failing"] += 1
    return {
        "pending": counts[0],
        "delivered": counts[1],
        "failing": counts[2],
        "oldest_pending_seconds": (
            max(0, int((now - oldest).total_seconds())) if oldest is not None else None
        ),
        "departments": list(departments.values()),
    }
