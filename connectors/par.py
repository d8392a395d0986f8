"""``POST /oauth/par`` (RFC 9126): check a department's whole request before any browser sees it.

Everything the authorization endpoint would check is checked here, where errors can go
back to the department as JSON instead of to a person's browser.
"""

from __future__ import annotations

import json
import re
from typing import Any

from authlib.oauth2 import OAuth2Error

from connectors import dpop
from connectors.errors import ConnectorError
from connectors.grants import CLIENT_AUTH_METHODS
from connectors.pushed import REQUEST_URI_LIFETIME, push_request
from connectors.rar import parse_authorization_details, read_data_request
from connectors.server import HttpRequest, HttpResponse, PlainRequest, TellOnceServer

MAX_STATE = 500
JKT = re.compile(r"[A-Za-z0-9_-]{43}")  # a base64url SHA-256 thumbprint
# The fields a pushed request may carry; anything else is refused rather than ignored.
ALLOWED_FIELDS = {
    "response_type",
    "client_id",
    "redirect_uri",
    "code_challenge",
    "code_challenge_method",
    "state",
    "scope",
    "authorization_details",
    "dpop_jkt",
    # client authentication fields
    "client_assertion",
    "client_assertion_type",
}


def _error(error: str, description: str, status: int = 400) -> HttpResponse:
    return HttpResponse(status, {"error": error, "error_description": description})


def _one(http: HttpRequest, name: str) -> str | None:
    values = http.form.get(name) or []
    if len(values) > 1:
        raise ConnectorError(f"Send {name} only once.")
    return values[0] if values else None


def push(server: TellOnceServer, http: HttpRequest) -> HttpResponse:
    """Authenticate the department, check its request, and store it for 60 seconds."""
    request = PlainRequest(http)
    try:
        client = server.authenticate_client(request, CLIENT_AUTH_METHODS, endpoint="par")
    except OAuth2Error as error:
        status = error.status_code or 401
        return _error(error.error or "invalid_client", error.description or "", status)
    try:
        params = _checked_params(server, http, client)
    except ConnectorError as error:
        return _error(error.error, error.message, error.status)
    # Authlib's own authorization code checks (client, redirect URI, response type, PKCE).
    form = {k: [v] for k, v in params.items()}
    check = PlainRequest(HttpRequest("GET", server.endpoint("/oauth/authorize"), {}, form))
    try:
        server.get_consent_grant(request=check, end_user=None)
    except OAuth2Error as error:
        return _error(error.error or "invalid_request", error.description or "")
    uri, _row = push_request(server.session, client.client_id, params, server.now)
    return HttpResponse(
        201, {"request_uri": uri, "expires_in": int(REQUEST_URI_LIFETIME.total_seconds())}
    )


def _checked_params(server: TellOnceServer, http: HttpRequest, client: Any) -> dict[str, str]:
    if "request_uri" in http.form:
        raise ConnectorError("A pushed request cannot itself contain a request_uri.")
    if "request" in http.form:
        raise ConnectorError(
            "Request objects are not supported; push the fields instead.",
            error="request_not_supported",
        )
    unknown = sorted(set(http.form) - ALLOWED_FIELDS)
    if unknown:
        raise ConnectorError(f"We do not accept the field {unknown[0]}.")
    client_id = _one(http, "client_id")
    if client_id is not None and client_id != client.client_id:
        raise ConnectorError("client_id is not the department that signed in.")
    response_type = _one(http, "response_type")
    if response_type != "code":
        raise ConnectorError(
            "Only response_type=code is allowed.", error="unsupported_response_type"
        )
    redirect_uri = _one(http, "redirect_uri")
    if not redirect_uri or not client.check_redirect_uri(redirect_uri):
        raise ConnectorError("redirect_uri must be exactly one of the registered ones.")
    challenge = _one(http, "code_challenge")
    if not challenge:
        raise ConnectorError("PKCE is required: send a code_challenge (S256).")
    if _one(http, "code_challenge_method") != "S256":
        raise ConnectorError("Only the S256 code_challenge_method is allowed.")
    state = _one(http, "state")
    if state is not None and len(state) > MAX_STATE:
        raise ConnectorError(f"state must be at most {MAX_STATE} characters.")
    details = parse_authorization_details(_one(http, "authorization_details"))
    read_data_request(details, client.department)
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "authorization_details": json.dumps(details, separators=(",", ":")),
    }
    if state is not None:
        params["state"] = state
    jkt = _bound_key(server, http)
    if jkt:
        params["dpop_jkt"] = jkt
    return params


def _bound_key(server: TellOnceServer, http: HttpRequest) -> str | None:
    """RFC 9449 §10: bind the code to a DPoP key given as ``dpop_jkt`` or by a proof here."""
    given = _one(http, "dpop_jkt")
    if given is not None and (
        len(given) != 43 or not given.replace("-", "").replace("_", "").isalnum()
    ):
        raise ConnectorError("dpop_jkt must be a base64url SHA-256 key thumbprint.")
    if not http.dpop:
        return given
    proof = dpop.check_proof(
        server.session, http.dpop, method="POST", url=server.endpoint("/oauth/par"), now=server.now
    )
    if given is not None and given != proof.jkt:
        raise ConnectorError(
            "dpop_jkt does not match the DPoP proof's key.", error="invalid_dpop_proof"
        )
    return proof.jkt
