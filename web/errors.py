"""Turn domain errors into the right status code and a plain message, never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, make_response, render_template, request
from flask_babel import gettext as _
from markupsafe import escape
from werkzeug.exceptions import HTTPException

from connectors.errors import ConnectorError
from connectors.jose_algs import ALLOWED_ALGORITHMS
from consent.challenges import ChallengeRejected
from consent.decisions import DecisionRejected
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
    (DecisionRejected, 422, "decision_rejected"),
    (ChallengeRejected, 422, "challenge_rejected"),
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


# Machine-facing paths answer in JSON; everything else is a page a person reads.
JSON_PATHS = (
    "/api/",
    "/oauth/par",
    "/oauth/token",
    "/oauth/revoke",
    "/oauth/introspect",
    "/ledger/",
    "/healthz",
    "/.well-known/",
    "/jwks.json",
)


def wants_json() -> bool:
    """Say whether this request is from a program (JSON) rather than a person (a page)."""
    return request.path.startswith(JSON_PATHS) or request.is_json


def _page(status: int, message: str) -> Response:
    headings = {
        400: _("Something was not right"),
        403: _("You cannot do this"),
        404: _("Page not found"),
        410: _("This has been deleted"),
        429: _("Too many tries"),
    }
    heading = headings.get(status, _("Sorry, something went wrong"))
    try:
        body = render_template("errors/page.html", heading=heading, message=message)
    except Exception:  # an error page must never fail in turn
        safe_heading, safe_message = escape(heading), escape(message)
        body = (
            f"<!DOCTYPE html><title>{safe_heading}</title>"
            f"<h1>{safe_heading}</h1><p>{safe_message}</p>"
        )
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def answer(status: int, error: str, message: str) -> Response:
    """An error in the form the caller can read: JSON for programs, a page for people."""
    if wants_json():
        return error_response(status, error, message)
    return _page(status, message)


def status_for(exc: VaultError) -> tuple[int, str]:
    """The HTTP status and error code for a domain error."""
    for kind, status, code in STATUS:
        if isinstance(exc, kind):
            return status, code
    return 400, "invalid_request"


def _field_problem(exc: HTTPException) -> str | None:
    """The first field problem of an API validation error, as 'Field: problem'."""
    messages = (getattr(exc, "data", None) or {}).get("messages")
    if not isinstance(messages, dict):
        return None
    for where in messages.values():
        if isinstance(where, dict):
            for name, problems in where.items():
                problem = problems[0] if isinstance(problems, list) and problems else problems
                return f"{name}: {problem}"
    return None


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that keep errors plain and free of personal data."""

    @app.errorhandler(VaultError)
    def on_domain_error(exc: VaultError) -> Response:
        status, code = status_for(exc)
        if isinstance(exc, ConnectorError):
            status, code = exc.status, exc.error
            if status == 401 and request.path.startswith("/api/"):
                response = error_response(status, code, exc.message)
                # RFC 6750 §3 and RFC 9449 §7.1: say how to authenticate, and what went wrong.
                response.headers["WWW-Authenticate"] = (
                    f'DPoP error="{code}", algs="{" ".join(ALLOWED_ALGORITHMS)}"'
                )
                return response
        # Log the kind of error and the route only: messages are plain, but be sparing.
        log.info("refused %s %s: %s", request.method, request.path, type(exc).__name__)
        return answer(status, code, exc.message)

    @app.errorhandler(HTTPException)
    def on_http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if not wants_json():
            plain = {
                400: _("Something in the form was not right. Go back and try again."),
                403: _("You cannot see this page."),
                404: _("Check the web address, or go to the home page."),
                405: _("Check the web address, or go to the home page."),
            }
            return _page(status, plain.get(status, _("Try again later.")))
        return error_response(
            status,
            (exc.name or "error").lower().replace(" ", "_"),
            _field_problem(exc) or exc.description or "Something went wrong.",
        )

    @app.errorhandler(Exception)
    def on_unexpected(exc: Exception) -> Response:
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.path)
        return answer(500, "server_error", "Something went wrong on our side. Try again.")
