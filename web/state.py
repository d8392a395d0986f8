"""Where the app keeps its engine and vault, and the per-request unit of work."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from flask import Flask, current_app
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connectors.outbox import CLOCK_KEY
from vault.db import read_scope, session_scope
from vault.services import Vault


@dataclass
class Services:
    """The long-lived objects one app instance shares between requests."""

    engine: Engine
    vault: Vault


def services(app: Flask | None = None) -> Services:
    """The services of the given (or current) app."""
    found = (app or current_app).extensions["tellonce"]
    assert isinstance(found, Services)
    return found


@contextmanager
def unit_of_work() -> Iterator[tuple[Session, Vault]]:
    """A transaction for one request: commit at the end, roll back on any error."""
    state = services()
    with session_scope(state.engine) as session:
        # Outbox rows written at commit take their time from the app's (injectable) clock.
        session.info[CLOCK_KEY] = state.vault.clock
        yield session, state.vault


@contextmanager
def read_only_unit_of_work() -> Iterator[tuple[Session, Vault]]:
    """A read-only snapshot for the reading part of a request: no writer lock, no commit."""
    state = services()
    with read_scope(state.engine) as session:
        session.info[CLOCK_KEY] = state.vault.clock
        yield session, state.vault
