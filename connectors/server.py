"""The OAuth 2 authorization server, on Authlib, with our FAPI 2.0 rules added.

Authlib runs the authorization code, refresh token and client credentials grants, PKCE,
client authentication (``private_key_jwt`` and ``client_secret_basic``), RFC 9207 ``iss``,
revocation and introspection. What it lacks lives beside it in this package: pushed
requests (``pushed``), DPoP (``dpop``) and rich authorization requests (``rar``).

The server is built per request around one database session, so every hook writes in the
request's own transaction. No HTTP framework is imported: the web layer hands in an
``HttpRequest`` and gets back an ``HttpResponse``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import InvalidClientError, OAuth2Payload, OAuth2Request
from authlib.oauth2.rfc9207 import IssuerParameter
from sqlmodel import Session

from connectors import departments
from connectors.client_auth import PrivateKeyJWT
from connectors.grants import (
    ClientCredentials,
    CodeGrant,
    ConsentAnswer,
    RefreshGrant,
    S256Only,
    TokenIntrospection,
    TokenRevocation,
)
from connectors.models import Department
from connectors.replay import purge_expired
from connectors.tokens import ACCESS_TOKEN_LIFETIME, new_secret
from vault.services import Vault

CLIENT_AUTH_METHODS = ["private_key_jwt", "client_secret_basic"]
SCOPES = ["challenges"]
# Replay entries are kept a little past their own expiry before they are deleted.
PURGE_AFTER = timedelta(minutes=1)
# Authlib leaves some errors without a description; a department's developer gets these words.
DEFAULT_DESCRIPTIONS = {
    "invalid_request": "The request is missing a field or has one that is not valid.",
    "invalid_client": "We could not tell which department this is: check its authentication.",
    "invalid_grant": "The code or refresh token is not valid, has ended, or is not yours.",
    "unauthorized_client": "This department may not use that grant type.",
    "unsupported_grant_type": (
        "Use grant_type authorization_code, refresh_token or client_credentials."
    ),
    "invalid_scope": "Ask for scope=challenges.",
    "unsupported_token_type": "Give an access_token or a refresh_token.",
}


@dataclass(frozen=True)
class HttpRequest:
    """What the server needs of an HTTP request, framework-free.

    ``form`` holds every value of every field (query and body merged, as OAuth expects);
    ``headers`` must look names up without regard to case.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    form: Mapping[str, Sequence[str]]
    dpop: Sequence[str] = ()


@dataclass
class HttpResponse:
    """What to send back: status, JSON body (or none), headers."""

    status: int
    body: dict[str, Any] | None
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        """The redirect target, if this is a redirect."""
        return next((v for k, v in self.headers if k.lower() == "location"), None)

    @location.setter
    def location(self, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != "location"]
        self.headers.append(("Location", value))


class _Payload(OAuth2Payload):
    def __init__(self, form: Mapping[str, Sequence[str]]) -> None:
        self._datalist = {k: list(v) for k, v in form.items()}
        self._data = {k: v[0] for k, v in self._datalist.items() if v}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> Any:
        return self._datalist


class PlainRequest(OAuth2Request):
    """An Authlib request built from an ``HttpRequest`` (or from a pushed request's fields)."""

    def __init__(self, http: HttpRequest) -> None:
        super().__init__(method=http.method, uri=http.url, headers=http.headers)
        self.payload = _Payload(http.form)
        self.http = http

    @property
    def args(self) -> dict[str, str]:
        return self.payload.data

    @property
    def form(self) -> dict[str, str]:
        return self.payload.data


class DepartmentClient:
    """A registered department seen as an Authlib client (``ClientMixin``)."""

    def __init__(self, department: Department) -> None:
        self.department = department
        self.client_id = department.id
        self.metadata = department.client_metadata

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # every request must name its redirect URI exactly

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.metadata.get("redirect_uris", [])

    def check_client_secret(self, client_secret: str) -> bool:
        return departments.check_client_secret(self.department, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return bool(method == self.auth_method)

    @property
    def auth_method(self) -> str:
        return str(self.metadata.get("token_endpoint_auth_method", "private_key_jwt"))

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        allowed = self.metadata.get(
            "grant_types", ["authorization_code", "refresh_token", "client_credentials"]
        )
        return grant_type in allowed


class TellOnceServer(AuthorizationServer):
    """Authlib's authorization server, wired to our tables for one request's transaction."""

    def __init__(self, session: Session, vault: Vault, issuer: str) -> None:
        super().__init__(scopes_supported=SCOPES)
        self.session = session
        self.vault = vault
        self.issuer = issuer.rstrip("/")
        self.register_token_generator("default", self._generate_token)
        self.register_client_auth_method("private_key_jwt", PrivateKeyJWT(self))
        self.register_grant(CodeGrant, [S256Only(required=True)])
        self.register_grant(RefreshGrant)
        self.register_grant(ClientCredentials)
        self.register_endpoint(TokenRevocation)
        self.register_endpoint(TokenIntrospection)
        self.register_extension(_Issuer(self.issuer))

    def endpoint(self, path: str) -> str:
        """The absolute URL of one of our endpoints."""
        return self.issuer + path

    @property
    def now(self) -> Any:
        return self.vault.clock()

    def authenticate_client(
        self, request: OAuth2Request, methods: Sequence[str], endpoint: str = "token"
    ) -> DepartmentClient:
        """Authlib's client authentication, with every failure a 401 (not only Basic's).

        Authlib answers a bad assertion with 400 but a missing one with 401; a department's
        software should see one status for "we do not know it is you".
        """
        try:
            client: DepartmentClient = super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            error.status_code = 401
            raise
        return client

    def query_client(self, client_id: str) -> DepartmentClient | None:
        if not isinstance(client_id, str) or len(client_id) > 64:
            return None
        department = departments.active_department(self.session, client_id)
        return DepartmentClient(department) if department else None

    def _generate_token(
        self,
        grant_type: str,
        client: DepartmentClient,
        user: Any = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        token: dict[str, Any] = {
            "token_type": "DPoP",
            "access_token": new_secret(),
            "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds()),
        }
        if include_refresh_token and grant_type == "authorization_code":
            token["refresh_token"] = new_secret()
        if scope:
            token["scope"] = scope
        return token

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        # Each grant stores its own tokens (it knows the grant and code they belong to).
        grant_saver = getattr(request, "save_token_for_grant", None)
        if grant_saver is None:  # pragma: no cover - every grant sets one
            raise RuntimeError("No token store for this grant.")
        grant_saver(token)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return PlainRequest(request)

    def create_json_request(self, request: Any) -> Any:  # pragma: no cover - unused
        raise NotImplementedError("Tell Once takes no JSON OAuth requests.")

    def handle_response(
        self, status: int, body: Any, headers: Sequence[tuple[str, str]]
    ) -> HttpResponse:
        if isinstance(body, str):
            body = json.loads(body) if body else None
        elif isinstance(body, list):  # Authlib gives error bodies as pairs
            body = dict(body)
        if isinstance(body, dict) and body.get("error") and not body.get("error_description"):
            body["error_description"] = DEFAULT_DESCRIPTIONS.get(
                str(body["error"]), "The request was refused."
            )
        plain = [(k, v) for k, v in headers if k.lower() != "content-type"]
        return HttpResponse(status, body, plain)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """Authlib's signals: nothing listens."""

    # --- what the web layer calls -------------------------------------------------------

    def token_response(self, http: HttpRequest) -> HttpResponse:
        """POST /oauth/token."""
        # Token requests are rare next to API calls: a good moment to forget old proof ids.
        purge_expired(self.session, self.now - PURGE_AFTER)
        return self.create_token_response(http)

    def revocation_response(self, http: HttpRequest) -> HttpResponse:
        """POST /oauth/revoke (RFC 7009)."""
        return self.create_endpoint_response("revocation", http)

    def introspection_response(self, http: HttpRequest) -> HttpResponse:
        """POST /oauth/introspect (RFC 7662)."""
        return self.create_endpoint_response("introspection", http)

    def answer(self, pushed_params: Mapping[str, Any], answer: ConsentAnswer | None) -> str:
        """Where to send the browser after the person's yes (a code) or no (access_denied).

        The pushed request's fields are re-checked by Authlib's authorization code grant.
        """
        form = {k: [str(v)] for k, v in pushed_params.items() if v is not None}
        request = PlainRequest(
            HttpRequest("GET", self.endpoint("/oauth/authorize"), headers={}, form=form)
        )
        try:
            grant = self.get_consent_grant(request=request, end_user=answer)
        except OAuth2Error as error:  # pragma: no cover - checked at PAR, not expected here
            raise RuntimeError(f"A pushed request no longer validates: {error.error}") from error
        response = self.create_authorization_response(
            request=request, grant_user=answer, grant=grant
        )
        location = response.location
        if location is None:  # pragma: no cover - Authlib always redirects here
            raise RuntimeError("The authorization response did not redirect.")
        return location


class _Issuer(IssuerParameter):
    """RFC 9207: ``iss`` on every authorization response, errors included."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


def error_response(error: OAuth2Error) -> HttpResponse:
    """A JSON error response for an Authlib error raised outside its own endpoints."""
    status, body, headers = error()
    return HttpResponse(status, dict(body), [(k, v) for k, v in headers if k != "Content-Type"])
