"""``GET /healthz``: is the database reachable and are the keys usable?"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from vault.db import check_database
from vault.errors import VaultError
from web.state import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Check each dependency and say which one is wrong, in JSON."""
    state = services()
    checks: dict[str, dict[str, str]] = {}
    for name, check in (
        ("database", lambda: check_database(state.engine)),
        ("keys", state.vault.keys.check),
    ):
        try:
            check()
            checks[name] = {"status": "ok"}
        except VaultError as exc:
            checks[name] = {"status": "error", "message": exc.message}
    healthy = all(c["status"] == "ok" for c in checks.values())
    body = {"status": "ok" if healthy else "error", "checks": checks}
    return jsonify(body), 200 if healthy else 503
