"""Decisions about me: what was decided, why, by whom, and exactly what it used about me.

Each data point a decision used is shown as the version the department was given, not as
it is now, so the person checks what was really used; a tag says if it has changed since.
Also here: how the person wants to hear news about decisions (citizen only).
"""

from __future__ import annotations

from flask import Response, flash, redirect, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from consent.citizen_notices import get_choice, set_choice
from consent.decision_views import decision_for_citizen, decision_history, decisions_for_citizen
from web.citizen_base import CITIZEN_ONLY, actor, allowed, bp, department_name, render
from web.decision_forms import NotificationsForm
from web.signin_state import actor_required
from web.state import unit_of_work

# The kind of each version of a decision, in words.
KIND_WORDS = {
    "original": _l("The first decision"),
    "adjusted": _l("Changed after a review"),
    "overturned": _l("Turned around after a review"),
    "upheld": _l("Kept the same after a review"),
}


@bp.get("/decisions")
@actor_required
def decisions() -> str:
    """Every decision about the person, as it stands now, newest first."""
    allowed("view")
    with unit_of_work() as (session, vault):
        found = decisions_for_citizen(session, vault, actor().citizen_id)
        for decision in found:
            department_name(decision.department_id, session)
    return render("citizen/decisions.html", decisions=found)


@bp.get("/decisions/<decision_id>")
@actor_required
def decision(decision_id: str) -> str:
    """Why this decision: what, why, who, what it used, and its history."""
    allowed("view")
    citizen_id = actor().citizen_id
    with unit_of_work() as (session, vault):
        shown = decision_for_citizen(session, vault, citizen_id, decision_id)
        history = decision_history(session, vault, citizen_id, shown.series_id)
        department_name(shown.department_id, session)
        for point in shown.data_points_used:
            # Values a department gave are named by that department.
            kind, _sep, who = point.source.partition(":")
            if kind == "department":
                department_name(who, session)
    newest = history[-1] if history else shown
    return render(
        "citizen/decisions_detail.html",
        decision=shown,
        newest=newest,
        history=history,
        kind_words=KIND_WORDS,
    )


@bp.route("/notifications", methods=["GET", "POST"])
@actor_required
def notifications() -> str | Response:
    """How we tell the person news: every time, once a day at most, or not by email."""
    allowed(CITIZEN_ONLY)
    who = actor()
    form = NotificationsForm()
    if form.validate_on_submit():
        with unit_of_work() as (session, vault):
            set_choice(session, vault, who, form.choice.data)
        flash(_("We saved how we tell you news."))
        return redirect(url_for("citizen.notifications"))  # type: ignore[return-value]
    if not form.is_submitted():
        with unit_of_work() as (session, _vault):
            form.choice.data = get_choice(session, who.citizen_id)
    return render("citizen/notifications.html", form=form)
