"""Email: files in MAIL_DIR in development, SMTP when configured; tokens never logged."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from web.auth import RedactLinkTokens
from web.mail import read_outbox, send_email


def test_each_email_is_one_file_read_back_newest_last(app: Any) -> None:
    with app.app_context():
        send_email("a@example.org", "First", "one")
        send_email("b@example.org", "Second", "two")
    messages = read_outbox(app.config["MAIL_DIR"])
    assert [(m["To"], m["Subject"], m.get_content().strip()) for m in messages] == [
        ("a@example.org", "First", "one"),
        ("b@example.org", "Second", "two"),
    ]


def test_an_empty_outbox(tmp_path: Any) -> None:
    assert read_outbox(tmp_path / "nothing-here") == []


def test_with_smtp_host_set_mail_goes_by_smtp(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[Any] = []

    class FakeSMTP:
        def __init__(self, host: str, port: int, timeout: int) -> None:
            sent.append(("connect", host, port))

        def __enter__(self) -> FakeSMTP:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def starttls(self) -> None:
            sent.append(("starttls",))

        def send_message(self, message: Any) -> None:
            sent.append(("send", message["To"]))

    monkeypatch.setattr("web.mail.smtplib.SMTP", FakeSMTP)
    app.config.update(SMTP_HOST="smtp.example.org", SMTP_PORT=2525)
    with app.app_context():
        send_email("sam@example.org", "Hello", "Hi")
    assert sent == [
        ("connect", "smtp.example.org", 2525),
        ("starttls",),
        ("send", "sam@example.org"),
    ]
    assert read_outbox(app.config["MAIL_DIR"]) == []


def test_link_tokens_are_hidden_in_request_logs() -> None:
    record = logging.LogRecord(
        "werkzeug",
        logging.INFO,
        __file__,
        1,
        '%s - - "%s" %s -',
        ("127.0.0.1", "GET /sign-in/link?token=eyJzZWNyZXQ.abc.def HTTP/1.1", "200"),
        None,
    )
    assert RedactLinkTokens().filter(record)
    assert "eyJzZWNyZXQ" not in record.getMessage()
    assert "GET /sign-in/link?token=[hidden] HTTP/1.1" in record.getMessage()


def test_invitation_codes_and_request_uris_are_hidden_in_request_logs() -> None:
    line = (
        "GET /help/accept?code=HELPCODE123 HTTP/1.1 "
        "GET /oauth/authorize?client_id=x&request_uri=urn:ietf:params:oauth:request_uri:RURI9"
    )
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, "%s", (line,), None)
    assert RedactLinkTokens().filter(record)
    message = record.getMessage()
    assert "HELPCODE123" not in message and "RURI9" not in message
    assert "code=[hidden]" in message and "request_uri=[hidden]" in message
    assert "client_id=x" in message
