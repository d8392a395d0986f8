"""Support workers: the people who invited them, choosing who to act for, and codes.

A worker sees only the people with a live delegation to them. Acting for someone is a choice
stored on the server-side session, checked against a live delegation every time.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from consent.actors import active_delegation
from consent.delegations import delegations_for_worker
from consent.invitations import accept_invitation
from consent.models import Delegation
from vault.accounts import normalise_email
from vault.errors import InvalidValue, VaultError
from vault.records import current_data_points
from vault.signin import issue_link
from vault.signin_models import WebSession
from web.auth import link_url
from web.helpers_pages import scope_words
from web.mail import send_email
from web.signin_state import signed_in_required
from web.state import unit_of_work
from web.worker_forms import CodeForm, ConfirmForm, StartAccountForm

bp = Blueprint("workers", __name__)


def _set_acting_for(citizen_id: str | None) -> None:
    with unit_of_work() as (db, _vault):
        found = db.get(WebSession, g.web_session.token_hash)
        if found is not None:
            found.acting_for = citizen_id
            db.add(found)
    g.acting_for = citizen_id


def _name(db: Any, vault: Any, delegation: Delegation) -> str:
    if "view" not in delegation.scopes:
        return _("Someone who asked for your help")
    try:
        names = current_data_points(db, vault, delegation.citizen_id, ["identity.name"])
    except VaultError:
        names = []
    return str(names[0].value) if names else _("Someone who asked for your help")


def send_signup_invite(email: str) -> str:
    """Email someone a one-time link to finish signing up; return the link."""
    email = normalise_email(email)
    with unit_of_work() as (db, vault):
        token = issue_link(db, vault, email, "invite")
    link = link_url(token)
    send_email(
        email,
        _("Finish signing up to Tell Once"),
        _(
            "Someone started a Tell Once account for you.\n\n"
            "To finish signing up, open this link:\n%(link)s\n\n"
            "The link works once, for a short time. If it has stopped working, ask for a "
            "new one.\n\nIf you did not ask for this, you can ignore this email.",
            link=link,
        ),
    )
    return link


@bp.before_app_request
def note_helpers() -> None:
    """A citizen who also helps someone gets "People I help" in their menu."""
    account = g.get("account")
    if account is None or account.citizen_id is None or g.get("acting_for"):
        return
    with unit_of_work() as (db, vault):
        g.helps_anyone = bool(delegations_for_worker(db, account.id, vault.clock()))


@bp.get("/people")
@signed_in_required
def people() -> str:
    """The people this worker may help."""
    with unit_of_work() as (db, vault):
        now = vault.clock()
        live = delegations_for_worker(db, g.account.id, now)
        rows = [
            {
                "id": d.id,
                "citizen_id": d.citizen_id,
                "name": _name(db, vault, d),
                "scopes": scope_words(d.scopes),
                "ends": d.ends_at,
            }
            for d in sorted(live, key=lambda d: d.created_at)
        ]
    if g.acting_for and g.acting_for not in {r["citizen_id"] for r in rows}:
        # Their help has ended: stop acting for that person, everywhere, at once.
        _set_acting_for(None)
        flash(_("You can no longer act for the person you were helping."))
    return render_template(
        "workers/people.html", people=rows, acting_for=g.acting_for, form=ConfirmForm()
    )


@bp.post("/people/<delegation_id>/act")
@signed_in_required
def act(delegation_id: str) -> Any:
    """Start acting for one person who invited this worker."""
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("workers.people"))
    with unit_of_work() as (db, vault):
        found = db.get(Delegation, delegation_id)
        live = (
            active_delegation(db, found.citizen_id, g.account.id, vault.clock())
            if found is not None and found.worker_account_id == g.account.id
            else None
        )
    if live is None:
        return redirect(url_for("workers.people"))
    _set_acting_for(live.citizen_id)
    return redirect(url_for("citizen.home"))


@bp.post("/people/stop")
@signed_in_required
def stop() -> Any:
    """Stop acting for anyone."""
    if ConfirmForm().validate_on_submit():
        _set_acting_for(None)
    return redirect(url_for("workers.people"))


@bp.route("/help/accept", methods=["GET", "POST"])
@signed_in_required
def accept() -> Any:
    """Use a code someone gave you, to become their helper."""
    form = CodeForm()
    if request.method == "GET" and request.args.get("code"):
        form.code.data = request.args["code"][:40]
    if form.validate_on_submit():
        try:
            with unit_of_work() as (db, vault):
                accept_invitation(db, vault, form.code.data or "", g.account.id)
        except InvalidValue as exc:
            form.code.errors = [_(exc.message)]
        else:
            flash(_("You can now help this person. Choose them below to act for them."))
            return redirect(url_for("workers.people"))
    return render_template("workers/accept.html", form=form)


@bp.route("/people/start-account", methods=["GET", "POST"])
@signed_in_required
def start_account() -> Any:
    """Start an account for someone: they finish it with the link we email them."""
    if g.acting_for:
        flash(_("Stop acting for the person first."))
        return redirect(url_for("workers.people"))
    form = StartAccountForm()
    if form.validate_on_submit():
        send_signup_invite(form.email.data or "")
        # The same answer whether or not they already have an account.
        flash(_("We sent a link to finish signing up."))
        return redirect(url_for("workers.people"))
    return render_template("workers/start_account.html", form=form)
