"""The citizen's pages: home, story, information, sharing, who has seen it."""

from __future__ import annotations

from flask import Blueprint, render_template

from web.signin_state import actor_required

bp = Blueprint("citizen", __name__)


@bp.get("/")
@actor_required
def home() -> str:
    """What's new."""
    return render_template("citizen/home.html")


@bp.get("/story")
@actor_required
def story() -> str:
    """My story, by topic."""
    return render_template("citizen/home.html")


@bp.get("/information")
@actor_required
def information() -> str:
    """My information."""
    return render_template("citizen/home.html")


@bp.get("/sharing")
@actor_required
def consents() -> str:
    """Who I share with."""
    return render_template("citizen/home.html")


@bp.get("/who-has-seen-it")
@actor_required
def access() -> str:
    """Every time my information was used."""
    return render_template("citizen/home.html")


@bp.get("/about-the-record")
def about_ledger() -> str:
    """How the record of every use works, in plain words."""
    return render_template("citizen/about_ledger.html")
