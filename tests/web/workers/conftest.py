"""Fixtures for the helper pages: Sam (a citizen), Jo (a support worker), and signed-in clients."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlmodel import col

from consent import actors
from consent.delegations import give_delegation
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.records import record_data_point, record_story_section
from vault.services import Vault
from vault.sessions import start_session
from vault.signin_models import WebSession

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@dataclass(frozen=True)
class Person:
    """A citizen and the account they sign in with."""

    citizen_id: str
    account_id: str

    @property
    def actor(self) -> actors.Actor:
        """The person acting for themselves."""
        return actors.citizen(self.account_id, self.citizen_id)


class Browser:
    """A test client signed in as one account, that fills in forms with their CSRF token."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def text(self, path: str) -> str:
        response = self.client.get(path, follow_redirects=True)
        return str(response.get_data(as_text=True))

    def post(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        form: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """POST to ``path`` with the CSRF token of the page ``form`` (default: ``path``)."""
        page = self.client.get(form or path).get_data(as_text=True)
        found = CSRF.search(page)
        assert found, f"no form on {form or path}"
        return self.client.post(path, data={"csrf_token": found.group(1), **(data or {})}, **kwargs)


@pytest.fixture
def sam(db: Any, vault: Vault) -> Person:
    """Sam Taylor, a citizen with a name, an ordinary story and a private one."""
    with db.tx() as session:
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, "sam@example.org", citizen_id=citizen.id)
        by = f"citizen:{account.id}"
        record_data_point(session, vault, citizen.id, "identity.name", "Sam Taylor", recorded_by=by)
        record_story_section(
            session, vault, citizen.id, "housing", "I need a flat.", recorded_by=by
        )
        return Person(citizen.id, account.id)


@pytest.fixture
def jo(db: Any, vault: Vault) -> str:
    """Jo, a support worker: an account with no vault of their own."""
    with db.tx() as session:
        return create_account(session, vault, "jo@example.org").id


@pytest.fixture
def delegate(db: Any, vault: Vault) -> Callable[..., str]:
    """Sam lets a worker help, with some scopes; returns the delegation id."""

    def give(person: Person, worker: str, *scopes: str, days: int = 90, minutes: int = 0) -> str:
        with db.tx() as session:
            found = give_delegation(
                session,
                vault,
                person.actor,
                worker,
                scopes or ("view",),
                vault.clock() + timedelta(days=days, minutes=minutes),
            )
            return found.id

    return give


@pytest.fixture
def signed_in(app: Any, db: Any, vault: Vault) -> Callable[..., Browser]:
    """A browser signed in as an account (optionally already acting for a citizen)."""

    def open_as(account_id: str, acting_for: str | None = None) -> Browser:
        with db.tx() as session:
            token = start_session(session, vault, account_id)
        if acting_for is not None:
            with db.tx() as session:
                session.execute(
                    update(WebSession)
                    .where(col(WebSession.account_id) == account_id)
                    .values(acting_for=acting_for)
                )
        client = app.test_client()
        client.set_cookie("tellonce", token)
        return Browser(client)

    return open_as
