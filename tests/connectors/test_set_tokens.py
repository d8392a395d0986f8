"""Security Event Tokens: signed with the key served at /jwks.json, for one department, ids only."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from connectors.errors import ConnectorError
from connectors.outbox_models import OutboxMessage
from connectors.set_tokens import make_set, read_set
from connectors.subjects import pairwise_subject
from consent.errors import ConsentError
from consent.receipts import read_receipt, server_signing_jwk
from vault.services import Vault

ISSUER = "https://tellonce.example"
HOUSING = "dept-housing"
CITIZEN = "6f1c7e9a-0000-4000-8000-000000000001"
CREATED = datetime(2026, 1, 1, 8, 59, tzinfo=UTC)


def message(**changes: Any) -> OutboxMessage:
    fields: dict[str, Any] = {
        "id": "0b5d3c1e-1111-4000-8000-00000000000a",
        "department_id": HOUSING,
        "event": "data_point_contested",
        "citizen_id": CITIZEN,
        "details": {"challenge_id": "c-1", "key": "contact.address", "version": 2},
        "created_at": CREATED,
        "next_attempt_at": CREATED,
    }
    fields.update(changes)
    return OutboxMessage(**fields)


@pytest.fixture
def served_jwks(client: Any) -> dict[str, Any]:
    """The key set anyone fetches from /jwks.json."""
    answer = client.get("/jwks.json")
    assert answer.status_code == 200
    return dict(answer.get_json())


def header(token: str) -> dict[str, Any]:
    encoded = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))))


def test_a_set_verifies_with_the_keys_served_at_jwks_json(
    vault: Vault, served_jwks: dict[str, Any]
) -> None:
    now = vault.clock()
    token = make_set(vault, ISSUER, message(), now=now)
    claims = read_set(token, served_jwks, issuer=ISSUER, audience=HOUSING)
    assert claims == {
        "iss": ISSUER,
        "aud": HOUSING,
        "iat": int(now.timestamp()),
        "toe": int(CREATED.timestamp()),
        "jti": "0b5d3c1e-1111-4000-8000-00000000000a",
        "sub_id": {"format": "opaque", "id": pairwise_subject(vault, HOUSING, CITIZEN)},
        "events": {
            "https://tellonce.example/secevent/data_point_contested": {
                "challenge_id": "c-1",
                "key": "contact.address",
                "version": 2,
            }
        },
    }
    assert header(token) == {
        "alg": "ES256",
        "kid": served_jwks["keys"][0]["kid"],
        "typ": "secevent+jwt",
    }


def test_an_event_about_no_one_in_particular_has_no_subject(
    vault: Vault, served_jwks: dict[str, Any]
) -> None:
    token = make_set(vault, ISSUER, message(citizen_id=None), now=vault.clock())
    assert "sub_id" not in read_set(token, served_jwks, issuer=ISSUER, audience=HOUSING)


def test_a_redelivery_carries_the_same_jti(vault: Vault) -> None:
    first = make_set(vault, ISSUER, message(), now=vault.clock())
    again = make_set(vault, ISSUER, message(), now=vault.clock())
    jtis = {json.loads(jws.extract_compact(t.encode()).payload)["jti"] for t in (first, again)}
    assert jtis == {"0b5d3c1e-1111-4000-8000-00000000000a"}


def test_no_personal_value_and_no_expiry_are_in_the_claims(vault: Vault) -> None:
    token = make_set(vault, ISSUER, message(), now=vault.clock())
    payload = jws.extract_compact(token.encode()).payload.decode()
    assert CITIZEN not in payload  # the department sees its pairwise subject only
    assert '"exp"' not in payload
    assert set(json.loads(payload)) == {"iss", "aud", "iat", "toe", "jti", "sub_id", "events"}


def resigned(token: str, key: ECKey, **header_changes: Any) -> str:
    """The same claims signed again by another key, or with another header."""
    signed = jws.extract_compact(token.encode())
    new_header = {**signed.headers(), "kid": key.thumbprint(), **header_changes}
    return jws.serialize_compact(new_header, signed.payload, key, algorithms=["ES256"])


def test_a_set_signed_by_another_key_is_refused(vault: Vault, served_jwks: dict[str, Any]) -> None:
    token = make_set(vault, ISSUER, message(), now=vault.clock())
    forged = resigned(token, ECKey.generate_key("P-256"))
    with pytest.raises(ConnectorError) as refused:
        read_set(forged, served_jwks, issuer=ISSUER, audience=HOUSING)
    assert refused.value.error == "invalid_key"


def test_a_set_with_a_changed_claim_is_refused(vault: Vault, served_jwks: dict[str, Any]) -> None:
    head, payload, signature = make_set(vault, ISSUER, message(), now=vault.clock()).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["aud"] = "dept-benefits"
    changed = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(ConnectorError) as refused:
        read_set(f"{head}.{changed}.{signature}", served_jwks, issuer=ISSUER, audience=HOUSING)
    assert refused.value.error == "invalid_key"


def test_a_set_for_another_department_is_refused(vault: Vault, served_jwks: dict[str, Any]) -> None:
    token = make_set(vault, ISSUER, message(), now=vault.clock())
    with pytest.raises(ConnectorError) as refused:
        read_set(token, served_jwks, issuer=ISSUER, audience="dept-benefits")
    assert refused.value.error == "invalid_audience"


def test_a_set_from_another_issuer_is_refused(vault: Vault, served_jwks: dict[str, Any]) -> None:
    token = make_set(vault, "https://elsewhere.example", message(), now=vault.clock())
    with pytest.raises(ConnectorError) as refused:
        read_set(token, served_jwks, issuer=ISSUER, audience=HOUSING)
    assert refused.value.error == "invalid_issuer"


def test_a_token_of_another_type_signed_by_us_is_not_a_set(
    vault: Vault, served_jwks: dict[str, Any]
) -> None:
    token = make_set(vault, ISSUER, message(), now=vault.clock())
    as_receipt = resigned(token, server_signing_jwk(vault), typ="consent-receipt+jwt")
    with pytest.raises(ConnectorError, match="not a security event token"):
        read_set(as_receipt, served_jwks, issuer=ISSUER, audience=HOUSING)


def test_a_set_is_never_taken_for_a_consent_receipt(vault: Vault) -> None:
    token = make_set(vault, ISSUER, message(), now=vault.clock())
    with pytest.raises(ConsentError, match="not signed by us"):
        read_receipt(vault, token)


def test_the_media_type_form_of_typ_is_accepted(vault: Vault, served_jwks: dict[str, Any]) -> None:
    token = make_set(vault, ISSUER, message(), now=vault.clock())
    long_form = resigned(token, server_signing_jwk(vault), typ="application/secevent+jwt")
    assert read_set(long_form, served_jwks, issuer=ISSUER, audience=HOUSING)["jti"]
