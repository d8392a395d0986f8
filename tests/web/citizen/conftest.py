"""Fixtures for the citizen pages: people in the vault, signed in through a real session."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from consent.actors import citizen as citizen_actor
from consent.delegations import give_delegation
from consent.grants import GrantRequest, give_grant
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.records import record_data_point, record_story_section
from vault.services import Vault
from vault.sessions import start_session
from vault.signin_models import WebSession

# A value that must never appear in a URL, a redirect, or a link.
CANARY = "Zebracanary Quillfeather"
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@dataclass
class Person:
    """A citizen with an account, and the ids the tests need."""

    citizen_id: str
    account_id: str

    @property
    def actor(self) -> Any:
        return citizen_actor(self.account_id, self.citizen_id)


def csrf_of(html: str) -> str:
    """The CSRF token of the (first) form on a page."""
    found = CSRF.search(html)
    assert found, "the page has no form"
    return found.group(1)


@pytest.fixture
def person(db: Any, vault: Vault) -> Person:
    """Sam: a citizen with a name (the canary), an address and an income."""
    with db.tx() as session:
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, "sam@example.org", citizen_id=citizen.id)
        record_data_point(
            session, vault, citizen.id, "identity.name", CANARY, recorded_by="citizen:x"
        )
        record_data_point(
            session,
            vault,
            citizen.id,
            "contact.address",
            {"lines": ["10 High Street"], "town": "Leeds", "postcode": "LS1 1AA"},
            recorded_by="citizen:x",
        )
        record_data_point(
            session, vault, citizen.id, "money.income_monthly", 125_050, recorded_by="citizen:x"
        )
        return Person(citizen.id, account.id)


def sign_in(
    client: Any, db: Any, vault: Vault, account_id: str, acting_for: str | None = None
) -> None:
    """Start a real server-side session and give its cookie to the test client."""
    with db.tx() as session:
        token = start_session(session, vault, account_id)
        if acting_for is not None:
            session.flush()
            found = session.exec(
                select(WebSession).where(WebSession.account_id == account_id)
            ).one()
            found.acting_for = acting_for
            session.add(found)
    client.set_cookie("tellonce", token)


@pytest.fixture
def signed_in(client: Any, db: Any, vault: Vault, person: Person) -> Any:
    """A test client signed in as Sam."""
    sign_in(client, db, vault, person.account_id)
    return client


@pytest.fixture
def make_worker(db: Any, vault: Vault, person: Person, app: Any) -> Callable[..., Any]:
    """A new client signed in as a support worker acting for Sam with the given scopes."""

    def make(*scopes: str) -> Any:
        with db.tx() as session:
            account = create_account(session, vault, f"worker{len(scopes)}@example.org")
            give_delegation(
                session, vault, person.actor, account.id, scopes, vault.clock() + timedelta(days=30)
            )
        client = app.test_client()
        sign_in(client, db, vault, account.id, acting_for=person.citizen_id)
        return client

    return make


def grant_for(
    db: Any, vault: Vault, person: Person, department: str = "housing-dept", **kw: Any
) -> str:
    """Sam shares their address with a department; return the grant id."""
    request = GrantRequest(
        department_id=department,
        purpose_code="emergency_housing",
        purpose_text="To find you a place to stay tonight.",
        data_points=kw.get("data_points", ["contact.address", "identity.name"]),
        story_topics=kw.get("story_topics", []),
        case_reference=kw.get("case_reference", "HOU-2291"),
        duration_days=30,
        data_life_days=90,
        max_fetches=kw.get("max_fetches", 100),
    )
    with db.tx() as session:
        return give_grant(session, vault, person.actor, request).grant.id


def write_story(
    db: Any, vault: Vault, person: Person, topic: str, text: str, sensitivity: str = "normal"
) -> None:
    """Sam writes one topic of their story directly through the vault."""
    with db.tx() as session:
        record_story_section(
            session,
            vault,
            person.citizen_id,
            topic,
            text,
            recorded_by="citizen:x",
            sensitivity=sensitivity,
        )
