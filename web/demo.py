"""Demo data: one citizen, Sam, with a little story and some facts. Safe to run twice."""

from __future__ import annotations

from sqlmodel import Session

from vault.accounts import create_account, find_account
from vault.citizens import create_citizen
from vault.records import record_data_point, record_story_section
from vault.services import Vault

DEMO_CITIZEN_EMAIL = "sam@example.org"

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
    """Create the demo citizen if they are not there yet; say whether anything was made."""
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
