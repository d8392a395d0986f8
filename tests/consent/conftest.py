"""Fixtures for the consent tests: people in a fresh vault, and a ledger check after each test."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.consent.factories import Person
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.services import Vault
from vault.verify import verify_ledger


@pytest.fixture(autouse=True)
def ledger_still_verifies(db: Any, vault: Vault) -> Iterator[None]:
    """Whatever a test did, the ledger must still verify against every row afterwards."""
    yield
    with db.tx() as session:
        report = verify_ledger(session, vault)
    assert report.ok, report.problems


@pytest.fixture
def make_person(db: Any, vault: Vault) -> Callable[[], Person]:
    """Make a citizen with their own sign-in account."""
    numbers = itertools.count(1)

    def make() -> Person:
        with db.tx() as session:
            citizen = create_citizen(session, vault)
            account = create_account(
                session, vault, f"person{next(numbers)}@example.com", citizen_id=citizen.id
            )
            return Person(citizen.id, account.id)

    return make


@pytest.fixture
def person(make_person: Callable[[], Person]) -> Person:
    return make_person()


@pytest.fixture
def worker_account(db: Any, vault: Vault) -> str:
    """A support worker's account (not a citizen themselves)."""
    with db.tx() as session:
        return create_account(session, vault, "helper@example.org").id
