"""Anytown Council housing's OAuth client for Tell Once, as any department's software does it.

Pushed authorization request (RFC 9126) with ``private_key_jwt`` client authentication,
PKCE S256, a DPoP proof (RFC 9449) that binds the code, and ``authorization_details``
(RFC 9396); then the code swap, the refresh, and ``GET /api/v1/data``. With Sam's permission
it records decisions (scripts/demo_department_casework.py adds the department-wide calls).
Only the standard library and joserfc, so a department's developer can read it in one sitting.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from joserfc import jws
from joserfc.jwk import ECKey, JWKRegistry, Key

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CASE_REFERENCE = "HOU-2291"
ACTING_OFFICER = "Alex Morgan"
HTTP_TIMEOUT_SECONDS = 10
# Refresh a little before the access token runs out, so a fetch never starts with a dying one.
EXPIRY_MARGIN_SECONDS = 10

ASKED_FOR: dict[str, Any] = {
    "type": "tellonce_data",
    "purpose": "emergency_housing",
    "data_points": ["identity.name", "contact.address", "money.income_monthly"],
    "optional": ["money.income_monthly"],
    "story_topics": ["housing"],
    "case_reference": CASE_REFERENCE,
    "duration_days": 30,
    "data_life_days": 90,
    "max_fetches": 10,
}


class TellOnceProblem(Exception):
    """Tell Once refused a step or could not be reached; ``message`` is safe to show."""

    def __init__(self, message: str, error: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.error = error


class AccessDenied(TellOnceProblem):
    """The person said no on Tell Once's consent page."""


@dataclass(frozen=True)
class DepartmentSettings:
    """Who we are to Tell Once: our client id, redirect URI and private signing key."""

    client_id: str
    redirect_uri: str
    signing_key: Key

    @classmethod
    def from_file(cls, path: Path) -> DepartmentSettings:
        """Read the file `tellonce demo seed` writes; raise TellOnceProblem if it is unusable."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                client_id=str(document["client_id"]),
                redirect_uri=str(document["redirect_uri"]),
                signing_key=JWKRegistry.import_key(document["signing_key"]),
            )
        except FileNotFoundError:
            raise TellOnceProblem(
                f"There is no {path}. Run scripts/run (or .venv/bin/tellonce demo seed) first: "
                "it registers this demo department and writes that file."
            ) from None
        except (ValueError, KeyError, TypeError):
            raise TellOnceProblem(
                f"{path} cannot be read. Delete it and run .venv/bin/tellonce demo seed again."
            ) from None


@dataclass
class Tokens:
    """What the token endpoint gave us, and when (by our clock) the access token runs out."""

    access_token: str
    refresh_token: str | None
    expires_at: float
    grant_id: str
    authorization_details: list[dict[str, Any]]


@dataclass
class Visit:
    """One trip through the flow: its state, PKCE verifier, DPoP key and what came back."""

    state: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    # One DPoP key per visit: the code, the tokens and every fetch are bound to it.
    dpop_key: Key = field(default_factory=lambda: ECKey.generate_key("P-256"))
    tokens: Tokens | None = None
    received: dict[str, Any] | None = None
    # The decisions we recorded on this case, each as Tell Once answered (newest version).
    decisions: list[dict[str, Any]] = field(default_factory=list)
    # One line for the caseworker about what their last button did.
    note: str | None = None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _challenge(verifier: str) -> str:
    return _b64(hashlib.sha256(verifier.encode("ascii")).digest())


def _public_jwk(key: Key) -> dict[str, Any]:
    members = key.as_dict(private=False)
    return {name: members[name] for name in ("kty", "crv", "x", "y")}


class TellOnceClient:
    """Talk to one Tell Once server as one department."""

    def __init__(
        self,
        issuer: str,
        settings: DepartmentSettings,
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.settings = settings
        self.now = now
        self._metadata: dict[str, Any] | None = None

    # --- HTTP -------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Any = None,
    ) -> tuple[int, dict[str, Any]]:
        sent = {"Accept": "application/json", **(headers or {})}
        body = urlencode(form).encode("ascii") if form is not None else None
        if json_body is not None:
            body = json.dumps(json_body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        request = urllib.request.Request(  # noqa: S310  (the URL is Tell Once's, from settings)
            url, data=body, method=method, headers=sent
        )
        try:
            # Bandit B310 and ruff S310: the URL is Tell Once's issuer from the settings.
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as response:  # noqa: S310 # nosec B310
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
            error.close()
        except (urllib.error.URLError, TimeoutError, OSError):
            raise TellOnceProblem(
                f"We could not reach Tell Once at {self.issuer}. Is it running (scripts/run)?"
            ) from None
        try:
            answer = json.loads(raw) if raw else {}
        except ValueError:
            answer = {}
        return status, answer if isinstance(answer, dict) else {}

    @staticmethod
    def _refused(what: str, answer: Mapping[str, Any]) -> TellOnceProblem:
        said = answer.get("error_description") or answer.get("message") or "no reason given"
        return TellOnceProblem(f"Tell Once refused {what}: {said}", str(answer.get("error", "")))

    # --- building blocks ---------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        """Tell Once's RFC 8414 metadata, fetched once; its issuer must be the one we were given."""
        if self._metadata is None:
            status, answer = self._call(
                "GET", self.issuer + "/.well-known/oauth-authorization-server"
            )
            if status != 200:
                raise TellOnceProblem(f"{self.issuer} did not give its OAuth metadata.")
            if answer.get("issuer") != self.issuer:
                # RFC 8414 section 3.3: a server that calls itself something else is not this one.
                raise TellOnceProblem(
                    f"The server at {self.issuer} calls itself {answer.get('issuer')!r}. "
                    "Start this demo with --tellonce set to that address."
                )
            self._metadata = answer
        return self._metadata

    def client_assertion(self) -> str:
        """A fresh private_key_jwt assertion (RFC 7523), addressed to Tell Once's issuer."""
        now = int(self.now())
        claims = {
            "iss": self.settings.client_id,
            "sub": self.settings.client_id,
            "aud": self.issuer,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 60,
        }
        header = {"alg": "ES256", "kid": self.settings.signing_key.thumbprint()}
        return jws.serialize_compact(header, json.dumps(claims), self.settings.signing_key)

    def _client_auth(self) -> dict[str, str]:
        return {
            "client_id": self.settings.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.client_assertion(),
        }

    def dpop_proof(self, key: Key, method: str, url: str, access_token: str = "") -> str:
        """A DPoP proof for one request, with ``ath`` when it carries an access token."""
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(self.now()),
        }
        if access_token:
            claims["ath"] = _b64(hashlib.sha256(access_token.encode("ascii")).digest())
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": _public_jwk(key)}
        return jws.serialize_compact(header, json.dumps(claims), key)

    # --- the flow ---------------------------------------------------------------------

    def start(self, visit: Visit) -> str:
        """Push our request (PAR); return the address to send the person's browser to."""
        endpoint = self.metadata()["pushed_authorization_request_endpoint"]
        form = {
            "response_type": "code",
            "redirect_uri": self.settings.redirect_uri,
            "state": visit.state,
            "code_challenge": _challenge(visit.verifier),
            "code_challenge_method": "S256",
            "authorization_details": json.dumps([ASKED_FOR]),
            **self._client_auth(),
        }
        # The proof's key is remembered with the request, so only we can redeem the code.
        proof = self.dpop_proof(visit.dpop_key, "POST", endpoint)
        status, answer = self._call("POST", endpoint, form=form, headers={"DPoP": proof})
        if status != 201 or "request_uri" not in answer:
            raise self._refused("our request", answer)
        query = urlencode(
            {"client_id": self.settings.client_id, "request_uri": answer["request_uri"]}
        )
        return f"{self.metadata()['authorization_endpoint']}?{query}"

    def finish(self, visit: Visit, params: Mapping[str, str]) -> Tokens:
        """Check the answer that came back to /callback, then swap its code for tokens."""
        # RFC 9207: check who answered before believing anything it says, errors included.
        if params.get("iss") != self.issuer:
            raise TellOnceProblem("This answer did not come from the Tell Once we asked.")
        if not hmac.compare_digest(params.get("state", ""), visit.state):
            raise TellOnceProblem("This answer is not for a request we started here.")
        if params.get("error") == "access_denied":
            raise AccessDenied("Sam said no.", "access_denied")
        if params.get("error"):
            raise TellOnceProblem(
                f"Tell Once could not ask Sam (it said {params['error']!r}).", params["error"]
            )
        if not params.get("code"):
            raise TellOnceProblem("The answer from Tell Once had no code in it.")
        return self._token_request(
            visit,
            {
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": self.settings.redirect_uri,
                "code_verifier": visit.verifier,
            },
            "our code",
        )

    def refresh(self, visit: Visit) -> Tokens:
        """Get a new access token with the refresh token (bound to the same DPoP key)."""
        if visit.tokens is None or not visit.tokens.refresh_token:
            raise TellOnceProblem("We have no refresh token: ask Sam again.")
        form = {"grant_type": "refresh_token", "refresh_token": visit.tokens.refresh_token}
        return self._token_request(visit, form, "our refresh token")

    def _token_request(self, visit: Visit, form: dict[str, str], what: str) -> Tokens:
        endpoint = self.metadata()["token_endpoint"]
        proof = self.dpop_proof(visit.dpop_key, "POST", endpoint)
        status, answer = self._call(
            "POST", endpoint, form={**form, **self._client_auth()}, headers={"DPoP": proof}
        )
        if status != 200 or str(answer.get("token_type", "")).lower() != "dpop":
            raise self._refused(what, answer)
        kept = visit.tokens
        visit.tokens = Tokens(
            access_token=answer["access_token"],
            # Refresh tokens are not rotated: keep the one we have when none comes back.
            refresh_token=answer.get("refresh_token") or (kept.refresh_token if kept else None),
            expires_at=self.now() + int(answer.get("expires_in", 0)),
            grant_id=answer.get("grant_id") or (kept.grant_id if kept else ""),
            authorization_details=answer.get("authorization_details")
            or (kept.authorization_details if kept else []),
        )
        return visit.tokens

    def fetch(self, visit: Visit) -> dict[str, Any]:
        """GET /api/v1/data with Sam's permission; keep and return what came back."""
        headers = {"Case-Reference": CASE_REFERENCE}
        status, answer = self._as_permitted(visit, "GET", "/api/v1/data", headers=headers)
        if status != 200:
            raise self._refused("to give us the data", answer)
        visit.received = answer
        return answer

    # --- the department API -------------------------------------------------------------

    def _api(
        self,
        method: str,
        path: str,
        token: str,
        key: Key,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        query: str = "",
    ) -> tuple[int, dict[str, Any]]:
        """One call to Tell Once's API with a DPoP-bound token and a fresh proof."""
        url = self.issuer + path
        sent = {
            "Authorization": f"DPoP {token}",
            # The proof names the address without its query (RFC 9449 section 4.2).
            "DPoP": self.dpop_proof(key, method, url, access_token=token),
            "Acting-Officer": ACTING_OFFICER,
            **(headers or {}),
        }
        return self._call(method, url + query, json_body=body, headers=sent)

    def _as_permitted(
        self, visit: Visit, method: str, path: str, **kw: Any
    ) -> tuple[int, dict[str, Any]]:
        """A call with the token from Sam's permission, refreshing it when it has run out."""
        if visit.tokens is None:
            raise TellOnceProblem("We have no permission from Sam yet: ask first.")
        refreshed = False
        if self.now() >= visit.tokens.expires_at - EXPIRY_MARGIN_SECONDS:
            self.refresh(visit)
            refreshed = True
        status, answer = self._api(method, path, visit.tokens.access_token, visit.dpop_key, **kw)
        if status == 401 and answer.get("error") == "invalid_token" and not refreshed:
            # Our clock and Tell Once's may disagree about when the token ran out: refresh once.
            # (A 401 means nothing was done, so sending the same call again is safe.)
            self.refresh(visit)
            status, answer = self._api(
                method, path, visit.tokens.access_token, visit.dpop_key, **kw
            )
        return status, answer
