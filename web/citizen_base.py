"""What every citizen page shares: the blueprint, the one scope check, and error pages.

A support worker uses the same pages as the person they help, within the scopes the person
gave them. Every page asks ``allowed`` (the one place the rule is applied) before it reads
or changes anything.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, make_response, render_template
from flask_babel import gettext as _
from sqlmodel import Session
from werkzeug.exceptions import abort

from connectors.models import Department
from consent.actors import Actor, authorise
from consent.errors import NotAllowed
from vault.errors import CitizenErased, NotFound
from web.state import unit_of_work

bp = Blueprint("citizen", __name__)

# Only the person themselves may do these, never a helper acting for them.
CITIZEN_ONLY = "citizen_only"


def actor() -> Actor:
    """The actor of this request (set by ``actor_required``)."""
    found = g.actor
    assert isinstance(found, Actor)
    return found


def is_worker() -> bool:
    """Say whether a support worker is acting for someone on this request."""
    return actor().kind == "worker"


def cannot_for_someone() -> Response:
    """The plain page a helper sees when they try something only the person can do."""
    return make_response(render_template("citizen/cannot.html"), 403)


def allowed(scope: str) -> None:
    """Stop the request with a 403 page unless the actor may act with ``scope``.

    ``CITIZEN_ONLY`` means only the person themselves. Every other scope is checked
    against the helper's live delegation by ``consent.actors.authorise``.
    """
    who = actor()
    if scope == CITIZEN_ONLY:
        if who.kind != "citizen":
            abort(cannot_for_someone())
        return
    try:
        with unit_of_work() as (session, vault):
            authorise(session, who, scope, vault.clock())
    except NotAllowed:
        abort(cannot_for_someone())


@bp.app_template_global()
def actor_may(scope: str) -> bool:
    """Whether to offer an action: a link a helper cannot use is not shown to them.

    This only hides links; ``allowed`` is what refuses the action itself.
    """
    found = g.get("actor")
    if not isinstance(found, Actor):
        return False
    if found.kind == "citizen":
        return True
    return scope != CITIZEN_ONLY and scope in (g.get("delegation_scopes") or ())


def department_name(department_id: str, session: Session | None = None) -> str:
    """How a department is named on citizen pages: its registered name (its id if unknown).

    Names are looked up once per request: a page may name the same department many times.
    Code that is inside a transaction must pass its session: opening a second transaction
    would wait on the first one's lock under SQLite.
    """
    names: dict[str, str] = g.setdefault("department_names", {})
    if department_id not in names:
        if session is None:
            with unit_of_work() as (own_session, _vault):
                department = own_session.get(Department, department_id)
        else:
            department = session.get(Department, department_id)
        names[department_id] = department.name if department else department_id
    return names[department_id]


def person_name() -> str:
    """The name a helper sees for the person they act for."""
    from web.pages import acting_for_name

    return acting_for_name() or _("this person")


@bp.app_template_global()
def citizen_department_name(department_id: str) -> str:
    """Templates name departments through the same one function."""
    return department_name(department_id)


@bp.errorhandler(NotAllowed)
def _not_allowed(_exc: NotAllowed) -> Response:
    return cannot_for_someone()


@bp.errorhandler(404)
@bp.errorhandler(NotFound)
def _not_found(_exc: Exception) -> Response:
    return make_response(render_template("citizen/not_found.html"), 404)


@bp.errorhandler(CitizenErased)
def _erased(_exc: CitizenErased) -> Response:
    return make_response(render_template("citizen/gone.html"), 410)


def render(template: str, **context: Any) -> str:
    """Render a citizen page with who is acting available to the template."""
    return render_template(template, worker=is_worker(), **context)
