"""Sharing: who may have the person's information, stopping it, and every use of it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select, tuple_
from sqlmodel import Session, col

from consent.access import access_events_for_citizen
from consent.grants import (
    deletion_overdue,
    get_grant,
    grant_status,
    grants_for_citizen,
    revoke_grant_with_receipt,
)
from consent.models import AccessEvent, Grant
from web.citizen_base import actor, allowed, bp, department_name, render
from web.citizen_forms import ConfirmForm
from web.signin_state import actor_required
from web.state import unit_of_work

PAGE_SIZE = 20
# grant_status gives revoked / expired / not_started / active; people read three words.
STATUS_WORDS = {
    "active": "active",
    "not_started": "active",
    "revoked": "stopped",
    "expired": "ended",
}


def grant_state(grant: Grant, now: datetime) -> str:
    """``active``, ``stopped`` or ``ended``, as people read it."""
    return STATUS_WORDS[grant_status(grant, now)]


@bp.get("/sharing")
@actor_required
def consents() -> str:
    """Every permission the person has given, newest first."""
    allowed("view")
    with unit_of_work() as (session, vault):
        now = vault.clock()
        grants = [(g, grant_state(g, now)) for g in grants_for_citizen(session, actor().citizen_id)]
    # Kept past their data life with no word from the department that it was deleted.
    not_deleted = {g.id for g, _state in grants if deletion_overdue(g, now)}
    return render("citizen/sharing.html", grants=grants, not_deleted=not_deleted)


def _own_grant(session: Session, grant_id: str) -> Grant:
    grant = get_grant(session, grant_id)
    if grant.citizen_id != actor().citizen_id:
        abort(404)
    return grant


@bp.get("/sharing/<grant_id>/stop")
@actor_required
def stop_sharing(grant_id: str) -> str | Response:
    """Are you sure? One button to stop sharing."""
    allowed("answer_requests")
    with unit_of_work() as (session, vault):
        grant = _own_grant(session, grant_id)
        state = grant_state(grant, vault.clock())
    if state != "active":
        return redirect(url_for("citizen.consents"))  # type: ignore[return-value]
    return render("citizen/sharing_stop.html", grant=grant, form=None, confirm=ConfirmForm())


@bp.post("/sharing/<grant_id>/stop")
@actor_required
def stop_sharing_confirmed(grant_id: str) -> Response:
    """Stop sharing now: the grant ends, the ledger says so, the department is refused."""
    allowed("answer_requests")
    if not ConfirmForm().validate():
        abort(400)
    with unit_of_work() as (session, vault):
        grant = _own_grant(session, grant_id)
        revoke_grant_with_receipt(session, vault, actor(), grant_id)
        department = grant.department_id
    flash(_("You stopped sharing with %(who)s.", who=department_name(department)))
    return redirect(url_for("citizen.consents"))  # type: ignore[return-value]


def _newer_events(
    session: Session,
    citizen_id: str,
    department_id: str | None,
    after: tuple[datetime, str],
    limit: int,
) -> list[AccessEvent]:
    """The events just newer than ``after``, oldest first (for the 'Newer' link)."""
    # consent.access pages backwards only; this is its mirror image, on the same index.
    statement = select(AccessEvent).where(
        col(AccessEvent.citizen_id) == citizen_id,
        tuple_(col(AccessEvent.at), col(AccessEvent.id)) > tuple_(*after),
    )
    if department_id is not None:
        statement = statement.where(col(AccessEvent.department_id) == department_id)
    statement = statement.order_by(col(AccessEvent.at), col(AccessEvent.id)).limit(limit)
    return list(session.execute(statement).scalars().all())


def _cursor(prefix: str) -> tuple[datetime, str] | None:
    at, event_id = request.args.get(f"{prefix}_at"), request.args.get(f"{prefix}_id")
    if not at or not event_id or len(event_id) > 36:
        return None
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        abort(400)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)), event_id


def _page(
    session: Session, citizen_id: str, department: str | None
) -> tuple[list[AccessEvent], bool, bool]:
    """One page of events, newest first, and whether there are older and newer ones.

    One query a page: it asks for one row more than it shows, to know if there is more.
    """
    before, after = _cursor("before"), _cursor("after")
    if after is not None:
        rows = _newer_events(session, citizen_id, department, after, PAGE_SIZE + 1)
        return list(reversed(rows[:PAGE_SIZE])), True, len(rows) > PAGE_SIZE
    rows = access_events_for_citizen(
        session, citizen_id, department_id=department, limit=PAGE_SIZE + 1, before=before
    )
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE, before is not None


@bp.get("/who-has-seen-it")
@actor_required
def access() -> str:
    """Every use of the person's information, newest first, 20 a page."""
    allowed("view")
    citizen_id = actor().citizen_id
    department = request.args.get("department") or None
    with unit_of_work() as (session, _vault):
        events, older, newer = _page(session, citizen_id, department)
        grants = {g.id: g for g in grants_for_citizen(session, citizen_id)}
    departments = sorted({g.department_id for g in grants.values()})
    base: dict[str, Any] = {"department": department} if department else {}
    links: dict[str, str | None] = {"older": None, "newer": None}
    if events and older:
        last = events[-1]
        links["older"] = url_for(
            "citizen.access", before_at=last.at.isoformat(), before_id=last.id, **base
        )
    if events and newer:
        first = events[0]
        links["newer"] = url_for(
            "citizen.access", after_at=first.at.isoformat(), after_id=first.id, **base
        )
    return render(
        "citizen/access.html",
        events=events,
        grants=grants,
        departments=departments,
        department=department,
        links=links,
    )
