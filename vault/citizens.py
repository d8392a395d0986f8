"""Citizens: creating a vault, opening its data key, and naming the citizen in the ledger."""

from __future__ import annotations

import os

from sqlalchemy import bindparam, select
from sqlmodel import Session, col

from vault import envelope, ledger
from vault.errors import CitizenErased, NotFound
from vault.events import CITIZEN_CREATED
from vault.models import Citizen
from vault.services import Vault

_LEDGER_KEY_KIND = "ledger_key"


def key_context(kind: str, owner_id: str) -> bytes:
    """The context a wrapped data key is bound to, so it cannot be moved to another owner."""
    return f"tellonce:{kind}:{owner_id}".encode()


def create_citizen(session: Session, vault: Vault) -> Citizen:
    """Make a new, empty vault with its own data key and ledger key."""
    citizen = Citizen(created_at=vault.clock())
    data_key = envelope.new_data_key()
    citizen.wrapped_key = vault.keys.wrap(data_key, key_context("citizen", citizen.id))
    citizen.kek_version = vault.keys.version_of(citizen.wrapped_key)
    citizen.ledger_key_sealed = envelope.seal(
        data_key,
        os.urandom(32),
        envelope.associated_data(citizen.id, _LEDGER_KEY_KIND, citizen.id, 1),
    )
    session.add(citizen)
    ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                CITIZEN_CREATED.name,
                citizen,
                citizen.created_at,
                citizen_key=_ledger_key(citizen, data_key),
            )
        ],
    )
    return citizen


def get_citizen(session: Session, citizen_id: str) -> Citizen:
    """Fetch a citizen by id, or raise NotFound."""
    citizen = session.get(Citizen, citizen_id)
    if citizen is None:
        raise NotFound("We could not find that person.")
    return citizen


# Built once: every API fetch runs it.
_HOLD_CITIZEN = (
    select(Citizen)
    .where(col(Citizen.id) == bindparam("citizen_id"))
    .execution_options(populate_existing=True)
)
_HOLD_CITIZEN_SHARED = _HOLD_CITIZEN.with_for_update(read=True)


def hold_citizen(session: Session, citizen_id: str) -> Citizen:
    """Load a citizen afresh and hold the row until commit, so an erasure waits for us.

    On PostgreSQL this is ``SELECT … FOR SHARE``: an erasure committed before it is seen, and
    one that starts after it waits until this transaction ends. (SQLite writers already take
    turns for the whole transaction.)
    """
    sqlite = session.get_bind().dialect.name == "sqlite"
    statement = _HOLD_CITIZEN if sqlite else _HOLD_CITIZEN_SHARED
    citizen = session.execute(statement, {"citizen_id": citizen_id}).scalar_one_or_none()
    if citizen is None:
        raise NotFound("We could not find that person.")
    return citizen


def data_key(vault: Vault, citizen: Citizen) -> bytes:
    """Unwrap a citizen's data key; raises CitizenErased once it has been destroyed."""
    if citizen.wrapped_key is None:
        raise CitizenErased("This account has been deleted, so its information is gone.")
    return vault.keys.unwrap(citizen.wrapped_key, key_context("citizen", citizen.id))


def _ledger_key(citizen: Citizen, key: bytes) -> ledger.CitizenLedgerKey:
    if citizen.ledger_key_sealed is None:
        raise CitizenErased("This account has been deleted, so its information is gone.")
    return ledger.CitizenLedgerKey(
        envelope.open_sealed(
            key,
            citizen.ledger_key_sealed,
            envelope.associated_data(citizen.id, _LEDGER_KEY_KIND, citizen.id, 1),
        )
    )


def ledger_key(vault: Vault, citizen: Citizen) -> ledger.CitizenLedgerKey:
    """The key that names this citizen in each ledger leaf; destroyed when they are erased."""
    return _ledger_key(citizen, data_key(vault, citizen))
