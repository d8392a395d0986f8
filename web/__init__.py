"""The Flask app: the only layer that knows about HTTP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, abort
from flask_wtf.csrf import CSRFProtect
from govuk_frontend_wtf.main import WTFormsHelpers
from jinja2 import ChoiceLoader, PackageLoader, PrefixLoader

import connectors.events  # noqa: F401  (declare the department ledger event kinds)
import connectors.outbox as _outbox  # noqa: F401  (notices become outbox rows on commit)
import consent.events  # noqa: F401  (declare the consent ledger event kinds)
import vault.events  # noqa: F401  (declare the vault ledger event kinds)
from vault.db import make_engine
from vault.keys import LocalKeyFileProvider
from vault.services import Vault
from web.config import from_environment
from web.security_headers import init_security_headers
from web.state import Services


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment, overridden by ``config`` (tests pass theirs)."""
    app = Flask(__name__)
    app.config.from_mapping(from_environment())
    app.config.update(config or {})

    keys = app.config.get("KEY_PROVIDER") or LocalKeyFileProvider(app.config["KEY_FILE"])
    vault_services = Vault(
        keys=keys,
        ledger_origin=app.config["LEDGER_ORIGIN"],
        **({"clock": app.config["CLOCK"]} if app.config.get("CLOCK") else {}),
    )
    engine = app.config.get("ENGINE") or make_engine(
        app.config["DATABASE_URL"], synchronous=app.config["SQLITE_SYNCHRONOUS"]
    )
    app.extensions["tellonce"] = Services(engine=engine, vault=vault_services)
    init_security_headers(app)  # every answer's headers, and Flask's own cookie
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = keys.derive_secret("flask-session-key").hex()

    _init_pages(app)

    from web.api import blp as api_blp
    from web.api import init_api
    from web.errors import register_error_handlers
    from web.health import bp as health_bp
    from web.ledger_api import bp as ledger_bp
    from web.limits import init_limits
    from web.oauth import bp as oauth_bp

    init_api(app)
    csrf.exempt(api_blp)
    register_error_handlers(app)  # after the API: our error shapes replace flask-smorest's
    app.url_value_preprocessor(_refuse_nul_in_path)
    app.register_blueprint(oauth_bp)
    for view in ("pushed_authorization_request", "token", "revoke", "introspect"):
        # Departments' servers call these with their own credentials, not a browser form.
        csrf.exempt(f"web.oauth.{view}")
    app.register_blueprint(health_bp)
    app.register_blueprint(ledger_bp, url_prefix="/ledger")
    csrf.exempt(ledger_bp)
    csrf.exempt(health_bp)
    init_limits(app)  # last: it wraps views of every blueprint (sign-in, OAuth, API)
    return app


csrf = CSRFProtect()


def _refuse_nul_in_path(_endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Answer "not found" for a path whose id, key or topic holds a NUL character."""
    # None of ours holds one, and PostgreSQL cannot even compare one: without this, a path
    # like /decisions/%00/wrong failed as a storage error (503) instead of a plain 404.
    if values and any("\x00" in str(value) for value in values.values()):
        abort(404)


def _init_pages(app: Flask) -> None:
    """Templates, forms, languages, sign-in state and the people-facing blueprints."""
    from web import assets, auth, citizen, helpers_pages, workers
    from web.i18n import init_i18n
    from web.pages import page_context
    from web.signin_state import load_signed_in

    app.jinja_loader = ChoiceLoader(
        [
            app.jinja_loader,  # type: ignore[list-item]
            PrefixLoader(
                {
                    "govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja"),
                    "govuk_frontend_wtf": PackageLoader("govuk_frontend_wtf"),
                }
            ),
        ]
    )
    WTFormsHelpers(app)
    csrf.init_app(app)
    init_i18n(app)
    app.before_request(load_signed_in)
    app.context_processor(page_context)
    app.register_blueprint(assets.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(citizen.bp)
    app.register_blueprint(workers.bp)
    app.register_blueprint(helpers_pages.bp)
