"""``POST /oauth/token``: codes are single-use, short-lived, PKCE- and DPoP-bound.

What a department notices: which requests get tokens, which get ``invalid_grant`` (and that
a code used twice takes back the tokens it gave), and that every token needs a DPoP proof.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.connectors.dpop_client import new_key
from tests.oauth.harness import (
    REDIRECT_URI,
    DepartmentSide,
    answer,
    get_code,
    open_consent,
    pkce_pair,
    redirect_params,
)
from vault.clock import FrozenClock

PARALLEL_REDEMPTIONS = 50


def refused(response: Any, status: int, error: str) -> dict[str, Any]:
    """Check an OAuth error: its status, its code and a plain description."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == error, body
    assert body.get("error_description"), body
    assert response.headers["Cache-Control"] == "no-store"
    return dict(body)


def tokens_of(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_json()
    return dict(response.get_json())


# --- Grant types --------------------------------------------------------------------------------


def test_the_password_grant_is_not_offered(department: DepartmentSide) -> None:
    response = department.client.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "sam@example.org",
            "password": "hunter2",
            **department.auth_fields(),
        },
        headers={"DPoP": department.proof("POST", "/oauth/token")},
    )
    refused(response, 400, "unsupported_grant_type")


def test_the_implicit_style_grant_type_is_not_offered(department: DepartmentSide) -> None:
    refused(department.token("x", grant_type="token"), 400, "unsupported_grant_type")


# --- The code: single use, 60 seconds, PKCE, redirect URI, the right department ------------------


def test_a_code_gives_tokens_once(department: DepartmentSide, sam: Any) -> None:
    code = get_code(sam, department)
    first = tokens_of(department.token(code))
    assert first["access_token"] and first["refresh_token"]
    body = refused(department.token(code), 400, "invalid_grant")
    assert "already used" in body["error_description"]


def test_a_reused_code_takes_back_the_tokens_it_gave(department: DepartmentSide, sam: Any) -> None:
    code = get_code(sam, department)
    first = tokens_of(department.token(code))
    assert department.fetch(first["access_token"]).status_code == 200

    refused(department.token(code), 400, "invalid_grant")
    assert department.fetch(first["access_token"]).status_code == 401
    refused(department.refresh(first["refresh_token"]), 400, "invalid_grant")
    assert department.introspect(first["access_token"]).get_json() == {"active": False}


def test_a_code_dies_after_60_seconds(
    department: DepartmentSide, sam: Any, clock: FrozenClock
) -> None:
    code = get_code(sam, department)
    clock.advance(seconds=61)
    refused(department.token(code), 400, "invalid_grant")


def test_a_code_still_works_at_59_seconds(
    department: DepartmentSide, sam: Any, clock: FrozenClock
) -> None:
    code = get_code(sam, department)
    clock.advance(seconds=59)
    tokens_of(department.token(code))


def test_a_made_up_code_is_refused(department: DepartmentSide) -> None:
    refused(department.token("made-up-code"), 400, "invalid_grant")


def test_a_wrong_code_verifier_is_refused(department: DepartmentSide, sam: Any) -> None:
    code = get_code(sam, department)
    other_verifier, _ = pkce_pair()
    refused(department.token(code, verifier=other_verifier), 400, "invalid_grant")
    # The failed try used the code up: whoever holds it, it is not trusted again.
    refused(department.token(code), 400, "invalid_grant")


def test_a_missing_code_verifier_is_refused(department: DepartmentSide, sam: Any) -> None:
    code = get_code(sam, department)
    response = department.token(code, code_verifier=None)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request", response.get_json()


def test_a_different_redirect_uri_from_the_pushed_one_is_refused(
    department: DepartmentSide, sam: Any
) -> None:
    code = get_code(sam, department)
    refused(department.token(code, redirect_uri=REDIRECT_URI + "/"), 400, "invalid_grant")


def test_another_department_cannot_redeem_the_code_and_does_not_burn_it(
    department: DepartmentSide, other_department: DepartmentSide, sam: Any
) -> None:
    code = get_code(sam, department)
    other_department.verifier = department.verifier  # even knowing the verifier
    refused(other_department.token(code), 400, "invalid_grant")
    # The code is looked up only among the caller's own codes, so the department it was
    # issued to can still redeem it: a stranger cannot spoil a department's code.
    tokens_of(department.token(code))


def test_an_unauthenticated_token_request_is_refused(department: DepartmentSide, sam: Any) -> None:
    code = get_code(sam, department)
    response = department.token(code, client_assertion=None, client_assertion_type=None)
    refused(response, 401, "invalid_client")
    tokens_of(department.token(code))  # and the code was not used up


def test_a_replayed_client_assertion_at_the_token_endpoint_is_refused(
    department: DepartmentSide, sam: Any
) -> None:
    code = get_code(sam, department)
    assertion = department.assertion()
    refused(department.token("made-up", client_assertion=assertion), 400, "invalid_grant")
    refused(department.token(code, client_assertion=assertion), 401, "invalid_client")


# --- DPoP at the token endpoint -----------------------------------------------------------------


def test_a_token_request_without_a_dpop_proof_is_refused(
    department: DepartmentSide, sam: Any
) -> None:
    code = get_code(sam, department)
    refused(department.token(code, proof=None), 400, "invalid_dpop_proof")
    tokens_of(department.token(code))  # a missing proof never burns the code


def test_a_replayed_dpop_proof_is_refused(department: DepartmentSide, sam: Any) -> None:
    first_code = get_code(sam, department)
    first_verifier = department.verifier
    second_code = get_code(sam, department)
    proof = department.proof("POST", "/oauth/token")
    tokens_of(department.token(first_code, verifier=first_verifier, proof=proof))
    refused(department.token(second_code, proof=proof), 400, "invalid_dpop_proof")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/oauth/token"), ("POST", "/oauth/par"), ("POST", "/api/v1/data")],
    ids=["wrong htm", "wrong htu", "htu of the api"],
)
def test_a_dpop_proof_for_another_request_is_refused(
    department: DepartmentSide, sam: Any, method: str, path: str
) -> None:
    code = get_code(sam, department)
    refused(department.token(code, proof=department.proof(method, path)), 400, "invalid_dpop_proof")


def test_a_dpop_proof_for_another_server_is_refused(department: DepartmentSide, sam: Any) -> None:
    code = get_code(sam, department)
    proof = department.proof("POST", "/oauth/token")
    elsewhere = department.proof(
        "POST", "/oauth/token", claims_override={"htu": "https://other.example/oauth/token"}
    )
    refused(department.token(code, proof=elsewhere), 400, "invalid_dpop_proof")
    tokens_of(department.token(code, proof=proof))


def test_a_code_pushed_with_a_proof_is_bound_to_that_key(
    department: DepartmentSide, sam: Any
) -> None:
    code = get_code(sam, department)  # PAR carried a proof made with department.dpop_key
    other_key = new_key("ES256")
    proof = department.proof("POST", "/oauth/token", key=other_key)
    body = refused(department.token(code, proof=proof), 400, "invalid_grant")
    assert "DPoP key" in body["error_description"]


def test_a_code_pushed_without_a_proof_binds_the_token_to_the_redeeming_key(
    department: DepartmentSide, sam: Any
) -> None:
    pushed = department.par(proof=None)
    assert pushed.status_code == 201
    page = open_consent(sam, department, pushed.get_json()["request_uri"])
    code = redirect_params(answer(sam, page, "share"))["code"]
    department.dpop_key = new_key("ES256")
    tokens = tokens_of(department.token(code))
    introspected = department.introspect(tokens["access_token"]).get_json()
    assert introspected["cnf"]["jkt"] == department.dpop_key.thumbprint()


# --- Fifty racing redemptions -------------------------------------------------------------------


def test_fifty_parallel_redemptions_of_one_code_give_tokens_once(
    department: DepartmentSide, sam: Any, app: Any
) -> None:
    code = get_code(sam, department)
    # Each request is made ready first (its own assertion and proof), then all go at once.
    forms = [
        (
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": department.verifier,
                **department.auth_fields(),
            },
            department.proof("POST", "/oauth/token"),
        )
        for _ in range(PARALLEL_REDEMPTIONS)
    ]
    start = threading.Barrier(PARALLEL_REDEMPTIONS)

    def redeem(form_and_proof: tuple[dict[str, str], str]) -> tuple[int, dict[str, Any]]:
        form, proof = form_and_proof
        browserless = app.test_client()
        start.wait()
        response = browserless.post("/oauth/token", data=form, headers={"DPoP": proof})
        return response.status_code, response.get_json()

    with ThreadPoolExecutor(PARALLEL_REDEMPTIONS) as pool:
        results = list(pool.map(redeem, forms))

    winners = [body for status, body in results if status == 200]
    losers = [(status, body["error"]) for status, body in results if status != 200]
    assert len(winners) == 1, results
    assert losers == [(400, "invalid_grant")] * (PARALLEL_REDEMPTIONS - 1)
    # Every losing attempt was a reuse of the code, so what the winner got is taken back too.
    assert department.fetch(winners[0]["access_token"]).status_code == 401


# --- Client credentials: department-wide tokens -------------------------------------------------


def test_client_credentials_with_the_challenges_scope_give_a_dpop_token(
    department: DepartmentSide,
) -> None:
    tokens = tokens_of(department.client_credentials("challenges"))
    assert tokens["token_type"] == "DPoP"
    assert tokens["scope"] == "challenges"
    assert tokens["expires_in"] == 300
    assert "refresh_token" not in tokens
    introspected = department.introspect(tokens["access_token"]).get_json()
    assert introspected["active"] is True
    assert introspected["cnf"]["jkt"] == department.dpop_key.thumbprint()
    assert "sub" not in introspected


@pytest.mark.parametrize("scope", [None, "", "data", "challenges data", "openid"])
def test_client_credentials_without_the_challenges_scope_are_refused(
    department: DepartmentSide, scope: str | None
) -> None:
    refused(department.client_credentials(scope), 400, "invalid_scope")


def test_client_credentials_need_a_dpop_proof(department: DepartmentSide) -> None:
    refused(department.client_credentials(proof=None), 400, "invalid_dpop_proof")


def test_a_client_credentials_token_cannot_fetch_a_persons_data(
    department: DepartmentSide,
) -> None:
    token = tokens_of(department.client_credentials())["access_token"]
    response = department.fetch(token)
    assert response.status_code == 403
    assert response.get_json()["error"] == "insufficient_scope"
