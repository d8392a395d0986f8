"""Signing in: one-time email links (short-lived, single use, one purpose) and passkeys.

A link's token is signed with a server secret and names a SignInLink row; the row says what
the link is for, when it dies and whether it has been used. The token also carries the email
address sealed under a server key (so a sign-up can open the account without keeping the
address in a table, and without putting it readable in a URL).
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import func, select, update
from sqlmodel import Session, col
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import parse_authentication_credential_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from vault.accounts import email_lookup, normalise_email
from vault.errors import InvalidValue, NotFound
from vault.services import Vault
from vault.signin_models import Passkey, SignInLink

PURPOSES = frozenset({"sign_in", "sign_up", "invite"})
LINK_TTL = timedelta(minutes=15)
_SALT = "tellonce/email-link/v1"
_NONCE_BYTES = 12
# One message for every way a link can fail, so a failure tells nobody which way it failed.
DEAD_LINK = "This link has expired or has been used. Ask for a new one."


@dataclass(frozen=True)
class RedeemedLink:
    """What a used link proves: who it was for (by look-up hash and address) and its purpose."""

    email_lookup: str
    email: str
    purpose: str


def _serializer(vault: Vault) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(vault.secret("email-link-key"), salt=_SALT)


def _seal_email(vault: Vault, link_id: str, email: str) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(vault.secret("email-link-seal")).encrypt(
        nonce, email.encode(), link_id.encode()
    )
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def _open_email(vault: Vault, link_id: str, text: str) -> str:
    try:
        blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        plain = AESGCM(vault.secret("email-link-seal")).decrypt(
            blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], link_id.encode()
        )
    except (InvalidTag, ValueError, binascii.Error) as exc:
        raise InvalidValue(DEAD_LINK) from exc
    return plain.decode()


def issue_link(
    session: Session, vault: Vault, email: str, purpose: str, *, ttl: timedelta = LINK_TTL
) -> str:
    """Make a one-time link for an email address and purpose; return its signed token."""
    if purpose not in PURPOSES:
        raise InvalidValue("That is not a kind of link we send.")
    clean = normalise_email(email)
    now = vault.clock()
    link = SignInLink(
        email_lookup=email_lookup(vault, clean),
        purpose=purpose,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(link)
    session.flush()
    return _serializer(vault).dumps({"id": link.id, "e": _seal_email(vault, link.id, clean)})


def _payload(vault: Vault, token: str) -> dict[str, Any]:
    if not isinstance(token, str) or not token or len(token) > 2000:
        raise InvalidValue(DEAD_LINK)
    try:
        payload = _serializer(vault).loads(token)
    except BadSignature as exc:
        raise InvalidValue(DEAD_LINK) from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("id"), str):
        raise InvalidValue(DEAD_LINK)
    return payload


def link_purpose(session: Session, vault: Vault, token: str) -> str | None:
    """What a live link is for, without using it up; None if it is forged, used or expired."""
    try:
        payload = _payload(vault, token)
    except InvalidValue:
        return None
    link = session.get(SignInLink, payload["id"])
    if link is None or link.used_at is not None or vault.clock() >= link.expires_at:
        return None
    return link.purpose


def redeem_link_details(session: Session, vault: Vault, token: str, purpose: str) -> RedeemedLink:
    """Use up a link made for ``purpose``; return who it was for. Raises InvalidValue if dead."""
    payload = _payload(vault, token)
    link = session.get(SignInLink, payload["id"])
    now = vault.clock()
    if link is None or link.purpose != purpose or now >= link.expires_at:
        raise InvalidValue(DEAD_LINK)
    email = _open_email(vault, link.id, str(payload.get("e", "")))
    # A conditional update, so two clicks racing each other cannot both use the link.
    used = session.execute(
        update(SignInLink)
        .where(col(SignInLink.id) == link.id, col(SignInLink.used_at).is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(used, "rowcount", 0) != 1:
        raise InvalidValue(DEAD_LINK)
    session.expire(link)
    return RedeemedLink(email_lookup=link.email_lookup, email=email, purpose=link.purpose)


def redeem_link(session: Session, vault: Vault, token: str, purpose: str) -> str:
    """Use up a link made for ``purpose`` and return its email look-up hash."""
    return redeem_link_details(session, vault, token, purpose).email_lookup


# ---- Passkeys (WebAuthn) -------------------------------------------------------------------

PASSKEY_FAILED = "We could not check that passkey. Try again, or sign in with an email link."


@dataclass(frozen=True)
class RelyingParty:
    """Who passkeys are made for: the site's host name and its exact origin."""

    rp_id: str
    origin: str
    name: str = "Tell Once"


def registration_options(
    session: Session, rp: RelyingParty, account_id: str, user_name: str
) -> tuple[str, bytes]:
    """Options for adding a passkey to an account, as JSON, and the challenge to keep."""
    existing = session.execute(
        select(col(Passkey.credential_id)).where(col(Passkey.account_id) == account_id)
    ).scalars()
    options = generate_registration_options(
        rp_id=rp.rp_id,
        rp_name=rp.name,
        user_id=account_id.encode(),
        user_name=user_name,
        user_display_name=user_name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in existing],
    )
    return options_to_json(options), options.challenge


def add_passkey(
    session: Session,
    vault: Vault,
    rp: RelyingParty,
    account_id: str,
    credential: Mapping[str, Any],
    challenge: bytes,
) -> Passkey:
    """Check a new passkey's registration and keep its public key. Raises InvalidValue."""
    try:
        verified = verify_registration_response(
            credential=dict(credential),
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise InvalidValue(PASSKEY_FAILED) from exc
    taken = session.execute(
        select(col(Passkey.id)).where(col(Passkey.credential_id) == verified.credential_id)
    ).first()
    if taken:
        raise InvalidValue("That passkey is already added.")
    transports = credential.get("response", {}).get("transports") or []
    count = session.execute(
        select(func.count()).select_from(Passkey).where(col(Passkey.account_id) == account_id)
    ).scalar_one()
    passkey = Passkey(
        account_id=account_id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=[str(t) for t in transports if isinstance(t, str)][:8],
        name=f"Passkey {count + 1}",
        created_at=vault.clock(),
    )
    session.add(passkey)
    session.flush()
    return passkey


def authentication_options(rp: RelyingParty) -> tuple[str, bytes]:
    """Options for signing in with any passkey made here, as JSON, and the challenge to keep."""
    options = generate_authentication_options(
        rp_id=rp.rp_id, user_verification=UserVerificationRequirement.PREFERRED
    )
    return options_to_json(options), options.challenge


def use_passkey(
    session: Session,
    vault: Vault,
    rp: RelyingParty,
    credential: Mapping[str, Any],
    challenge: bytes,
) -> str:
    """Check a passkey sign-in; return the account id. Raises InvalidValue if it fails.

    A signature counter that goes backwards (or stays put once it has started) means the
    passkey may have been copied, so it is refused.
    """
    try:
        parsed = parse_authentication_credential_json(dict(credential))
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise InvalidValue(PASSKEY_FAILED) from exc
    passkey = session.execute(
        select(Passkey).where(col(Passkey.credential_id) == parsed.raw_id)
    ).scalar_one_or_none()
    if passkey is None:
        raise InvalidValue(PASSKEY_FAILED)
    handle = parsed.response.user_handle
    if handle is not None and handle != passkey.account_id.encode():
        raise InvalidValue(PASSKEY_FAILED)
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=rp.rp_id,
            expected_origin=rp.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise InvalidValue(PASSKEY_FAILED) from exc
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = vault.clock()
    session.add(passkey)
    return passkey.account_id


def list_passkeys(session: Session, account_id: str) -> list[Passkey]:
    """An account's passkeys, oldest first."""
    return list(
        session.execute(
            select(Passkey)
            .where(col(Passkey.account_id) == account_id)
            .order_by(col(Passkey.created_at), col(Passkey.id))
        ).scalars()
    )


def remove_passkey(session: Session, account_id: str, passkey_id: str) -> None:
    """Remove one of an account's passkeys. Raises NotFound if it is not theirs."""
    passkey = session.get(Passkey, passkey_id)
    if passkey is None or passkey.account_id != account_id:
        raise NotFound("We could not find that passkey.")
    session.delete(passkey)
