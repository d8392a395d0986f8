"""Authorization server metadata (RFC 8414): what a department's library reads to find us."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from connectors.grants import CLIENT_AUTH_METHODS
from connectors.jose_algs import ALLOWED_ALGORITHMS
from connectors.rar import DETAILS_TYPE


def server_metadata(issuer: str) -> dict[str, Any]:
    """The metadata document for this issuer, checked by Authlib's RFC 8414 validator."""
    issuer = issuer.rstrip("/")
    algorithms = list(ALLOWED_ALGORITHMS)
    metadata = AuthorizationServerMetadata(
        {
            "issuer": issuer,
            "authorization_endpoint": issuer + "/oauth/authorize",
            "token_endpoint": issuer + "/oauth/token",
            "pushed_authorization_request_endpoint": issuer + "/oauth/par",
            "require_pushed_authorization_requests": True,
            "revocation_endpoint": issuer + "/oauth/revoke",
            "introspection_endpoint": issuer + "/oauth/introspect",
            "jwks_uri": issuer + "/jwks.json",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "scopes_supported": ["challenges"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "token_endpoint_auth_signing_alg_values_supported": algorithms,
            "revocation_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "revocation_endpoint_auth_signing_alg_values_supported": algorithms,
            "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
            "introspection_endpoint_auth_signing_alg_values_supported": algorithms,
            "dpop_signing_alg_values_supported": algorithms,
            "authorization_details_types_supported": [DETAILS_TYPE],
            "authorization_response_iss_parameter_supported": True,
            "service_documentation": issuer + "/api/v1/docs",
        }
    )
    metadata.validate()
    return dict(metadata)
