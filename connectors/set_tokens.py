"""Security Event Tokens (RFC 8417): how an outbox message is told to a department.

A SET is a compact JWS signed with the server key published at ``/jwks.json`` (the key that
signs consent receipts; ES256, ``kid`` = its RFC 7638 thumbprint) with ``typ``
``secevent+jwt``, so it can never pass for a receipt or an access token. The claims are:

- ``iss`` our issuer, ``aud`` the department's client id, ``iat`` when it was signed,
  ``toe`` when the event happened (RFC 8417 section 2.2);
- ``jti`` the outbox row id, the same on every redelivery, so a department can drop repeats;
- ``sub_id`` (RFC 9493, format ``opaque``) the person's pairwise subject for this department,
  when the event is about a person;
- ``events`` one member, ``https://tellonce.example/secevent/<event>``, whose value is the
  message's details: ids, data point keys and version numbers, never a value.

No ``exp``: RFC 8417 section 2.2 leaves it out, and a SET delivered late (after a webhook
outage) must still be accepted.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from connectors.errors import ConnectorError
from connectors.outbox_models import OutboxMessage
from connectors.subjects import pairwise_subject
from consent.receipts import ALGORITHM, server_signing_jwk
from vault.services import Vault

SET_TYP = "secevent+jwt"
SET_MEDIA_TYPE = "application/secevent+jwt"
EVENT_URI_PREFIX = "https://tellonce.example/secevent/"
_NOT_OURS = "This security event token was not signed by Tell Once, or it has been changed."


class InvalidSecurityEvent(ConnectorError):
    """A SET does not verify: wrong key, type, issuer or audience (RFC 8935 error codes)."""

    error = "invalid_request"


def event_uri(event: str) -> str:
    """The RFC 8417 event type URI for one of our department events."""
    return EVENT_URI_PREFIX + event


def set_claims(
    vault: Vault, issuer: str, message: OutboxMessage, *, now: datetime
) -> dict[str, Any]:
    """The claims of the SET for one outbox message (ids only)."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": message.department_id,
        "iat": int(now.timestamp()),
        "toe": int(message.created_at.timestamp()),
        "jti": message.id,
        "events": {event_uri(message.event): dict(message.details)},
    }
    if message.citizen_id is not None:
        claims["sub_id"] = {
            "format": "opaque",
            "id": pairwise_subject(vault, message.department_id, message.citizen_id),
        }
    return claims


def make_set(vault: Vault, issuer: str, message: OutboxMessage, *, now: datetime) -> str:
    """Sign the SET for one outbox message; return the compact JWS to POST to the webhook."""
    key = server_signing_jwk(vault)
    payload = json.dumps(
        set_claims(vault, issuer, message, now=now),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": SET_TYP}
    return jws.serialize_compact(header, payload, key, algorithms=[ALGORITHM])


def _is_set_type(typ: object) -> bool:
    # RFC 7515 section 4.1.9: "application/" may be left out, and media types ignore case.
    if not isinstance(typ, str):
        return False
    lowered = typ.lower()
    return lowered in (SET_TYP, SET_MEDIA_TYPE)


def read_set(token: str, jwks: dict[str, Any], *, issuer: str, audience: str) -> dict[str, Any]:
    """Verify a SET with a JWK Set, its type, issuer and audience; return its claims.

    Raises InvalidSecurityEvent with the RFC 8935 error code a receiver answers with.
    """
    try:
        keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        signed = jws.deserialize_compact(token, keys, algorithms=[ALGORITHM])
        headers = signed.headers()
        claims = json.loads(signed.payload)
    except (JoseError, ValueError, TypeError, KeyError):
        raise InvalidSecurityEvent(_NOT_OURS, error="invalid_key") from None
    if not _is_set_type(headers.get("typ")):
        raise InvalidSecurityEvent("This token is not a security event token.")
    if not isinstance(claims, dict):
        raise InvalidSecurityEvent("This security event token has no claims.")
    if claims.get("iss") != issuer:
        raise InvalidSecurityEvent(
            "This security event token was issued by someone else.", error="invalid_issuer"
        )
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise InvalidSecurityEvent(
            "This security event token is meant for someone else.", error="invalid_audience"
        )
    events = claims.get("events")
    if not isinstance(events, dict) or not events or not isinstance(claims.get("jti"), str):
        raise InvalidSecurityEvent("This security event token has no events or no jti.")
    return claims
