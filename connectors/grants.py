"""Authlib grants and token endpoints, tied to our tables, with DPoP binding on every token.

Each token request must carry a DPoP proof for ``POST /oauth/token``. The proof is checked
before the code or refresh token is looked at, so a missing proof never burns a code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from connectors import dpop
from connectors.errors import InvalidDPoPProof
from connectors.models import AuthorizationCode, OAuthToken
from connectors.rar import granted_details
from connectors.subjects import pairwise_subject
from connectors.tokens import (
    claim_code,
    find_token,
    grant_alive,
    revoke_authorization,
    save_code,
    save_token,
    token_problem,
)
from consent.models import Grant

if TYPE_CHECKING:
    from connectors.server import TellOnceServer

CLIENT_AUTH_METHODS = ["private_key_jwt", "client_secret_basic"]


@dataclass(frozen=True)
class ConsentAnswer:
    """The person's yes, as the authorization code grant needs it."""

    citizen_id: str
    grant_id: str
    dpop_jkt: str | None
    authorization_details: list[dict[str, Any]]


class DPoPError(OAuth2Error):
    """RFC 9449's ``invalid_dpop_proof``, as an Authlib error."""

    error = "invalid_dpop_proof"
    status_code = 400


class _Code:
    """An authorization code row as Authlib's ``AuthorizationCodeMixin`` sees it."""

    def __init__(self, row: AuthorizationCode) -> None:
        self.row = row
        self.code_challenge = row.code_challenge
        self.code_challenge_method = row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


class _Token:
    """A token row as Authlib's ``TokenMixin`` sees it."""

    def __init__(self, server: TellOnceServer, row: OAuthToken, kind: str) -> None:
        self.server = server
        self.row = row
        self.kind = kind

    def check_client(self, client: Any) -> bool:
        return bool(self.row.department_id == client.client_id)

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return max(0, int((self.row.expires_at - self.server.now).total_seconds()))

    def problem(self) -> str | None:
        return token_problem(self.server.session, self.row, self.kind, self.server.now)

    def is_expired(self) -> bool:
        return self.problem() is not None

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None


def _server(grant: Any) -> TellOnceServer:
    return grant.server


def _check_dpop(grant: Any) -> str:
    """Check the token request's DPoP proof; return the key thumbprint it binds to."""
    server = _server(grant)
    try:
        proof = dpop.check_proof(
            server.session,
            grant.request.http.dpop,
            method="POST",
            url=server.endpoint("/oauth/token"),
            now=server.now,
        )
    except InvalidDPoPProof as error:
        raise DPoPError(description=error.message) from error
    grant.request.dpop_jkt = proof.jkt
    return proof.jkt


def _details(server: TellOnceServer, grant_id: str | None) -> list[dict[str, Any]]:
    grant = server.session.get(Grant, grant_id) if grant_id else None
    return granted_details(grant) if grant else []


class S256Only(CodeChallenge):
    """PKCE, required from every department, and only with S256 (RFC 9700 §2.1.1)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send a code_challenge (S256).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only the S256 code_challenge_method is allowed.")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(AuthorizationCodeGrant):
    """The authorization code grant: codes bound to a grant, PKCE and (optionally) a DPoP key."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    RESPONSE_TYPES = {"code"}

    def validate_token_request(self) -> None:
        jkt = _check_dpop(self)
        super().validate_token_request()
        code: _Code = self.request.authorization_code
        if code.row.dpop_jkt and code.row.dpop_jkt != jkt:
            raise InvalidGrantError("The DPoP key is not the one this request was bound to.")
        if not grant_alive(_server(self).session, code.row.grant_id, _server(self).now):
            raise InvalidGrantError("The person has stopped this permission.")

    def create_token_response(self) -> Any:
        self.request.save_token_for_grant = self._store
        return super().create_token_response()

    def _store(self, token: dict[str, Any]) -> None:
        server = _server(self)
        code: _Code = self.request.authorization_code
        save_token(
            server.session,
            access_token=token["access_token"],
            refresh_token=token.get("refresh_token"),
            department_id=code.row.department_id,
            grant_id=code.row.grant_id,
            code_id=code.row.id,
            scope="",
            jkt=self.request.dpop_jkt,
            now=server.now,
        )
        token["grant_id"] = code.row.grant_id
        token["authorization_details"] = _details(server, code.row.grant_id)

    def save_authorization_code(self, code: str, request: Any) -> None:
        answer: ConsentAnswer = request.user
        data = request.payload.data
        save_code(
            _server(self).session,
            code=code,
            department_id=request.client.client_id,
            citizen_id=answer.citizen_id,
            grant_id=answer.grant_id,
            redirect_uri=data["redirect_uri"],
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            dpop_jkt=answer.dpop_jkt,
            authorization_details=answer.authorization_details,
            now=_server(self).now,
        )

    def query_authorization_code(self, code: str, client: Any) -> _Code | None:
        if not isinstance(code, str) or len(code) > 200:
            return None
        claim = claim_code(_server(self).session, code, client.client_id, _server(self).now)
        if claim.reused:
            raise InvalidGrantError(
                "This code was already used, so the tokens it gave are now revoked."
            )
        return _Code(claim.code) if claim.code else None

    def delete_authorization_code(self, authorization_code: Any) -> None:
        """Codes are kept, marked used, so a second use can be recognised."""

    def authenticate_user(self, authorization_code: _Code) -> _Code:
        return authorization_code


class RefreshGrant(RefreshTokenGrant):
    """Refresh tokens: bound to the grant and the DPoP key, not rotated, dead with the grant."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = False

    def validate_token_request(self) -> None:
        jkt = _check_dpop(self)
        super().validate_token_request()
        if self.request.refresh_token.row.jkt != jkt:
            raise InvalidGrantError("The DPoP key is not the one this token was bound to.")

    def authenticate_refresh_token(self, refresh_token: str) -> _Token | None:
        if not isinstance(refresh_token, str) or len(refresh_token) > 200:
            return None
        server = _server(self)
        found = find_token(server.session, refresh_token, kinds=("refresh_token",))
        if found is None:
            return None
        token = _Token(server, *found)
        if not token.check_client(self.request.client) or token.problem() is not None:
            return None
        return token

    def authenticate_user(self, refresh_token: _Token) -> _Token:
        return refresh_token

    def revoke_old_credential(self, refresh_token: Any) -> None:
        """Refresh tokens are not rotated (they are sender-constrained instead)."""

    def create_token_response(self) -> Any:
        self.request.save_token_for_grant = self._store
        return super().create_token_response()

    def _store(self, token: dict[str, Any]) -> None:
        server = _server(self)
        old: OAuthToken = self.request.refresh_token.row
        save_token(
            server.session,
            access_token=token["access_token"],
            refresh_token=None,
            department_id=old.department_id,
            grant_id=old.grant_id,
            code_id=old.code_id,
            scope=old.scope,
            jkt=self.request.dpop_jkt,
            now=server.now,
        )
        token["grant_id"] = old.grant_id
        token["authorization_details"] = _details(server, old.grant_id)


class ClientCredentials(ClientCredentialsGrant):
    """Department-wide tokens (scope ``challenges``), DPoP-bound, with no person behind them."""

    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def validate_token_request(self) -> None:
        _check_dpop(self)
        super().validate_token_request()
        if self.request.payload.scope != "challenges":
            raise InvalidScopeError("Ask for scope=challenges.")

    def create_token_response(self) -> Any:
        self.request.save_token_for_grant = self._store
        return super().create_token_response()

    def _store(self, token: dict[str, Any]) -> None:
        server = _server(self)
        save_token(
            server.session,
            access_token=token["access_token"],
            refresh_token=None,
            department_id=self.request.client.client_id,
            grant_id=None,
            code_id=None,
            scope="challenges",
            jkt=self.request.dpop_jkt,
            now=server.now,
        )


class _TokenLookup:
    def query_token(self, token_string: str, token_type_hint: str | None) -> _Token | None:
        server: TellOnceServer = self.server  # type: ignore[attr-defined]
        if not isinstance(token_string, str) or len(token_string) > 200:
            return None
        kinds = (token_type_hint,) if token_type_hint else ("access_token", "refresh_token")
        found = find_token(server.session, token_string, kinds=kinds)
        return _Token(server, *found) if found else None

    def authenticate_token(self, request: Any, client: Any) -> _Token | None:
        # Another department's token is treated as unknown: its existence is not revealed.
        self.check_params(request, client)  # type: ignore[attr-defined]
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        return token if token and token.check_client(client) else None


class TokenRevocation(_TokenLookup, RevocationEndpoint):
    """RFC 7009: a department gives up a token; every token of that authorization goes."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def revoke_token(self, token: _Token, request: Any) -> None:
        server: TellOnceServer = self.server
        revoke_authorization(server.session, token.row, server.now)


class TokenIntrospection(_TokenLookup, IntrospectionEndpoint):
    """RFC 7662: a department asks whether one of its tokens is still good."""

    CLIENT_AUTH_METHODS = CLIENT_AUTH_METHODS

    def check_permission(self, token: Any, client: Any, request: Any) -> bool:
        return bool(token.check_client(client))

    def introspect_token(self, token: _Token) -> dict[str, Any]:
        server: TellOnceServer = self.server
        row = token.row
        payload: dict[str, Any] = {
            "active": True,
            "client_id": row.department_id,
            "token_type": "DPoP" if token.kind == "access_token" else "refresh_token",
            "iss": server.issuer,
            "iat": int(row.issued_at.timestamp()),
            "cnf": {"jkt": row.jkt},
        }
        if token.kind == "access_token":
            payload["exp"] = int(row.expires_at.timestamp())
        if row.scope:
            payload["scope"] = row.scope
        if row.grant_id:
            grant = server.session.get(Grant, row.grant_id)
            if grant is not None:
                payload["grant_id"] = grant.id
                payload["sub"] = pairwise_subject(server.vault, row.department_id, grant.citizen_id)
                payload["authorization_details"] = granted_details(grant)
        return payload
