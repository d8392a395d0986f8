"""Demo data: Sam, a citizen with a little story and some facts, Jo, who helps Sam, and
Anytown Council housing, a department that may ask Sam for information.

Safe to run twice: each piece is made only if it is missing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, JWKRegistry
from sqlalchemy import select
from sqlmodel import Session, col

from connectors.departments import disable_department, public_key_set, register_department
from connectors.errors import ConnectorError
from connectors.models import Department
from consent.actors import active_delegation
from consent.actors import citizen as citizen_actor
from consent.delegations import give_delegation
from vault.accounts import create_account, find_account
from vault.citizens import create_citizen
from vault.records import record_data_point, record_story_section
from vault.services import Vault

DEMO_CITIZEN_EMAIL = "sam@example.org"
DEMO_WORKER_EMAIL = "jo@example.org"
DEMO_WORKER_SCOPES = ("view", "answer_requests")
DEMO_WORKER_DAYS = 180

DEMO_FACTS = {
    "identity.name": "Sam Taylor",
    "identity.date_of_birth": "1988-03-14",
    "contact.address": {
        "lines": ["Flat 2", "14 Mill Lane"],
        "town": "Anytown",
        "postcode": "AN1 2TT",
    },
    "money.income_monthly": 61_000,
    "housing.status": "staying_with_friends",
    "health.conditions": "Asthma. Anxiety, which is worse when I have nowhere stable to live.",
}

DEMO_STORY = {
    "housing": (
        "I lost my flat in March when my hours were cut and I fell behind on rent. Since then I "
        "have stayed on friends' sofas. I need somewhere I can stay for more than a few weeks.",
        "normal",
    ),
    "health": (
        "I have had anxiety since my twenties. I see my GP every two months. Please ask me "
        "before you share this.",
        "ask_me_each_time",
    ),
}


DEMO_DEPARTMENT_ID = "anytown-housing"
DEMO_DEPARTMENT_REDIRECT_URI = "http://localhost:5001/callback"
# Where Tell Once POSTs its signed notices (RFC 8935) to the demo department's website.
DEMO_DEPARTMENT_WEBHOOK_URL = "http://localhost:5001/tellonce/events"
DEMO_DEPARTMENT_FILE_NAME = "demo-department.json"


def demo_department_registration(
    public_jwk: dict[str, Any],
    *,
    redirect_uri: str = DEMO_DEPARTMENT_REDIRECT_URI,
    webhook_url: str = DEMO_DEPARTMENT_WEBHOOK_URL,
) -> dict[str, Any]:
    """The demo department's registration file content (RFC 7591 and our own part).

    Tests serve the demo department on another port, so they pass their own addresses.
    """
    return {
        "client_name": "Anytown Council housing",
        "redirect_uris": [redirect_uri],
        "jwks": {"keys": [public_jwk]},
        "token_endpoint_auth_method": "private_key_jwt",
        "tellonce": {
            "purposes": [
                {
                    "code": "emergency_housing",
                    "description": "To find you somewhere safe to stay and help you keep it.",
                    "data_points": ["identity.name", "contact.address", "money.income_monthly"],
                    "story_topics": ["housing"],
                }
            ],
            "accountable_officer": {
                "name": "Priya Shah",
                "role": "Head of Housing Options",
                "email": "priya.shah@anytown.example",
            },
            "webhook_url": webhook_url,
        },
    }


def demo_department_file(key_file: str | Path) -> Path:
    """Where the demo department's private key is kept: beside Tell Once's key file."""
    return Path(key_file).parent / DEMO_DEPARTMENT_FILE_NAME


def seed_demo(
    session: Session,
    vault: Vault,
    department_file: Path | None = None,
    say: Callable[[str], None] = lambda _message: None,
) -> bool:
    """Create whatever of the demo data is missing; say whether anything was made.

    With a ``department_file``, the demo department is registered too and its private key
    written there; ``say`` is told, in plain words, anything the operator should know.
    """
    made_citizen = _seed_citizen(session, vault)
    made_worker = _seed_worker(session, vault)
    made_department = department_file is not None and _seed_department(
        session, vault, department_file, say
    )
    return made_citizen or made_worker or made_department


def _seed_citizen(session: Session, vault: Vault) -> bool:
    if find_account(session, vault, DEMO_CITIZEN_EMAIL) is not None:
        return False
    citizen = create_citizen(session, vault)
    account = create_account(session, vault, DEMO_CITIZEN_EMAIL, citizen_id=citizen.id)
    by = f"citizen:{account.id}"
    for key, value in DEMO_FACTS.items():
        record_data_point(session, vault, citizen.id, key, value, recorded_by=by)
    record_data_point(
        session, vault, citizen.id, "contact.email", DEMO_CITIZEN_EMAIL, recorded_by=by
    )
    for topic, (text, sensitivity) in DEMO_STORY.items():
        record_story_section(
            session, vault, citizen.id, topic, text, recorded_by=by, sensitivity=sensitivity
        )
    return True


def _seed_worker(session: Session, vault: Vault) -> bool:
    """Jo, a support worker (an account with no vault of their own), invited by Sam."""
    sam = find_account(session, vault, DEMO_CITIZEN_EMAIL)
    if sam is None or sam.citizen_id is None:
        return False
    jo = find_account(session, vault, DEMO_WORKER_EMAIL)
    made = jo is None
    if jo is None:
        jo = create_account(session, vault, DEMO_WORKER_EMAIL)
    if active_delegation(session, sam.citizen_id, jo.id, vault.clock()) is not None:
        return made
    # Given by Sam, exactly as if Sam had invited Jo: the ledger records Sam's choice.
    give_delegation(
        session,
        vault,
        citizen_actor(sam.id, sam.citizen_id),
        jo.id,
        DEMO_WORKER_SCOPES,
        vault.clock() + timedelta(days=DEMO_WORKER_DAYS),
    )
    return True


def _demo_departments(session: Session) -> list[Department]:
    """Every registration of the demo department, oldest first (earlier ones were replaced)."""
    statement = select(Department).where(
        (col(Department.id) == DEMO_DEPARTMENT_ID)
        | col(Department.id).startswith(DEMO_DEPARTMENT_ID + "-")
    )
    return sorted(
        session.execute(statement).scalars(), key=lambda d: (d.created_at, len(d.id), d.id)
    )


def _file_holds_key_of(path: Path, department: Department) -> bool:
    """Say whether the file names this department and holds a private key it registered."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        key = JWKRegistry.import_key(document["signing_key"])
        registered = {
            JWKRegistry.import_key(jwk).thumbprint() for jwk in public_key_set(department)["keys"]
        }
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return document.get("client_id") == department.id and key.thumbprint() in registered


def _seed_department(
    session: Session, vault: Vault, path: Path, say: Callable[[str], None]
) -> bool:
    """Register Anytown Council housing once, with a fresh key whose private half goes to path.

    If its key file is lost, the registration cannot be changed in place (the ledger vouches
    for the registered keys, so `tellonce ledger verify` would rightly call that tampering):
    the old registration is disabled and a new one made, both written in the ledger.
    """
    registrations = _demo_departments(session)
    newest = registrations[-1] if registrations else None
    if newest is not None and newest.disabled_at is not None:
        say(f"The demo department ({newest.id}) is disabled, so it was left as it is.")
        return False
    if newest is not None and _file_holds_key_of(path, newest):
        return False
    if newest is not None:
        disable_department(session, vault, newest.id)
    taken = {department.id for department in registrations}
    client_id = DEMO_DEPARTMENT_ID
    number = 2
    while client_id in taken:
        client_id, number = f"{DEMO_DEPARTMENT_ID}-{number}", number + 1
    key = ECKey.generate_key("P-256")
    public = {**key.as_dict(private=False), "kid": key.thumbprint(), "alg": "ES256", "use": "sig"}
    register_department(session, vault, demo_department_registration(public), client_id=client_id)
    _write_private_file(
        path,
        {
            "client_id": client_id,
            "redirect_uri": DEMO_DEPARTMENT_REDIRECT_URI,
            "signing_key": {**key.as_dict(private=True), "kid": key.thumbprint()},
        },
    )
    if newest is not None:
        say(
            f"The demo department's key file {path} was missing or did not match, so it was "
            f"registered again as {client_id} with a new key ({newest.id} is now disabled)."
        )
    return True


def _write_private_file(path: Path, content: dict[str, Any]) -> None:
    """Write JSON readable by its owner only (mode 0600), replacing any file atomically."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.unlink(missing_ok=True)
        # Created 0600 from the start, so the private key is never readable by others.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(content, file, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except OSError as error:
        # Raised inside the seed's transaction, so the registration is rolled back with it.
        raise ConnectorError(
            f"Could not write the demo department's key file {path}: {error.strerror}."
        ) from None
