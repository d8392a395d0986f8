"""``private_key_jwt`` client authentication (RFC 7523), on Authlib, with our limits.

Only ES256, PS256 and EdDSA signatures; the audience must be this server (its issuer or the
endpoint called); every assertion's ``jti`` is remembered in the shared replay table, so an
assertion replayed to another worker is refused too.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from connectors import departments
from connectors.jose_algs import ALLOWED_ALGORITHMS, InvalidJWS, verify_compact
from connectors.replay import remember_jti
from connectors.tokens import secret_hash

if TYPE_CHECKING:
    from connectors.server import TellOnceServer

# How long an assertion's jti is remembered: longer than any assertion may live.
ASSERTION_MEMORY = timedelta(minutes=10)
MAX_ASSERTION_LIFETIME = 300  # seconds between iat (or now) and exp


class PrivateKeyJWT(JWTBearerClientAssertion):
    """Authenticate a department by a JWT signed with one of its registered keys."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, server: TellOnceServer) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.server = server

    def get_audiences(self) -> list[str]:
        issuer = self.server.issuer
        return [
            issuer,
            issuer + "/",
            issuer + "/oauth/token",
            issuer + "/oauth/par",
            issuer + "/oauth/revoke",
            issuer + "/oauth/introspect",
        ]

    def resolve_client_public_key(self, client: Any) -> KeySet:
        try:
            keys: Any = departments.public_key_set(client.department)
            return KeySet.import_key_set(keys)
        except (ValueError, JoseError) as error:
            raise InvalidClientError(description="The department's keys cannot be read.") from error

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        try:
            _header, claims = verify_compact(assertion, resolve_key, algorithms=ALLOWED_ALGORITHMS)
        except InvalidJWS as error:
            raise InvalidClientError(
                description=f"The client assertion is refused: {error.reason}."
            ) from error
        self.verify_claims(claims)
        exp, iat = claims.get("exp"), claims.get("iat", None)
        now = int(time.time())  # joserfc checks exp against the real clock too
        start = iat if isinstance(iat, int) else now
        if not isinstance(exp, int) or exp - start > MAX_ASSERTION_LIFETIME:
            raise InvalidClientError(description="The client assertion lives too long.")
        return claims

    def validate_jti(self, claims: Any, jti: Any) -> bool:
        if not isinstance(jti, str) or not 1 <= len(jti) <= 200:
            return False
        key = "assertion:" + secret_hash(f"{claims['sub']}\x00{jti}")
        return remember_jti(self.server.session, key, self.server.now + ASSERTION_MEMORY)
