"""Download everything, and delete the account. Only the person themselves can do these."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, redirect, render_template, url_for
from sqlmodel import Session

from consent.access import access_events_for_citizen
from consent.delegations import delegations_for_citizen, revoke_delegation
from consent.grants import grant_status, grants_for_citizen, revoke_grant
from consent.models import AccessEvent, Delegation, Grant
from vault.lifecycle import erase_citizen, export_citizen
from vault.services import Vault
from web.citizen_base import CITIZEN_ONLY, actor, allowed, bp, render
from web.citizen_forms import DeleteForm
from web.signin_state import actor_required, sign_out
from web.state import unit_of_work

ALL = 1_000_000  # the download holds every access event, not a page of them


def _grant(grant: Grant, now: Any) -> dict[str, Any]:
    return {
        "id": grant.id,
        "department": grant.department_id,
        "purpose": grant.purpose_text,
        "information": grant.data_points,
        "story_topics": grant.story_topics,
        "case_reference": grant.case_reference,
        "starts": grant.starts_at.isoformat(),
        "ends": grant.ends_at.isoformat(),
        "keep_for_days": grant.data_life_days,
        "most_uses": grant.max_fetches,
        "times_used": grant.fetch_count,
        "status": grant_status(grant, now),
        "given_by": grant.given_by,
        "stopped_at": grant.revoked_at.isoformat() if grant.revoked_at else None,
    }


def _access(event: AccessEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "when": event.at.isoformat(),
        "department": event.department_id,
        "permission": event.grant_id,
        "officer": event.acting_officer,
        "case_reference": event.case_reference,
        "information": event.data_points,
        "story": event.story,
        "result": event.result,
        "reason": event.reason,
    }


def _delegation(delegation: Delegation) -> dict[str, Any]:
    return {
        "id": delegation.id,
        "helper_account": delegation.worker_account_id,
        "can": delegation.scopes,
        "given": delegation.created_at.isoformat(),
        "ends": delegation.ends_at.isoformat(),
        "stopped_at": delegation.revoked_at.isoformat() if delegation.revoked_at else None,
    }


def everything(session: Session, vault: Vault, citizen_id: str) -> dict[str, Any]:
    """All we hold about the person: the vault's export plus sharing, uses and helpers."""
    now = vault.clock()
    found = export_citizen(session, vault, citizen_id)
    found["your_sharing"] = [_grant(g, now) for g in grants_for_citizen(session, citizen_id)]
    found["who_has_seen_it"] = [
        _access(e) for e in access_events_for_citizen(session, citizen_id, limit=ALL)
    ]
    found["your_helpers"] = [_delegation(d) for d in delegations_for_citizen(session, citizen_id)]
    return found


@bp.get("/download")
@actor_required
def download() -> str:
    """Everything, as a page to read, with a link to the file."""
    allowed(CITIZEN_ONLY)
    with unit_of_work() as (session, vault):
        data = everything(session, vault, actor().citizen_id)
    return render("citizen/download.html", data=data)


@bp.get("/download/tell-once.json")
@actor_required
def download_json() -> Response:
    """Everything, as a JSON file to keep."""
    allowed(CITIZEN_ONLY)
    with unit_of_work() as (session, vault):
        data = everything(session, vault, actor().citizen_id)
    response = Response(json.dumps(data, indent=2, ensure_ascii=False), mimetype="application/json")
    response.headers["Content-Disposition"] = 'attachment; filename="tell-once.json"'
    return response


@bp.route("/delete", methods=["GET", "POST"])
@actor_required
def delete_account() -> str | Response:
    """A clear warning, a tick to say 'I understand', and a red button."""
    allowed(CITIZEN_ONLY)
    form = DeleteForm()
    if not form.validate_on_submit():
        return render("citizen/delete.html", form=form)
    who = actor()
    with unit_of_work() as (session, vault):
        # Stop all sharing and all helpers first, so the record says they ended.
        now = vault.clock()
        for grant in grants_for_citizen(session, who.citizen_id):
            if grant_status(grant, now) in ("active", "not_started"):
                revoke_grant(session, vault, who, grant.id)
        for delegation in delegations_for_citizen(session, who.citizen_id):
            if delegation.revoked_at is None:
                revoke_delegation(session, vault, who, delegation.id)
        erase_citizen(session, vault, who.citizen_id)
    return sign_out(redirect(url_for("citizen.deleted")))  # type: ignore[arg-type]


@bp.get("/deleted")
def deleted() -> str:
    """Shown once the account is gone (the person is signed out by now)."""
    return render_template("citizen/deleted.html")
