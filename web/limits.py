"""Rate limits (Flask-Limiter): signing in, sending emails, helper codes, OAuth and the API.

Each app gets its own Limiter: one shared instance would share its storage and its on/off
switch between apps (tests build many apps in one process). Counts live in memory (each
worker its own) or in Redis (``TELLONCE_RATELIMIT_STORAGE``), shared by every worker.

Every limit is a fixed window: once it passes, the count starts again. Nothing here ever
locks an account or a department for good. The keys stored are HMACs, never an email
address, an IP address, a client id or a token. Behind a proxy, set
``TELLONCE_TRUSTED_PROXIES``, or every caller shares the proxy's address and its limits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from flask import Flask, Response, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits import parse_many
from werkzeug.middleware.proxy_fix import ProxyFix

from web.state import services

log = logging.getLogger("tellonce")

# People: per address (IP) unless said otherwise; only POSTs count.
SIGN_IN_LIMITS = "10/minute;50/hour"
PER_EMAIL_LIMITS = "5/10minutes;20/day"  # links emailed to one address, by any form
LINK_LIMITS = "20/minute;100/hour"
PASSKEY_LIMITS = "20/minute;100/hour"
HELPER_CODE_LIMITS = "10/minute;50/hour"  # codes are 12 characters: guessing must stay slow
# Departments' servers: every call per IP (a backstop), refused client authentication (401)
# per IP, and every call per client id at each address. The client id is read unchecked, so
# it is counted together with the address: calls sent in a department's name from elsewhere
# never use up that department's own allowance (nobody can lock a department out).
OAUTH_PER_IP = "600/minute"
OAUTH_REFUSED_PER_IP = "30/minute;300/hour"
OAUTH_PER_CLIENT = {
    "oauth.pushed_authorization_request": "60/minute",
    "oauth.token": "120/minute",  # a code swap, refreshes and client credentials per request
    "oauth.revoke": "120/minute",
    "oauth.introspect": "120/minute",
}
OAUTH_ENDPOINTS = frozenset(OAUTH_PER_CLIENT)
API_REFUSED_PER_IP = "60/minute;600/hour"  # calls refused with 401 (no or a bad token/proof)
DEFAULT_API_LIMIT = "600/minute"  # per token; TELLONCE_API_RATE_LIMIT changes it ("off": none)

TOO_MANY_MACHINE = "Too many requests. Wait for the seconds in the Retry-After header, then retry."
STORAGE_TIMEOUT_SECONDS = 1  # a Redis that does not answer must not hold a request for long
MAX_ASSERTION = 8_000  # characters of a client assertion read for its subject (it is unchecked)

Key = Callable[[], str]
Deduct = Callable[[Response], bool] | None


@dataclass(frozen=True)
class Rule:
    """One limit on one endpoint: how many, counted by what, and which answers count."""

    limits: str
    key: Key
    deduct_when: Deduct = None  # None: every call counts
    shared_scope: str | None = None  # a name shared by several endpoints (one count)
    methods: tuple[str, ...] | None = ("POST",)


def _hashed(kind: str, value: str) -> str:
    # An HMAC under a server secret: the storage (Redis) holds nothing that names anyone,
    # and nothing that matches a hash kept in the database.
    secret: bytes = current_app.extensions["tellonce_limit_secret"]
    digest = hmac.new(secret, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()
    return f"{kind}:{digest[:40]}"


def client_address() -> str:
    """The caller's IP address, as a key (from X-Forwarded-For when proxies are trusted)."""
    return _hashed("ip", get_remote_address())


def _email_key() -> str:
    # The typed address, so the count is the same for known and unknown addresses and a
    # limit says nothing about who has an account.
    return _hashed("email", str(request.form.get("email", "")).strip().lower())


def _account_key() -> str:
    account = g.get("account")
    return _hashed("account", account.id) if account is not None else client_address()


def _assertion_subject(assertion: str) -> str:
    """The ``sub`` of a JWT, read without checking it (only to count calls per client)."""
    parts = assertion.split(".")
    if len(assertion) > MAX_ASSERTION or len(parts) != 3:
        return ""
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, RecursionError):  # not base64, not JSON, or JSON nested too deep
        return ""
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return subject if isinstance(subject, str) else ""


def _client_key() -> str:
    claimed = str(request.form.get("client_id", "")) or _assertion_subject(
        str(request.form.get("client_assertion", ""))
    )
    return _hashed("client", claimed[:200]) + "@" + client_address()


def _token_key() -> str:
    scheme, _space, token = str(request.headers.get("Authorization", "")).partition(" ")
    if scheme.lower() in ("dpop", "bearer") and token.strip():
        return _hashed("token", token.strip()[:500])
    return client_address()


def _refused(response: Response) -> bool:
    return response.status_code == 401


def _sent_a_link(response: Response) -> bool:
    # Both forms redirect once the email is written; a refused or mistyped try sends nothing,
    # so it does not use up the address's allowance (a flood of tries cannot block it for
    # a day while its owner never received a link).
    return response.status_code in (302, 303)


def _rules(app: Flask, api_limit: str | None) -> dict[str, list[Rule]]:
    """Every limited endpoint and its rules."""
    email = Rule(PER_EMAIL_LIMITS, _email_key, _sent_a_link, shared_scope="emailed-links")
    rules: dict[str, list[Rule]] = {
        "auth.start": [Rule(SIGN_IN_LIMITS, client_address), email],
        "auth.link": [Rule(LINK_LIMITS, client_address)],
        "auth.passkey_options": [Rule(PASSKEY_LIMITS, client_address)],
        "auth.passkey_verify": [Rule(PASSKEY_LIMITS, client_address)],
        "auth.passkey_register_verify": [Rule(PASSKEY_LIMITS, client_address)],
        # Any signed-in account can send these: a helper starting someone's account emails a
        # link (the same per-address count as sign-in), and accepting guesses a code.
        "workers.start_account": [Rule(SIGN_IN_LIMITS, client_address), email],
        "workers.accept": [
            Rule(HELPER_CODE_LIMITS, client_address),
            Rule(HELPER_CODE_LIMITS, _account_key),
        ],
    }
    for endpoint, per_client in OAUTH_PER_CLIENT.items():
        rules[endpoint] = [
            Rule(OAUTH_PER_IP, client_address),
            Rule(OAUTH_REFUSED_PER_IP, client_address, deduct_when=_refused),
            Rule(per_client, _client_key),
        ]
    api = [Rule(API_REFUSED_PER_IP, client_address, deduct_when=_refused, methods=None)]
    if api_limit:
        api.append(Rule(api_limit, _token_key, methods=None))
    for endpoint in app.view_functions:
        if endpoint.startswith("api."):
            rules[endpoint] = api
    return rules


def _api_limit(app: Flask) -> str | None:
    """The per-token API limit from the settings (None when turned off)."""
    value = str(app.config.get("API_RATE_LIMIT", DEFAULT_API_LIMIT)).strip()
    if value.lower() in ("", "off", "none"):
        return None
    try:
        parse_many(value)
    except ValueError:
        raise RuntimeError(
            f"TELLONCE_API_RATE_LIMIT is not a rate limit like '600/minute': {value!r}."
        ) from None
    return value


def _trusted_proxies(app: Flask) -> int:
    value = str(app.config.get("TRUSTED_PROXIES", "0")).strip() or "0"
    if not value.isdigit():
        raise RuntimeError(f"TELLONCE_TRUSTED_PROXIES must be a number of proxies: {value!r}.")
    return int(value)


def _without_password(uri: str) -> str:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _storage_settings(app: Flask) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    app.config.setdefault("RATELIMIT_ENABLED", True)
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "tellonce")
    # Check every limit of a request, not only up to the first one broken: Retry-After then
    # names the wait for all of them (a per-minute limit may pass while a daily one holds),
    # and refused tries count in the longer windows too, so hammering backs off for longer.
    app.config.setdefault("RATELIMIT_FAIL_ON_FIRST_BREACH", False)
    if not str(app.config["RATELIMIT_STORAGE_URI"]).startswith("memory://"):
        app.config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS",
            {
                "socket_connect_timeout": STORAGE_TIMEOUT_SECONDS,
                "socket_timeout": STORAGE_TIMEOUT_SECONDS,
            },
        )
        # If the shared storage goes away, count in this worker's memory (limits stay on,
        # per worker) and go back to it when it answers again; never answer 500 for it.
        app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
        app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)


def _check_storage(app: Flask, limiter: Limiter) -> None:
    """Say plainly at start-up when the shared storage cannot be reached."""
    uri = str(app.config["RATELIMIT_STORAGE_URI"])
    if uri.startswith("memory://") or not limiter.enabled:
        return
    if not limiter.storage.check():
        log.warning(
            "Rate limits: the storage at %s cannot be reached. Each worker counts in its own "
            "memory until it can; limits stay on. Start Redis or fix TELLONCE_RATELIMIT_STORAGE.",
            _without_password(uri),
        )


def init_limits(app: Flask) -> None:
    """Give the app its own limiter and put the limits on every limited endpoint."""
    hops = _trusted_proxies(app)
    if hops:
        # Behind N proxies the caller is the Nth address from the right of X-Forwarded-For;
        # without this every caller would share the proxy's address, and its limits.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)  # type: ignore[method-assign]
    _storage_settings(app)
    app.extensions["tellonce_limit_secret"] = services(app).vault.secret("rate-limit-keys")
    limiter = Limiter(key_func=client_address)
    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, too_many)
    for endpoint, endpoint_rules in _rules(app, _api_limit(app)).items():
        view: Any = app.view_functions[endpoint]
        for rule in endpoint_rules:
            methods = list(rule.methods) if rule.methods else None
            if rule.shared_scope:
                decorate = limiter.shared_limit(
                    rule.limits,
                    rule.shared_scope,
                    key_func=rule.key,
                    methods=methods,
                    deduct_when=rule.deduct_when,
                )
            else:
                decorate = limiter.limit(
                    rule.limits, key_func=rule.key, methods=methods, deduct_when=rule.deduct_when
                )
            view = decorate(view)
        app.view_functions[endpoint] = view
    app.extensions["tellonce_limiter"] = limiter
    _check_storage(app, limiter)


def retry_after() -> int:
    """Whole seconds until every limit this request broke has started again (at least 1)."""
    limiter = limiter_of()
    broken = [found for found in limiter.current_limits if found.breached]
    try:
        resets = [found.window[0] for found in broken]
    except Exception:  # the storage went away meanwhile: fall back to the window's length
        resets = []
    if not resets:
        seconds = max((found.limit.get_expiry() for found in broken), default=60)
        return int(seconds)
    return max(1, math.ceil(max(resets) - time.time()))


def too_many(_exc: Exception | None = None) -> Response:
    """The answer when a limit is hit: status 429, Retry-After, the same for everyone."""
    endpoint = request.endpoint or ""
    if endpoint in OAUTH_ENDPOINTS:  # RFC 6749-style, as every other answer there
        response = jsonify(
            {
                "error": "too_many_requests",
                "error_description": TOO_MANY_MACHINE,
                "message": TOO_MANY_MACHINE,
            }
        )
    elif endpoint.startswith("api."):
        response = jsonify({"error": "too_many_requests", "message": TOO_MANY_MACHINE})
    else:
        message = _("Too many tries. Wait a few minutes and try again.")
        if request.is_json or request.path.endswith(("/options", "/verify")):
            response = jsonify({"error": "too_many_requests", "message": message})
        else:
            response = Response(render_template("auth/too_many.html", message=message))
    response.status_code = 429
    response.headers["Retry-After"] = str(retry_after())
    response.headers["Cache-Control"] = "no-store"
    return response


def limiter_of(app: Flask | None = None) -> Limiter:
    """The app's limiter (tests reset it)."""
    found = (app or current_app).extensions["tellonce_limiter"]
    assert isinstance(found, Limiter)
    return found
