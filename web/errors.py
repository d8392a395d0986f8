"""Turn domain errors into the right status code and a plain message, never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from consent.errors import GrantNotUsable, NotAllowed
from vault.errors import (
    CitizenErased,
    InvalidValue,
    KeyProviderError,
    LedgerError,
    NotFound,
    StorageError,
    VaultError,
)

log = logging.getLogger("tellonce")

STATUS = [
    (NotFound, 404, "not_found"),
    (NotAllowed, 403, "forbidden"),
    (GrantNotUsable, 403, "grant_not_usable"),
    (CitizenErased, 410, "gone"),
    (InvalidValue, 400, "invalid_request"),
    (LedgerError, 503, "ledger_unavailable"),
    (StorageError, 503, "storage_unavailable"),
    (KeyProviderError, 503, "keys_unavailable"),
]


def error_response(status: int, error: str, message: str) -> Response:
    """A JSON error body ``{"error", "message"}`` with the given status."""
    response = jsonify({"error": error, "message": message})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def status_for(exc: VaultError) -> tuple[int, str]:
    """The HTTP status and error code for a domain error."""
    for kind, status, code in STATUS:
        if isinstance(exc, kind):
            return status, code
    return 400, "invalid_request"


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that keep errors plain and free of personal data."""

    @app.errorhandler(VaultError)
    def on_domain_error(exc: VaultError) -> Response:
        status, code = status_for(exc)
        # Log the kind of error and the route only: messages are plain, but be sparing.
        log.info("refused %s %s: %s", request.method, request.path, type(exc).__name__)
        return error_response(status, code, exc.message)

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException) -> Response:
        return error_response(
            exc.code or 500,
            (exc.name or "error").lower().replace(" ", "_"),
            exc.description or "Something went wrong.",
        )

    @app.errorhandler(Exception)
    def on_unexpected(exc: Exception) -> Response:
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.path)
        return error_response(500, "server_error", "Something went wrong on our side. Try again.")
