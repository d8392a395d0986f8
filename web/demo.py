"""Demo data: Sam, a citizen with a little story and some facts, and Jo, who helps Sam.

Safe to run twice: each piece is made only if it is missing.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

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


def seed_demo(session: Session, vault: Vault) -> bool:
    """Create whatever of the demo data is missing; say whether anything was made."""
    made_citizen = _seed_citizen(session, vault)
    made_worker = _seed_worker(session, vault)
    return made_citizen or made_worker


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
