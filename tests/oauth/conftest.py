"""Fixtures for the OAuth tests: a registered department, a person, and a real clock start.

The clock starts at the real time, because client assertions are checked against real time
by the JOSE library, while DPoP proofs and codes follow our (injected) clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.departments import register_department
from tests.connectors.dpop_client import new_key
from tests.oauth.harness import DepartmentSide, registration
from tests.web.citizen.conftest import Person, sign_in
from tests.web.citizen.conftest import make_worker as make_worker
from tests.web.citizen.conftest import person as person
from vault.clock import FrozenClock
from vault.records import record_story_section
from vault.services import Vault


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


def register(app: Any, db: Any, vault: Vault, **tellonce: Any) -> DepartmentSide:
    """Register a department with a fresh EC key; return its software's side."""
    key = new_key("ES256")
    with db.tx() as session:
        registered = register_department(session, vault, registration(key, **tellonce))
    return DepartmentSide(
        app.test_client(),
        app.config["BASE_URL"],
        registered.department.id,
        key,
        clock=app.config["CLOCK"],
    )


@pytest.fixture
def department(app: Any, db: Any, vault: Vault) -> DepartmentSide:
    """Anytown housing, registered with an EC key, as its software sees itself."""
    return register(app, db, vault)


@pytest.fixture
def other_department(app: Any, db: Any, vault: Vault) -> DepartmentSide:
    """A second department with the same purposes, its own keys and its own client id."""
    return register(app, db, vault)


@pytest.fixture
def sam(app: Any, db: Any, vault: Vault, person: Person) -> Any:
    """Sam's browser, signed in, with a housing story (normal) and a health story (private)."""
    with db.tx() as session:
        record_story_section(
            session,
            vault,
            person.citizen_id,
            "housing",
            "I sleep on a sofa.",
            recorded_by="citizen:x",
        )
        record_story_section(
            session,
            vault,
            person.citizen_id,
            "health",
            "Anxiety.",
            recorded_by="citizen:x",
            sensitivity="ask_me_each_time",
        )
    client = app.test_client()
    sign_in(client, db, vault, person.account_id)
    return client
