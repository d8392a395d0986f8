"""Emailing people that there is news for them, as often as they chose.

An email never says what happened: it holds no personal value, only that there is news and
where to sign in to read it. Someone who chose a daily summary gets one email saying how
many things happened. The outbox worker (``tellonce outbox run``) calls this after each pass.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from consent.citizen_notices import DueEmail, due_emails, mark_emailed
from vault.accounts import account_email
from vault.db import session_scope
from vault.errors import VaultError
from vault.models import Account, Citizen
from vault.services import Vault
from web.mail import send_email

SUBJECT = "News about your information on Tell Once"
Send = Callable[[str, str, str], None]


def news_email(base_url: str) -> str:
    """The body of the email sent each time something happens."""
    return (
        "There is news about your information on Tell Once: a decision, or an answer to "
        f"something you said was wrong.\n\nSign in to see it: {base_url.rstrip('/')}/\n"
    )


def summary_email(base_url: str, count: int) -> str:
    """The body of the daily summary: how many things happened, never what they were."""
    things = "1 thing" if count == 1 else f"{count} things"
    return (
        f"{things} happened today about your information on Tell Once: decisions, or answers "
        "to something you said was wrong.\n\n"
        f"Sign in to see {'it' if count == 1 else 'them'}: {base_url.rstrip('/')}/\n"
    )


def _address(session: Session, vault: Vault, citizen_id: str) -> str | None:
    """Where to email the person, or None if they were erased or have no usable account."""
    citizen = session.get(Citizen, citizen_id)
    if citizen is None or citizen.status == "erased":
        return None
    account = session.execute(
        select(Account)
        .where(col(Account.citizen_id) == citizen_id)
        .order_by(col(Account.created_at), col(Account.id))
        .limit(1)
    ).scalar_one_or_none()
    if account is None:
        return None
    try:
        return account_email(vault, account)
    except VaultError:  # its key is gone: there is no one left to write to
        return None


def send_due_citizen_emails(
    engine: Engine,
    vault: Vault,
    *,
    base_url: str,
    now: datetime | None = None,
    send: Send = send_email,
) -> int:
    """Email everyone with news due now; return how many emails went. Needs an app context."""
    when = now or vault.clock()
    with session_scope(engine) as session:
        due = due_emails(session, when)
        plans = [(item, _address(session, vault, item.citizen_id)) for item in due]
    sent = 0
    for item, address in plans:
        if address is not None:
            try:
                send(address, SUBJECT, _body(item, base_url))
            except (OSError, smtplib.SMTPException):
                # The mail server is down: leave the rest waiting for the next pass. The news
                # itself is on the person's home page already.
                break
            sent += 1
        # Marked after sending, so a crash in between sends twice rather than never.
        with session_scope(engine) as session:
            mark_emailed(
                session,
                item.citizen_id,
                [notice.id for notice in item.notices],
                when,
                summary=item.summary,
            )
    return sent


def _body(item: DueEmail, base_url: str) -> str:
    if item.summary:
        return summary_email(base_url, len(item.notices))
    return news_email(base_url)
