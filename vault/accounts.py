"""Sign-in accounts. The email is kept as a keyed hash for look-up and a sealed copy for
sending, never in plain text."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select
from sqlmodel import Session, col

from vault import envelope
from vault.citizens import key_context
from vault.errors import InvalidValue, NotFound
from vault.models import Account
from vault.services import Vault

MAX_EMAIL = 254


def normalise_email(email: str) -> str:
    """Trim and lower-case an email address, and check its rough shape."""
    clean = email.strip().lower()
    local, at, domain = clean.partition("@")
    if not at or not local or "." not in domain or len(clean) > MAX_EMAIL or " " in clean:
        raise InvalidValue("Enter an email address in the right format, like name@example.com.")
    return clean


def email_lookup(vault: Vault, email: str) -> str:
    """The keyed hash used to find an account by email."""
    key = vault.secret("email-lookup")
    return hmac.new(key, normalise_email(email).encode(), hashlib.sha256).hexdigest()


def create_account(
    session: Session, vault: Vault, email: str, *, citizen_id: str | None = None
) -> Account:
    """Open an account for an email address (which must not have one already)."""
    lookup = email_lookup(vault, email)
    if session.execute(select(col(Account.id)).where(col(Account.email_lookup) == lookup)).first():
        raise InvalidValue("There is already an account for that email address.")
    account = Account(
        email_lookup=lookup,
        email_sealed=b"",
        wrapped_key=b"",
        kek_version=0,
        citizen_id=citizen_id,
        created_at=vault.clock(),
    )
    key = envelope.new_data_key()
    account.wrapped_key = vault.keys.wrap(key, key_context("account", account.id))
    account.kek_version = vault.keys.version_of(account.wrapped_key)
    account.email_sealed = envelope.seal_text(
        key, normalise_email(email), envelope.associated_data(account.id, "email", account.id, 1)
    )
    session.add(account)
    session.flush()
    return account


def find_account(session: Session, vault: Vault, email: str) -> Account | None:
    """The account for an email address, if there is one."""
    lookup = email_lookup(vault, email)
    return session.execute(
        select(Account).where(col(Account.email_lookup) == lookup)
    ).scalar_one_or_none()


def account_email(vault: Vault, account: Account) -> str:
    """Open the sealed email address of an account (to send it a message)."""
    key = vault.keys.unwrap(account.wrapped_key, key_context("account", account.id))
    return envelope.open_text(
        key, account.email_sealed, envelope.associated_data(account.id, "email", account.id, 1)
    )


def get_account(session: Session, account_id: str) -> Account:
    """Fetch an account by id, or raise NotFound."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound("We could not find that account.")
    return account
