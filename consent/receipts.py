"""Consent receipts: a signed copy of one consent event that the citizen can keep and check.

When a grant is given or withdrawn the citizen gets a compact JWS signed by the server key
(ES256, ``kid`` = the RFC 7638 thumbprint, ``typ`` = ``consent-receipt+jwt``). The payload
is a consent receipt wrapping one consent record, in the terms of the W3C DPVCG report
"Consent Records and Receipts as per ISO/IEC TS 27560:2023 using DPV"
(https://w3id.org/dpv/guides/consent-27560, final report of 2024-08-01), which maps each
27560 field to a DPV or Dublin Core term:

- receipt: ``dct:identifier`` (receipt id), ``dct:conformsTo`` (``dpv-27560#receipt``),
  ``dct:created``, ``dct:publisher``, and the record under ``dpv:hasRecordOfActivity``;
- record: ``dct:identifier`` (the grant id), ``dct:conformsTo`` (``dpv-27560#record``),
  ``dpv:hasDataSubject`` (pii principal id: only the name the ledger leaf gives the person,
  an HMAC that differs in every leaf),
  ``dpv:hasDataController`` (the department);
- processing (``dpv:hasProcess``): ``dpv:hasPurpose`` (code and text), ``dpv:hasLegalBasis``
  (consent type: ``dpv:ExpressedConsent``, plus ``dpv:ExplicitlyExpressedConsent`` when an
  "ask me each time" topic had its own yes), ``dpv:hasPersonalData`` (pii type: catalogue
  keys and ``story:<topic>``, never values), ``dpv:hasRecipient``, and
  ``dpv:hasStorageCondition`` / ``dpv:StorageDuration`` (retention period: the data life);
- event (``dpv:hasConsentStatus``): ``dpv:ConsentGiven`` or ``dpv:ConsentWithdrawn`` (event
  state), ``dpv:isIndicatedAtTime`` (event time), ``dpv:isIndicatedBy`` (entity id),
  ``dpv:hasDuration`` (event duration: ``dpv:UntilTimeDuration`` for the end and
  ``dpv:FixedOccurrencesDuration`` for the fetch limit) and ``dct:valid`` (start/end).

What DPV has no term for lives under our own ``tellonce:`` prefix: the case reference, the
topics given an explicit yes, and the ledger leaf (index and base64 leaf hash) so the
citizen can ask for an inclusion proof. ``iss``, ``iat`` and ``jti`` are the usual JWT
claims, so ordinary JOSE tools can read the receipt too.

ES256 rather than EdDSA: RFC 9864 deprecates the "EdDSA" name (joserfc warns on it) and
ES256 is the algorithm every department's JOSE library and FAPI 2.0 accept.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from consent.errors import ConsentError
from consent.models import Grant
from vault.ledger import LeafReceipt
from vault.models import new_id
from vault.services import Vault

ALGORITHM = "ES256"
RECEIPT_TYP = "consent-receipt+jwt"
SIGNING_KEY_PURPOSE = "server-signing-key"
RECEIPT_PROFILE = "https://w3id.org/dpv/schema/dpv-27560#receipt"
RECORD_PROFILE = "https://w3id.org/dpv/schema/dpv-27560#record"
CONTEXT = {
    "dpv": "https://w3id.org/dpv#",
    "dct": "http://purl.org/dc/terms/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "tellonce": "urn:tellonce:consent#",
}
Status = Literal["given", "withdrawn"]
_STATES = {"given": "dpv:ConsentGiven", "withdrawn": "dpv:ConsentWithdrawn"}
_LEAF_KINDS = {"given": "grant.given", "withdrawn": "grant.revoked"}
# The order of the P-256 group: a private scalar must lie in [1, n - 1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_BAD_RECEIPT = "This receipt was not signed by us, or it has been changed."


@lru_cache(maxsize=8)
def _key_from_secret(secret: bytes) -> ECKey:
    scalar = int.from_bytes(secret, "big") % (_P256_ORDER - 1) + 1
    private = ec.derive_private_key(scalar, ec.SECP256R1())
    kid = ECKey.import_key(private).thumbprint()
    return ECKey.import_key(private, {"kid": kid, "use": "sig", "alg": ALGORITHM})


def server_signing_jwk(vault: Vault) -> ECKey:
    """The server's private signing key (P-256), the same every time for the same key file."""
    return _key_from_secret(vault.secret(SIGNING_KEY_PURPOSE))


def public_jwks(vault: Vault) -> dict[str, Any]:
    """The JWK Set that lets anyone check our signatures: the public key only."""
    return {"keys": [dict(server_signing_jwk(vault).as_dict(private=False))]}


def _when(value: datetime) -> str:
    return value.isoformat()


def _indicated_by(label: str | None, delegation_id: str | None) -> Any:
    # Labels are "citizen:<account id>" or "worker:<account id>": ids, never names.
    if label is None or label.startswith("citizen:"):
        return "dpv:DataSubject"
    entity: dict[str, Any] = {"@type": "dpv:Entity", "dct:identifier": label}
    if delegation_id is not None:
        entity["tellonce:delegation"] = delegation_id
    return entity


def _leaf_citizen(grant: Grant, leaf: LeafReceipt, status: Status) -> str:
    """The name the ledger leaf gives the person, after checking the leaf is this event's."""
    try:
        body = json.loads(leaf.leaf)
    except ValueError:
        raise ConsentError("The receipt could not be made from that ledger entry.") from None
    if not isinstance(body, dict):
        raise ConsentError("The receipt could not be made from that ledger entry.")
    ref, row = body.get("citizen"), body.get("ref")
    if (
        not isinstance(ref, str)
        or not isinstance(row, dict)
        or body.get("kind") != _LEAF_KINDS[status]
        or row.get("id") != grant.id
    ):
        raise ConsentError("The receipt could not be made from that ledger entry.")
    return ref


def receipt_payload(
    vault: Vault, grant: Grant, leaf: LeafReceipt, status: Status, issuer: str
) -> dict[str, Any]:
    """The receipt's claims: DPV / ISO/IEC TS 27560 terms, ids and codes only."""
    if status not in _STATES:
        raise ConsentError("A receipt is for a permission given or stopped.")
    citizen = _leaf_citizen(grant, leaf, status)
    now = vault.clock()
    receipt_id = new_id()
    if status == "given":
        at, by = grant.created_at, _indicated_by(grant.given_by, grant.delegation_id)
    else:
        at = grant.revoked_at or now
        by = _indicated_by(grant.revoked_by, None)
    legal_basis = ["dpv:ExpressedConsent"]
    if grant.explicit_topics:
        legal_basis.append("dpv:ExplicitlyExpressedConsent")
    department = {"dct:identifier": grant.department_id}
    record = {
        "@type": "dpv:ConsentRecord",
        "dct:identifier": grant.id,
        "dct:conformsTo": RECORD_PROFILE,
        "dpv:hasDataSubject": {"@type": "dpv:DataSubject", "dct:identifier": citizen},
        "dpv:hasDataController": {"@type": "dpv:DataController", **department},
        "dpv:hasProcess": {
            "@type": "dpv:Process",
            "dpv:hasPurpose": {
                "@type": "dpv:Purpose",
                "dct:identifier": grant.purpose_code,
                "dct:description": grant.purpose_text,
            },
            "dpv:hasLegalBasis": legal_basis,
            # Same naming as consent.grants.STORY_PREFIX, so a receipt lists items the way
            # may_serve names them.
            "dpv:hasPersonalData": [*grant.data_points]
            + [f"story:{topic}" for topic in grant.story_topics],
            "dpv:hasRecipient": {"@type": "dpv:Recipient", **department},
            "dpv:hasStorageCondition": {
                "@type": "dpv:StorageDuration",
                "dpv:hasDuration": {
                    "@type": "dpv:TemporalDuration",
                    "rdf:value": f"P{grant.data_life_days}D",
                },
            },
            "tellonce:caseReference": grant.case_reference,
            "tellonce:explicitTopics": list(grant.explicit_topics),
        },
        "dpv:hasConsentStatus": {
            "@type": _STATES[status],
            "dpv:isIndicatedAtTime": _when(at),
            "dpv:isIndicatedBy": by,
            "dpv:hasDuration": [
                {"@type": "dpv:UntilTimeDuration", "rdf:value": _when(grant.ends_at)},
                {"@type": "dpv:FixedOccurrencesDuration", "rdf:value": grant.max_fetches},
            ],
            "dct:valid": f"{_when(grant.starts_at)}/{_when(grant.ends_at)}",
        },
    }
    return {
        "iss": issuer,
        "iat": int(now.timestamp()),
        "jti": receipt_id,
        "@context": CONTEXT,
        "@type": "dpv:ConsentReceipt",
        "dct:identifier": receipt_id,
        "dct:conformsTo": RECEIPT_PROFILE,
        "dct:created": _when(now),
        "dct:publisher": issuer,
        "dct:audience": "dpv:DataSubject",
        "dpv:hasRecordOfActivity": record,
        "tellonce:ledger": {
            "origin": vault.ledger_origin,
            "kind": _LEAF_KINDS[status],
            "index": leaf.index,
            "leafHash": leaf.leaf_hash_b64,
        },
    }


def issue_receipt(
    vault: Vault, grant: Grant, leaf: LeafReceipt, status: Status, issuer: str
) -> str:
    """Sign a consent receipt for a grant just given or withdrawn; return the compact JWS."""
    key = server_signing_jwk(vault)
    payload = json.dumps(
        receipt_payload(vault, grant, leaf, status, issuer),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode("utf-8")
    header = {"alg": ALGORITHM, "kid": key.kid, "typ": RECEIPT_TYP}
    return jws.serialize_compact(header, payload, key, algorithms=[ALGORITHM])


def read_receipt(vault: Vault, token: str) -> dict[str, Any]:
    """Check a receipt's signature and return its payload; ConsentError if it is not ours."""
    key = server_signing_jwk(vault)
    try:
        signed = jws.deserialize_compact(token, key, algorithms=[ALGORITHM])
        headers = signed.headers()
        payload = json.loads(signed.payload)
    except (JoseError, ValueError, TypeError):
        raise ConsentError(_BAD_RECEIPT) from None
    # Another token signed with the same key (say a notification) is not a receipt.
    if headers.get("typ") != RECEIPT_TYP or headers.get("kid") != key.kid:
        raise ConsentError(_BAD_RECEIPT)
    if not isinstance(payload, dict) or payload.get("@type") != "dpv:ConsentReceipt":
        raise ConsentError(_BAD_RECEIPT)
    return payload
