"""A department's side of the OAuth flow, driven through Flask's test client.

``DepartmentSide`` does what a department's software does (PAR with ``private_key_jwt``,
PKCE, DPoP, token requests, API calls); ``say_yes`` / ``say_no`` do what the person does in
their browser. Every step returns the raw response so tests can check the failures too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jws
from joserfc.jwk import Key

from tests.connectors.dpop_client import make_proof, new_key
from tests.web.citizen.conftest import csrf_of

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REDIRECT_URI = "https://housing.anytown.example/callback"

HOUSING_DETAILS = {
    "type": "tellonce_data",
    "purpose": "emergency_housing",
    "data_points": ["identity.name", "contact.address", "money.income_monthly"],
    "optional": ["money.income_monthly"],
    "story_topics": ["housing"],
    "case_reference": "HOU-2291",
    "duration_days": 30,
    "data_life_days": 90,
    "max_fetches": 10,
}


def registration(key: Key, **tellonce: Any) -> dict[str, Any]:
    """RFC 7591 metadata for Anytown housing, with one purpose."""
    public = key.as_dict(private=False)
    public["kid"] = key.thumbprint()
    return {
        "client_name": "Anytown Council housing",
        "redirect_uris": [REDIRECT_URI],
        "jwks": {"keys": [public]},
        "token_endpoint_auth_method": "private_key_jwt",
        "tellonce": {
            "purposes": [
                {
                    "code": "emergency_housing",
                    "description": "To find you somewhere safe to stay and help you keep it.",
                    "data_points": [
                        "identity.name",
                        "contact.address",
                        "money.income_monthly",
                        "health.conditions",
                    ],
                    "story_topics": ["housing", "health"],
                }
            ],
            "accountable_officer": {
                "name": "Priya Shah",
                "role": "Head of Housing Options",
                "email": "priya.shah@anytown.example",
            },
            **tellonce,
        },
    }


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class DepartmentSide:
    """One department's software: its signing key, its DPoP key, and what it has been given."""

    client: Any  # Flask test client (no cookies needed: departments do not use the browser)
    base_url: str
    client_id: str
    key: Key
    dpop_key: Key = field(default_factory=lambda: new_key("ES256"))
    verifier: str = ""
    state: str = ""
    clock: Any = None  # the server's clock: DPoP proofs are dated by it, as a synced client's are

    def url(self, path: str) -> str:
        return self.base_url + path

    def assertion(
        self, *, key: Key | None = None, header: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        """A fresh private_key_jwt client assertion (override any claim, the key or header)."""
        now = int(time.time())
        body = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.base_url,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 60,
            **claims,
        }
        protected = {"alg": "ES256", "kid": self.key.thumbprint(), **(header or {})}
        return jws.serialize_compact(protected, json.dumps(body).encode(), key or self.key)

    def auth_fields(self, assertion: str | None = None) -> dict[str, str]:
        return {
            "client_id": self.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion or self.assertion(),
        }

    def par(self, details: Any = None, *, proof: Any = "", **fields: Any) -> Any:
        """Push an authorization request; fields given as None are left out.

        A fresh DPoP proof binds the code to ``dpop_key`` unless ``proof`` is given (None: none).
        """
        self.verifier, challenge = pkce_pair()
        self.state = secrets.token_urlsafe(8)
        form: dict[str, Any] = {
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": self.state,
            "authorization_details": json.dumps([details or HOUSING_DETAILS]),
            **self.auth_fields(),
        }
        form.update(fields)
        form = {k: v for k, v in form.items() if v is not None}
        if proof == "":
            proof = self.proof("POST", "/oauth/par")
        headers = {"DPoP": proof} if proof else {}
        return self.client.post("/oauth/par", data=form, headers=headers)

    def proof(self, method: str, path: str, *, key: Key | None = None, **kw: Any) -> str:
        """A fresh DPoP proof for one request (with this department's DPoP key unless given)."""
        if self.clock is not None:
            kw.setdefault("iat", self.clock())
        return make_proof(key or self.dpop_key, method, self.url(path), **kw)

    def token(
        self, code: str, *, verifier: str | None = None, proof: Any = "", **fields: Any
    ) -> Any:
        """Swap a code for tokens (with a fresh DPoP proof unless one is given)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier if verifier is not None else self.verifier,
            **self.auth_fields(),
            **fields,
        }
        form = {k: v for k, v in form.items() if v is not None}
        if proof == "":
            proof = self.proof("POST", "/oauth/token")
        headers = {"DPoP": proof} if proof else {}
        return self.client.post("/oauth/token", data=form, headers=headers)

    def refresh(self, refresh_token: str, *, key: Key | None = None) -> Any:
        proof = self.proof("POST", "/oauth/token", key=key)
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **self.auth_fields()}
        return self.client.post("/oauth/token", data=form, headers={"DPoP": proof})

    def client_credentials(self, scope: str | None = "challenges", proof: Any = "") -> Any:
        """Ask for a department-wide token (no person behind it)."""
        form = {"grant_type": "client_credentials", "scope": scope, **self.auth_fields()}
        form = {k: v for k, v in form.items() if v is not None}
        if proof == "":
            proof = self.proof("POST", "/oauth/token")
        headers = {"DPoP": proof} if proof else {}
        return self.client.post("/oauth/token", data=form, headers=headers)

    def revoke(self, token: str, hint: str | None = None) -> Any:
        """RFC 7009: give up a token."""
        form = {"token": token, **self.auth_fields()}
        if hint:
            form["token_type_hint"] = hint
        return self.client.post("/oauth/revoke", data=form)

    def introspect(self, token: str) -> Any:
        """RFC 7662: ask whether a token is still good."""
        return self.client.post("/oauth/introspect", data={"token": token, **self.auth_fields()})

    def fetch(
        self,
        access_token: str,
        *,
        case_reference: str = "HOU-2291",
        officer: str = "A. Officer",
        proof: Any = "",
        scheme: str = "DPoP",
    ) -> Any:
        """GET /api/v1/data as the department's caseworker."""
        if proof == "":
            proof = self.proof("GET", "/api/v1/data", access_token=access_token)
        headers = {
            "Authorization": f"{scheme} {access_token}",
            "Case-Reference": case_reference,
            "Acting-Officer": officer,
        }
        if proof:
            headers["DPoP"] = proof
        return self.client.get("/api/v1/data", headers=headers)


def open_consent(browser: Any, side: DepartmentSide, request_uri: str) -> Any:
    """The person's browser follows the department's link to us; returns the consent page."""
    opened = browser.get(
        "/oauth/authorize", query_string={"client_id": side.client_id, "request_uri": request_uri}
    )
    assert opened.status_code == 303, opened.get_data(as_text=True)
    return browser.get(opened.headers["Location"])


def answer(browser: Any, page: Any, button: str, **fields: Any) -> Any:
    """Press Share or Don't share on a consent page; returns the redirect response."""
    html = page.get_data(as_text=True)
    form = {"csrf_token": csrf_of(html), button: "yes", **fields}
    path = urlsplit(page.request.url).path
    return browser.post(path, data=form)


def redirect_params(response: Any) -> dict[str, str]:
    """The query of a redirect back to the department, one value per name."""
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def get_code(browser: Any, side: DepartmentSide, details: Any = None, **yes_fields: Any) -> str:
    """PAR → consent (yes, keeping the optional items) → the code from the redirect."""
    pushed = side.par(details)
    assert pushed.status_code == 201, pushed.get_json()
    page = open_consent(browser, side, pushed.get_json()["request_uri"])
    assert page.status_code == 200, page.get_data(as_text=True)
    keep = yes_fields.pop("keep", HOUSING_DETAILS["optional"])
    return redirect_params(answer(browser, page, "share", keep=keep, **yes_fields))["code"]


def whole_flow(
    browser: Any, side: DepartmentSide, details: Any = None, **yes_fields: Any
) -> dict[str, Any]:
    """PAR → consent (yes) → token; returns the token response's JSON."""
    pushed = side.par(details)
    assert pushed.status_code == 201, pushed.get_json()
    page = open_consent(browser, side, pushed.get_json()["request_uri"])
    assert page.status_code == 200, page.get_data(as_text=True)
    back = answer(
        browser,
        page,
        "share",
        keep=yes_fields.pop("keep", HOUSING_DETAILS["optional"]),
        **yes_fields,
    )
    params = redirect_params(back)
    tokens = side.token(params["code"])
    assert tokens.status_code == 200, tokens.get_json()
    return dict(tokens.get_json())
