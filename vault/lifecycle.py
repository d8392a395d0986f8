"""Export everything the vault holds about a person, and erase them by crypto-shredding."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlmodel import Session, col

from vault import catalogue, ledger
from vault.citizens import get_citizen, ledger_key
from vault.errors import CitizenErased
from vault.events import CITIZEN_ERASED
from vault.models import Account, DataPoint, StorySection
from vault.records import data_point_history, story_history
from vault.services import Vault
from vault.signin_models import Passkey, WebSession


def export_citizen(session: Session, vault: Vault, citizen_id: str) -> dict[str, Any]:
    """Everything the vault holds about a citizen, as JSON-ready data with plain labels."""
    citizen = get_citizen(session, citizen_id)
    if citizen.status == "erased":
        raise CitizenErased("This account has been deleted, so its information is gone.")
    keys = session.execute(
        select(col(DataPoint.key)).where(col(DataPoint.citizen_id) == citizen_id).distinct()
    ).scalars()
    order = list(catalogue.CATALOGUE)
    information = []
    for key in sorted(keys, key=order.index):
        entry = catalogue.entry(key)
        information.append(
            {
                "key": key,
                "label": entry.label,
                "explanation": entry.explanation,
                "versions": [
                    {
                        "version": v.version,
                        "value": v.value,
                        "status": v.status,
                        "where_it_came_from": v.source,
                        "recorded_by": v.recorded_by,
                        "recorded_at": v.recorded_at.isoformat(),
                    }
                    for v in data_point_history(session, vault, citizen_id, key)
                ],
            }
        )
    topics = session.execute(
        select(col(StorySection.topic)).where(col(StorySection.citizen_id) == citizen_id).distinct()
    ).scalars()
    topic_order = list(catalogue.STORY_TOPICS)
    story = []
    for topic in sorted(topics, key=topic_order.index):
        story.append(
            {
                "topic": topic,
                "label": catalogue.STORY_TOPICS[topic][0],
                "versions": [
                    {
                        "version": s.version,
                        "text": s.text,
                        "sensitivity": s.sensitivity,
                        "status": s.status,
                        "recorded_by": s.recorded_by,
                        "recorded_at": s.recorded_at.isoformat(),
                    }
                    for s in story_history(session, vault, citizen_id, topic)
                ],
            }
        )
    return {
        "about": "Everything Tell Once holds about you.",
        "your_id": citizen.id,
        "account_opened": citizen.created_at.isoformat(),
        # Each ledger entry names the person differently; this key is what finds them all.
        "your_ledger_key": ledger_key(vault, citizen).secret.hex(),
        "about_your_ledger_key": (
            "Every entry about you in our public record has a different code. "
            "This key finds them all. Keep it secret."
        ),
        "your_information": information,
        "your_story": story,
    }


ERASED_KEY_VERSION = 0


def erase_citizen(session: Session, vault: Vault, citizen_id: str) -> None:
    """Destroy a citizen's data key so nothing of theirs can ever be read again."""
    citizen = get_citizen(session, citizen_id)
    if citizen.status == "erased":
        return
    key = ledger_key(vault, citizen)  # the last time this link can be made
    citizen.wrapped_key = None
    citizen.ledger_key_sealed = None
    citizen.kek_version = None
    citizen.status = "erased"
    citizen.erased_at = vault.clock()
    session.add(citizen)
    accounts = select(col(Account.id)).where(col(Account.citizen_id) == citizen_id)
    session.execute(delete(WebSession).where(col(WebSession.account_id).in_(accounts)))
    session.execute(delete(Passkey).where(col(Passkey.account_id).in_(accounts)))
    # Accounts are emptied, not deleted: a helper's delegations for other people still point
    # at the account (and the ledger vouches for them), but nobody can ever sign in with it.
    for account in session.execute(
        select(Account).where(col(Account.citizen_id) == citizen_id)
    ).scalars():
        account.email_lookup = f"erased:{account.id}"
        account.email_sealed = b""
        account.wrapped_key = b""
        account.kek_version = ERASED_KEY_VERSION
        session.add(account)
    ledger.append(
        session,
        vault,
        [ledger.LedgerEvent(CITIZEN_ERASED.name, citizen, citizen.erased_at, citizen_key=key)],
    )
