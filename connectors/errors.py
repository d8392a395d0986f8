"""Domain errors raised by the connectors layer, each with an OAuth error code and plain words.

``error`` is the machine code a department's software reads (RFC 6749 / 9449 / 9396 names
where one exists); ``message`` is safe to show anyone and never holds a personal value.
"""

from vault.errors import VaultError


class ConnectorError(VaultError):
    """Base class for every error the connectors layer raises on purpose."""

    error = "invalid_request"
    status = 400

    def __init__(self, message: str, *, error: str | None = None, status: int | None = None):
        super().__init__(message)
        if error is not None:
            self.error = error
        if status is not None:
            self.status = status


class InvalidMetadata(ConnectorError):
    """A department's registration file is wrong; the message names the field."""

    error = "invalid_client_metadata"


class InvalidDPoPProof(ConnectorError):
    """A DPoP proof is missing, malformed, replayed or does not match the request."""

    error = "invalid_dpop_proof"


class InvalidAuthorizationDetails(ConnectorError):
    """The ``authorization_details`` do not parse or ask for more than the purpose allows."""

    error = "invalid_authorization_details"


class InvalidToken(ConnectorError):
    """An access token is unknown, expired, revoked, or not bound to the proof's key."""

    error = "invalid_token"
    status = 401
