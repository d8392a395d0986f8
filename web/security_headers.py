"""The protective headers on every answer, and Flask's own cookie, decided in one place.

Pages get a Content-Security-Policy that lets scripts run only from our own files or with
this request's nonce (GOV.UK's one-line ``js-enabled`` script); everything else (JSON, files,
errors) gets a policy that allows nothing at all. Nothing but our static files may be cached,
nothing may frame us, and over https browsers are told to use nothing else.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request

# 128 bits: the CSP spec asks for a nonce nobody can guess.
NONCE_BYTES = 16
# Files anyone may cache (they hold nothing personal): GOV.UK Frontend's and our own.
CACHEABLE_BLUEPRINTS = frozenset({"assets"})
CACHEABLE_ENDPOINTS = frozenset({"static"})
# Features no page of ours uses, switched off so an injected frame or script cannot ask.
PERMISSIONS_POLICY = "camera=(), geolocation=(), microphone=(), payment=(), usb=()"
# Two years, the length the HSTS preload list asks for.
HSTS = "max-age=63072000; includeSubDomains"
# An origin we may name in a policy: a scheme and a host (and port), nothing that could
# end the directive (spaces, semicolons, commas or quotes).
_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)
# What is not a page may load, run or frame nothing.
NOT_A_PAGE_POLICY = (
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def over_https(app: Flask | None = None) -> bool:
    """Say whether we are served over https (cookies are then ``Secure``, HSTS is sent)."""
    return str((app or current_app).config["BASE_URL"]).startswith("https://")


def cookie_named(name: str, app: Flask | None = None) -> str:
    """A cookie's name: ``__Host-`` prefixed over https, so only this exact host can set it."""
    return f"__Host-{name}" if over_https(app) else name


def csp_nonce() -> str:
    """This request's script nonce (made the first time it is asked for)."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(NONCE_BYTES)
    return str(nonce)


def allow_form_target(url: str) -> None:
    """Let this page's forms lead to ``url``'s origin (the consent page sends people back).

    Browsers apply ``form-action`` to the redirect that follows a form too, so the consent
    page names the one department address its answer goes back to.
    """
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if _ORIGIN.fullmatch(origin):
        g.form_targets = sorted({*g.get("form_targets", ()), origin})


def page_policy(nonce: str, form_targets: list[str] | tuple[str, ...] = ()) -> str:
    """The Content-Security-Policy of an HTML page: our own files, and scripts with the nonce."""
    directives = [
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        " ".join(["form-action 'self'", *form_targets]),
        "frame-ancestors 'none'",
    ]
    return "; ".join(directives)


def _cacheable() -> bool:
    return request.blueprint in CACHEABLE_BLUEPRINTS or request.endpoint in CACHEABLE_ENDPOINTS


def set_security_headers(response: Response) -> Response:
    """After each request (errors included): the protective headers, the same everywhere."""
    headers = response.headers
    if response.mimetype == "text/html":
        headers["Content-Security-Policy"] = page_policy(csp_nonce(), g.get("form_targets", ()))
    else:
        headers["Content-Security-Policy"] = NOT_A_PAGE_POLICY
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    # Only our origin, never a path: the emailed sign-in link's token stays out of every
    # Referer (ours too), while Flask-WTF's https check still sees where a form came from.
    headers["Referrer-Policy"] = "strict-origin"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = PERMISSIONS_POLICY
    if over_https():
        headers["Strict-Transport-Security"] = HSTS
    # Pages, JSON and errors may hold personal data or a form's CSRF token: never stored.
    if not _cacheable():
        headers["Cache-Control"] = "no-store"
    return response


def init_security_headers(app: Flask) -> None:
    """Protect Flask's own cookie like the session one, and add the headers to every answer."""
    https = over_https(app)
    # Flask's cookie carries the CSRF token and unsent drafts. Flask already defines these
    # settings, so they are set here rather than with setdefault (which would keep Flask's).
    app.config.update(
        SESSION_COOKIE_NAME="__Host-session" if https else "session",
        SESSION_COOKIE_SECURE=https,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_PATH="/",  # a __Host- cookie must have Path=/ and no Domain
        SESSION_COOKIE_DOMAIN=None,
    )
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.after_request(set_security_headers)
