"""``tellonce outbox``: send notifications to departments and people, and see how it goes."""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

import click
from flask import current_app

from connectors.outbox import DeliveryReport, deliver, outbox_status
from vault.db import session_scope
from vault.errors import VaultError
from web.notify_mail import send_due_citizen_emails
from web.state import Services


def _plainly(function: Callable[..., Any]) -> Callable[..., Any]:
    """``web.cli._fail_plainly``, looked up when the command runs (``web.cli`` imports us)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from web.cli import _fail_plainly

        return _fail_plainly(function)(*args, **kwargs)

    return wrapper


def _services() -> AbstractContextManager[Services]:
    """``web.cli._services`` (the app's engine and vault), looked up when the command runs."""
    from web.cli import _services as services

    return services()


@click.group("outbox")
def outbox() -> None:
    """Notifications: signed events to departments' webhooks, and emails to people."""


@contextmanager
def _stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """Let SIGTERM end the loop after the current pass, as Ctrl+C does."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_pass(state: Services) -> str:
    """Deliver due messages, then due emails; say what happened in one line."""
    base_url = str(current_app.config["BASE_URL"]).rstrip("/")
    report = deliver(state.engine, state.vault, base_url)
    emailed = send_due_citizen_emails(state.engine, state.vault, base_url=base_url)
    return _summary(report, emailed)


def _summary(report: DeliveryReport, emailed: int) -> str:
    if report.failed:
        line = f"Sent {report.sent}, {report.failed} failed: will retry."
    elif report.sent:
        line = f"Sent {report.sent}."
    else:
        line = "Nothing to send." if not emailed else ""
    if emailed:
        people = "1 person" if emailed == 1 else f"{emailed} people"
        line = f"{line} Emailed {people}.".strip()
    return line


@outbox.command("run")
@click.option("--once", is_flag=True, help="Do one pass, then stop.")
@click.option(
    "--interval",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds to wait between passes.",
)
@_plainly
def outbox_run(once: bool, interval: float) -> None:
    """Send due notifications until stopped (Ctrl+C or SIGTERM), retrying failures."""
    stop = threading.Event()
    with _services() as state, _stop_on_sigterm(stop):
        try:
            while True:
                try:
                    line = _one_pass(state)
                except VaultError as exc:
                    if once:
                        raise
                    # A worker left running should outlive a database restart.
                    line = f"{exc.message} Trying again in {interval:g} seconds."
                if once:
                    click.echo(line)
                    return
                if line != "Nothing to send.":
                    click.echo(line)
                if stop.wait(interval):
                    break
        except KeyboardInterrupt:
            pass
    click.echo("Stopped sending notifications.")


def _age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} seconds"
    if seconds < 7200:
        return f"{seconds // 60} minutes"
    return f"{seconds // 3600} hours"


def _at(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


@outbox.command("status")
@_plainly
def outbox_status_command() -> None:
    """Show how many notifications wait, went, or keep failing, and each failing webhook's error."""
    with _services() as state, session_scope(state.engine) as session:
        status = outbox_status(session, state.vault.clock())
    oldest = status["oldest_pending_seconds"]
    waiting = f"Waiting: {status['pending']}"
    if oldest is not None:
        waiting += f" (the oldest for {_age(oldest)})"
    click.echo(f"{waiting}. Delivered: {status['delivered']}. Failing: {status['failing']}.")
    for department in status["departments"]:
        click.echo(
            f"{department['name']} ({department['department_id']}): {department['failing']} "
            f"failing, next try {_at(department['next_attempt_at'])}. "
            f"Last error: {department['last_error']}"
        )
