"""My information: every fact with where it came from, one-question changes, and history.

Nothing is changed in place: saving a change records a new version, and the history page
lists every version. The answer travels from the form to the check page inside the page
(a hidden field), never in the address bar, and only the confirm button saves it.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _

from vault import catalogue
from vault.errors import InvalidValue
from vault.records import current_data_points, data_point_history, record_data_point
from web.citizen_base import actor, allowed, bp, render
from web.citizen_format import value_lines
from web.citizen_forms import AnswerForm, ConfirmForm, answer_form
from web.signin_state import actor_required
from web.state import unit_of_work


def _entry_or_404(key: str) -> catalogue.CatalogueEntry:
    if key not in catalogue.CATALOGUE:
        abort(404)
    return catalogue.CATALOGUE[key]


@bp.get("/information")
@actor_required
def information() -> str:
    """Every fact the person has given, by kind, and the kinds not given yet."""
    allowed("view")
    with unit_of_work() as (session, vault):
        points = current_data_points(session, vault, actor().citizen_id)
    given = {p.key for p in points}
    missing = [e for k, e in catalogue.CATALOGUE.items() if k not in given]
    return render("citizen/information.html", points=points, missing=missing)


@bp.get("/information/<key>/history")
@actor_required
def information_history(key: str) -> str:
    """Every version of one fact, newest first."""
    allowed("view")
    entry = _entry_or_404(key)
    with unit_of_work() as (session, vault):
        versions = data_point_history(session, vault, actor().citizen_id, key)
    return render("citizen/information_history.html", entry=entry, versions=versions)


def _show_form(entry: catalogue.CatalogueEntry, form: AnswerForm) -> str:
    return render("citizen/information_change.html", entry=entry, form=form)


@bp.route("/information/<key>/change", methods=["GET", "POST"])
@actor_required
def information_change(key: str) -> str | Response:
    """One question. A valid answer goes to the check page; nothing is saved yet."""
    allowed("manage_story")
    entry = _entry_or_404(key)
    form = answer_form(key)
    if request.method == "GET":
        with unit_of_work() as (session, vault):
            found = current_data_points(session, vault, actor().citizen_id, [key])
        if found:
            form.fill(found[0].value)
        return _show_form(entry, form)
    pending = request.form.get("answer")
    if request.form.get("change") and pending:
        # The "Change" button of the check page: show the form with the answer again.
        form = answer_form(key, formdata=None)
        form.fill(_pending_value(key, pending))
        return _show_form(entry, form)
    if not form.check_with_vault():
        return _show_form(entry, form)
    value = catalogue.validate_value(key, form.answer())
    return render(
        "citizen/information_check.html",
        entry=entry,
        lines=value_lines(key, value),
        answer=json.dumps(value),
        confirm=ConfirmForm(),
    )


def _pending_value(key: str, pending: str) -> Any:
    try:
        return catalogue.validate_value(key, json.loads(pending))
    except (ValueError, InvalidValue):
        abort(400)


@bp.get("/information/<key>/check")
@actor_required
def information_check_get(key: str) -> Response:
    """The check page is only ever the answer to a form: a plain visit goes back to it."""
    _entry_or_404(key)
    return redirect(url_for("citizen.information_change", key=key))  # type: ignore[return-value]


@bp.post("/information/<key>/check")
@actor_required
def information_save(key: str) -> Response:
    """The person said the answer is right: save it as a new version."""
    allowed("manage_story")
    entry = _entry_or_404(key)
    if not ConfirmForm().validate():
        abort(400)
    value = _pending_value(key, request.form.get("answer", ""))
    who = actor()
    source = "self" if who.kind == "citizen" else who.label
    with unit_of_work() as (session, vault):
        record_data_point(
            session, vault, who.citizen_id, key, value, recorded_by=who.label, source=source
        )
    flash(_("%(label)s is saved.", label=_(entry.label)))
    return redirect(url_for("citizen.information"))  # type: ignore[return-value]
