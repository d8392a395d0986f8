"""Sending email: by SMTP when SMTP_HOST is set, else one .eml file per message in MAIL_DIR.

Messages may hold one-time links, so nothing here logs a body, a subject or an address.
"""

from __future__ import annotations

import os
import smtplib
import tempfile
import uuid
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from pathlib import Path

from flask import current_app

DEFAULT_SENDER = "Tell Once <no-reply@tellonce.invalid>"


def _setting(name: str, default: str | None = None) -> str | None:
    """A mail setting from the app's config, else the environment (web/config.py has none)."""
    value = current_app.config.get(name)
    return str(value) if value not in (None, "") else os.environ.get(name, default)


def _message(to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = _setting("MAIL_FROM", DEFAULT_SENDER)
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain="tellonce.invalid")
    message.set_content(body)
    return message


def send_email(to: str, subject: str, body: str) -> None:
    """Send one plain-text email (or, in development and tests, write it to MAIL_DIR)."""
    message = _message(to, subject, body)
    host = _setting("SMTP_HOST")
    if host:
        _send_smtp(message, host)
        return
    folder = Path(current_app.config["MAIL_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    # A sortable, unique name; written to a temporary file then renamed, so a reader never
    # sees half a message.
    name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.eml"
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".part")
    with os.fdopen(handle, "wb") as out:
        out.write(message.as_bytes(policy=policy.SMTP))
    os.replace(temporary, folder / name)


def _send_smtp(message: EmailMessage, host: str) -> None:
    port = int(_setting("SMTP_PORT", "587") or "587")
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        if (_setting("SMTP_STARTTLS", "true") or "").lower() not in ("0", "false", "no"):
            smtp.starttls()
        username = _setting("SMTP_USERNAME")
        if username:
            smtp.login(username, _setting("SMTP_PASSWORD", "") or "")
        smtp.send_message(message)


def read_outbox(mail_dir: str | os.PathLike[str]) -> list[EmailMessage]:
    """Every message written to a mail folder, oldest first and newest last (for tests)."""
    folder = Path(mail_dir)
    if not folder.is_dir():
        return []
    parser = BytesParser(policy=policy.default)
    messages = []
    for path in sorted(folder.glob("*.eml")):
        parsed = parser.parsebytes(path.read_bytes())
        assert isinstance(parsed, EmailMessage)
        messages.append(parsed)
    return messages
