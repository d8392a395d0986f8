"""Signing in without passwords: one-time email links and passkeys."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, url_for

from web.signin_state import sign_out

bp = Blueprint("auth", __name__)


@bp.get("/sign-in")
def start() -> str:
    """Start signing in (or signing up)."""
    return render_template("auth/start.html")


@bp.route("/sign-out", methods=["GET", "POST"])
def sign_out_page() -> Response:
    """Sign out: the session ends on the server."""
    return sign_out(redirect(url_for("auth.start")))  # type: ignore[arg-type]
