"""Support workers: the people who invited them, and choosing who to act for."""

from __future__ import annotations

from flask import Blueprint, render_template

from web.signin_state import signed_in_required

bp = Blueprint("workers", __name__)


@bp.get("/people")
@signed_in_required
def people() -> str:
    """The people this worker may help."""
    return render_template("workers/people.html")
