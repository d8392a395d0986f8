"""English and Welsh: the chosen language lives in a small cookie (not personal data)."""

from __future__ import annotations

from flask import Blueprint, Flask, Response, redirect, request
from flask_babel import Babel

from web.security_headers import cookie_named, over_https

LANGUAGES = ("en", "cy")
COOKIE = "lang"

bp = Blueprint("i18n", __name__)


def current_language() -> str:
    """The language for this request: the cookie's choice, else English."""
    chosen = request.cookies.get(cookie_named(COOKIE), "en")
    return chosen if chosen in LANGUAGES else "en"


def _safe_next(target: str | None) -> str:
    # Only ever go back to a path on this site, never to another site.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@bp.get("/language/<code>")
def choose(code: str) -> Response:
    """Switch language and go back to the page the person was on."""
    response = redirect(_safe_next(request.args.get("next")))
    if code in LANGUAGES:
        response.set_cookie(
            cookie_named(COOKIE),
            code,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            httponly=True,
            secure=over_https(),  # like every cookie of ours: never sent over plain http
            path="/",
        )
    return response  # type: ignore[return-value]


def init_i18n(app: Flask) -> None:
    """Set up Flask-Babel with our translations folder and language choice."""
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", "translations")
    # People read times in UK time, whatever the server's clock zone.
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "Europe/London")
    Babel(app, locale_selector=current_language)
    app.add_template_global(current_language)
    app.register_blueprint(bp)
