"""Rate limits on signing in (Flask-Limiter), with a plain page when someone hits one.

Each app gets its own Limiter: one shared instance would share its storage and its on/off
switch between apps (tests build many apps in one process).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address

# endpoint -> limits (per IP unless said otherwise); only POSTs count.
SIGN_IN_LIMITS = "10/minute;50/hour"
PER_EMAIL_LIMITS = "5/10minutes;20/day"
LINK_LIMITS = "20/minute;100/hour"
PASSKEY_LIMITS = "20/minute;100/hour"
LIMITED: dict[str, list[tuple[str, Callable[[], str]]]] = {}


def _email_key() -> str:
    # The typed address, hashed, so the storage never holds it; the same for known and
    # unknown addresses, so a limit says nothing about who has an account.
    typed = str(request.form.get("email", "")).strip().lower()
    return "email:" + hashlib.sha256(typed.encode()).hexdigest()


def too_many(_exc: Exception | None = None) -> Response:
    """The answer when a limit is hit: plain words, status 429, the same for everyone."""
    message = _("Too many tries. Wait a few minutes and try again.")
    if request.is_json or request.path.endswith(("/options", "/verify")):
        response = jsonify({"error": "too_many_requests", "message": message})
    else:
        response = Response(render_template("auth/too_many.html", message=message))
    response.status_code = 429
    response.headers["Retry-After"] = "300"
    response.headers["Cache-Control"] = "no-store"
    return response


def init_limits(app: Flask) -> None:
    """Give the app its own limiter and put the limits on the sign-in endpoints."""
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    app.config.setdefault("RATELIMIT_ENABLED", True)
    limiter = Limiter(key_func=get_remote_address, storage_uri=app.config["RATELIMIT_STORAGE_URI"])
    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, too_many)
    rules: dict[str, list[tuple[str, Callable[[], str]]]] = {
        "auth.start": [(SIGN_IN_LIMITS, get_remote_address), (PER_EMAIL_LIMITS, _email_key)],
        "auth.link": [(LINK_LIMITS, get_remote_address)],
        "auth.passkey_options": [(PASSKEY_LIMITS, get_remote_address)],
        "auth.passkey_verify": [(PASSKEY_LIMITS, get_remote_address)],
        "auth.passkey_register_verify": [(PASSKEY_LIMITS, get_remote_address)],
    }
    for endpoint, limits in rules.items():
        view: Any = app.view_functions[endpoint]
        for rule, key in limits:
            view = limiter.limit(rule, key_func=key, methods=["POST"])(view)
        app.view_functions[endpoint] = view
    app.extensions["tellonce_limiter"] = limiter


def limiter_of(app: Flask | None = None) -> Limiter:
    """The app's limiter (tests reset it)."""
    found = (app or current_app).extensions["tellonce_limiter"]
    assert isinstance(found, Limiter)
    return found
