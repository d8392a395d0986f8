"""``POST /oauth/par``: what a department's software is told when its pushed request is wrong.

Every refusal is JSON ``{"error", "error_description"}``; a refused request is never stored,
so no browser can be sent to it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from connectors.departments import disable_department
from tests.connectors.dpop_client import new_key, sign, unsigned_token
from tests.oauth.harness import HOUSING_DETAILS, REDIRECT_URI, DepartmentSide, pkce_pair
from vault.services import Vault

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"


def refused(response: Any, status: int, error: str | None = None) -> dict[str, Any]:
    """Check a refusal's status and JSON shape; return the body."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "error_description"}, body
    assert body["error_description"], body
    if error is not None:
        assert body["error"] == error, body
    return dict(body)


def claims_of(side: DepartmentSide, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": side.client_id,
        "sub": side.client_id,
        "aud": side.base_url,
        "jti": f"jti-{time.monotonic_ns()}",
        "iat": now,
        "exp": now + 60,
        **changes,
    }


# --- The answer to a good request -------------------------------------------------------------


def test_a_good_request_gets_a_one_minute_request_uri(department: DepartmentSide) -> None:
    pushed = department.par()
    assert pushed.status_code == 201, pushed.get_json()
    body = pushed.get_json()
    assert body["request_uri"].startswith(REQUEST_URI_PREFIX)
    assert len(body["request_uri"]) > len(REQUEST_URI_PREFIX) + 30  # unguessable
    assert body["expires_in"] == 60
    assert pushed.headers["Cache-Control"] == "no-store"


def test_each_request_gets_its_own_request_uri(department: DepartmentSide) -> None:
    first = department.par().get_json()["request_uri"]
    second = department.par().get_json()["request_uri"]
    assert first != second


# --- The redirect URI must be exactly the registered one ---------------------------------------

NEAR_MISSES = {
    "trailing slash": REDIRECT_URI + "/",
    "host in other case": "https://Housing.Anytown.example/callback",
    "path in other case": "https://housing.anytown.example/Callback",
    "extra query": REDIRECT_URI + "?next=/",
    "other port": "https://housing.anytown.example:8443/callback",
    "explicit default port": "https://housing.anytown.example:443/callback",
    "http instead of https": "http://housing.anytown.example/callback",
    "fragment": REDIRECT_URI + "#top",
    "another host": "https://housing.anytown.example.evil.example/callback",
}


@pytest.mark.parametrize("redirect_uri", NEAR_MISSES.values(), ids=NEAR_MISSES.keys())
def test_a_redirect_uri_that_is_nearly_the_registered_one_is_refused(
    department: DepartmentSide, redirect_uri: str
) -> None:
    body = refused(department.par(redirect_uri=redirect_uri), 400, "invalid_request")
    assert "redirect_uri" in body["error_description"]


def test_a_missing_redirect_uri_is_refused(department: DepartmentSide) -> None:
    refused(department.par(redirect_uri=None), 400, "invalid_request")


def test_the_registered_redirect_uri_works(department: DepartmentSide) -> None:
    assert department.par(redirect_uri=REDIRECT_URI).status_code == 201


# --- PKCE: S256, from everyone ------------------------------------------------------------------


def test_a_request_without_pkce_is_refused(department: DepartmentSide) -> None:
    body = refused(department.par(code_challenge=None, code_challenge_method=None), 400)
    assert "PKCE" in body["error_description"]


def test_a_code_challenge_without_its_method_is_refused(department: DepartmentSide) -> None:
    body = refused(department.par(code_challenge_method=None), 400, "invalid_request")
    assert "S256" in body["error_description"]


def test_plain_pkce_is_refused(department: DepartmentSide) -> None:
    verifier, _challenge = pkce_pair()
    body = refused(
        department.par(code_challenge=verifier, code_challenge_method="plain"),
        400,
        "invalid_request",
    )
    assert "S256" in body["error_description"]


# --- response_type=code only --------------------------------------------------------------------


@pytest.mark.parametrize("response_type", ["token", "code token", "id_token"])
def test_a_response_type_other_than_code_is_refused(
    department: DepartmentSide, response_type: str
) -> None:
    refused(department.par(response_type=response_type), 400, "unsupported_response_type")


def test_a_missing_response_type_is_refused(department: DepartmentSide) -> None:
    refused(department.par(response_type=None), 400)


# --- Client authentication ----------------------------------------------------------------------


def test_a_request_without_client_authentication_is_refused(department: DepartmentSide) -> None:
    refused(
        department.par(client_assertion=None, client_assertion_type=None), 401, "invalid_client"
    )


def test_a_replayed_client_assertion_is_refused(department: DepartmentSide) -> None:
    assertion = department.assertion()
    assert department.par(client_assertion=assertion).status_code == 201
    refused(department.par(client_assertion=assertion), 401, "invalid_client")


def test_a_client_assertion_for_another_audience_is_refused(department: DepartmentSide) -> None:
    assertion = department.assertion(aud="https://other-server.example")
    refused(department.par(client_assertion=assertion), 401, "invalid_client")


def test_a_client_assertion_signed_with_another_key_is_refused(
    department: DepartmentSide,
) -> None:
    # The header names the registered key, but the signature is someone else's.
    assertion = department.assertion(key=new_key("ES256"))
    refused(department.par(client_assertion=assertion), 401, "invalid_client")


def test_a_client_assertion_naming_an_unregistered_key_is_refused(
    department: DepartmentSide,
) -> None:
    other = new_key("ES256")
    assertion = department.assertion(key=other, header={"kid": other.thumbprint()})
    refused(department.par(client_assertion=assertion), 401, "invalid_client")


def test_an_unsigned_alg_none_assertion_is_refused(department: DepartmentSide) -> None:
    header = {"alg": "none", "kid": department.key.thumbprint()}
    assertion = unsigned_token(header, claims_of(department))
    refused(department.par(client_assertion=assertion), 401, "invalid_client")


def test_an_hs256_assertion_is_refused(department: DepartmentSide) -> None:
    header = {"alg": "HS256", "kid": department.key.thumbprint()}
    assertion = sign(header, claims_of(department), new_key("HS256"))
    refused(department.par(client_assertion=assertion), 401, "invalid_client")


def test_an_expired_client_assertion_is_refused(department: DepartmentSide) -> None:
    now = int(time.time())
    assertion = department.assertion(iat=now - 600, exp=now - 300)
    refused(department.par(client_assertion=assertion), 401, "invalid_client")


def test_a_long_lived_client_assertion_is_refused(department: DepartmentSide) -> None:
    now = int(time.time())
    assertion = department.assertion(iat=now, exp=now + 3600)
    refused(department.par(client_assertion=assertion), 401, "invalid_client")


def test_a_client_assertion_whose_issuer_is_not_its_subject_is_refused(
    department: DepartmentSide,
) -> None:
    assertion = department.assertion(iss="someone-else")
    refused(department.par(client_assertion=assertion), 401, "invalid_client")


def test_a_disabled_department_cannot_push(
    department: DepartmentSide, db: Any, vault: Vault
) -> None:
    with db.tx() as session:
        disable_department(session, vault, department.client_id)
    refused(department.par(), 401, "invalid_client")


def test_a_client_id_that_is_not_the_signed_in_department_is_refused(
    department: DepartmentSide, other_department: DepartmentSide
) -> None:
    refused(department.par(client_id=other_department.client_id), 400)


# --- Fields a pushed request may not carry ------------------------------------------------------


def test_a_request_uri_inside_a_pushed_request_is_refused(department: DepartmentSide) -> None:
    body = refused(department.par(request_uri=REQUEST_URI_PREFIX + "x"), 400, "invalid_request")
    assert "request_uri" in body["error_description"]


def test_a_request_object_inside_a_pushed_request_is_refused(department: DepartmentSide) -> None:
    refused(department.par(request="eyJhbGciOiJub25lIn0.e30."), 400, "request_not_supported")


def test_an_unknown_field_is_refused_not_ignored(department: DepartmentSide) -> None:
    body = refused(department.par(prompt="none"), 400, "invalid_request")
    assert "prompt" in body["error_description"]


def test_a_field_sent_twice_is_refused(department: DepartmentSide) -> None:
    refused(department.par(redirect_uri=[REDIRECT_URI, REDIRECT_URI + "/"]), 400)


# --- authorization_details, checked against the registered purpose ------------------------------


def test_a_data_point_outside_the_purpose_is_refused_by_name(department: DepartmentSide) -> None:
    details = {**HOUSING_DETAILS, "data_points": ["contact.address", "justice.convictions"]}
    body = refused(department.par(details), 400, "invalid_authorization_details")
    assert "justice.convictions" in body["error_description"]


def test_a_story_topic_outside_the_purpose_is_refused_by_name(
    department: DepartmentSide,
) -> None:
    details = {**HOUSING_DETAILS, "story_topics": ["housing", "justice"]}
    body = refused(department.par(details), 400, "invalid_authorization_details")
    assert "justice" in body["error_description"]


def test_an_unregistered_purpose_is_refused(department: DepartmentSide) -> None:
    details = {**HOUSING_DETAILS, "purpose": "fraud_investigation"}
    body = refused(department.par(details), 400, "invalid_authorization_details")
    assert "fraud_investigation" in body["error_description"]


def test_missing_authorization_details_are_refused(department: DepartmentSide) -> None:
    body = refused(department.par(authorization_details=None), 400)
    assert body["error"] == "invalid_authorization_details"
    assert "authorization_details" in body["error_description"]


def test_authorization_details_of_another_type_are_refused(department: DepartmentSide) -> None:
    details = {**HOUSING_DETAILS, "type": "payment_initiation"}
    refused(department.par(details), 400, "invalid_authorization_details")


# --- DPoP at PAR --------------------------------------------------------------------------------


def test_a_dpop_proof_for_another_endpoint_is_refused_at_par(department: DepartmentSide) -> None:
    proof = department.proof("POST", "/oauth/token")
    refused(department.par(proof=proof), 400, "invalid_dpop_proof")


def test_a_dpop_jkt_that_is_not_the_proofs_key_is_refused(department: DepartmentSide) -> None:
    other = new_key("ES256").thumbprint()
    refused(department.par(dpop_jkt=other), 400, "invalid_dpop_proof")


def test_a_malformed_dpop_jkt_is_refused(department: DepartmentSide) -> None:
    refused(department.par(proof=None, dpop_jkt="not-a-thumbprint"), 400, "invalid_request")
