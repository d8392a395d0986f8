"""A refused API call says how to authenticate (RFC 6750 §3, RFC 9449 §7.1)."""

from __future__ import annotations

from typing import Any

from tests.oauth.harness import whole_flow


def test_a_call_without_a_proof_is_told_to_use_dpop(department: Any, sam: Any) -> None:
    tokens = whole_flow(sam, department)
    refused = department.fetch(tokens["access_token"], proof=None)
    assert refused.status_code == 401
    challenge = refused.headers["WWW-Authenticate"]
    assert challenge.startswith('DPoP error="invalid_dpop_proof"')
    assert "ES256" in challenge
    assert refused.get_json()["error"] == "invalid_dpop_proof"


def test_a_bearer_token_is_refused_with_a_dpop_challenge(department: Any, sam: Any) -> None:
    tokens = whole_flow(sam, department)
    refused = department.fetch(tokens["access_token"], scheme="Bearer", proof=None)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("DPoP ")
