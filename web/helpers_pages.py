"""The citizen's "People helping me" pages: see, invite, change and remove helpers.

Only the person themselves may use these pages. A support worker acting for them is refused
with a plain page: a helper can never invite others or widen what they may do.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    session,
    url_for,
)
from flask_babel import gettext as _
from sqlmodel import Session

from consent.actors import SCOPE_LABELS, Actor
from consent.delegations import change_scopes, delegations_for_citizen, revoke_delegation
from consent.invitations import (
    create_invitation,
    find_open_invitation,
    open_invitations,
    revoke_invitation,
)
from consent.models import Delegation
from vault.accounts import account_email, get_account
from vault.errors import InvalidValue, NotFound, VaultError
from web.mail import send_email
from web.signin_state import actor_required
from web.state import services, unit_of_work
from web.worker_forms import ConfirmForm, ScopesForm, SendCodeForm, UntilForm

bp = Blueprint("helpers", __name__, url_prefix="/helpers")
F = TypeVar("F", bound=Callable[..., Any])
LONGEST = timedelta(days=365)


def citizen_only(view: F) -> F:
    """Only the person themselves: a helper acting for them gets a plain 403 page."""

    @wraps(view)
    @actor_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.actor.kind != "citizen":
            return make_response(render_template("helpers/refused.html"), 403)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def scope_words(scopes: list[str]) -> list[str]:
    """Each scope in plain, translated words."""
    return [_(SCOPE_LABELS[s]) for s in scopes if s in SCOPE_LABELS]


def _until(day: date) -> datetime:
    # Help lasts to the end of the chosen day.
    return datetime.combine(day, time(23, 59), tzinfo=UTC)


def _my_delegation(db: Session, actor: Actor, delegation_id: str, now: datetime) -> Delegation:
    found = db.get(Delegation, delegation_id)
    if (
        found is None
        or found.citizen_id != actor.citizen_id
        or found.revoked_at is not None
        or found.ends_at <= now
    ):
        raise NotFound("We could not find that helper.")
    return found


def _my_helper(delegation_id: str) -> tuple[Delegation, str] | None:
    """One of this citizen's live helpers and their email, or None if there is no such one."""
    try:
        with unit_of_work() as (db, vault):
            found = _my_delegation(db, g.actor, delegation_id, vault.clock())
            return found, account_email(vault, get_account(db, found.worker_account_id))
    except NotFound:
        return None


def _not_found() -> Response:
    return make_response(render_template("helpers/not_found.html"), 404)


@bp.get("")
@citizen_only
def list_helpers() -> str:
    """Everyone who can help me now, what they can do, and until when."""
    with unit_of_work() as (db, vault):
        now = vault.clock()
        rows = []
        for d in delegations_for_citizen(db, g.actor.citizen_id):
            if d.revoked_at is not None or d.ends_at <= now:
                continue
            email = account_email(vault, get_account(db, d.worker_account_id))
            rows.append(
                {"id": d.id, "email": email, "scopes": scope_words(d.scopes), "ends": d.ends_at}
            )
        codes = open_invitations(db, g.actor.citizen_id, now)
    return render_template("helpers/list.html", helpers=rows, codes=codes, form=None)


@bp.route("/invite", methods=["GET", "POST"])
@citizen_only
def invite_scopes() -> Any:
    """Step 1: what can they do for you?"""
    journey = session.get("invite", {})
    form = ScopesForm(data={"scopes": journey.get("scopes", [])})
    if form.validate_on_submit():
        session["invite"] = {**journey, "scopes": list(form.scopes.data or [])}
        return redirect(url_for("helpers.invite_until"))
    return render_template("helpers/invite_scopes.html", form=form)


def _check_day(form: UntilForm, today: date) -> date | None:
    day = form.ends_on.data
    if day is None:
        if not form.ends_on.errors:
            form.ends_on.errors = [_("Enter the date their help should end")]
        return None
    if day <= today:
        form.ends_on.errors = [_("The date must be in the future")]
        return None
    if day > today + LONGEST:
        form.ends_on.errors = [_("The date must be within one year from today")]
        return None
    return day


@bp.route("/invite/until", methods=["GET", "POST"])
@citizen_only
def invite_until() -> Any:
    """Step 2: until when?"""
    journey = session.get("invite", {})
    if not journey.get("scopes"):
        return redirect(url_for("helpers.invite_scopes"))
    saved = journey.get("ends_on")
    form = UntilForm(data={"ends_on": date.fromisoformat(saved) if saved else None})
    if form.is_submitted():
        form.validate()
        today = services().vault.clock().date()
        day = _check_day(form, today)
        if day is not None and not form.errors:
            session["invite"] = {**journey, "ends_on": day.isoformat()}
            return redirect(url_for("helpers.invite_check"))
    return render_template("helpers/invite_until.html", form=form)


@bp.route("/invite/check", methods=["GET", "POST"])
@citizen_only
def invite_check() -> Any:
    """Step 3: check your answers; saving shows the code, once."""
    journey = session.get("invite", {})
    if not journey.get("scopes") or not journey.get("ends_on"):
        return redirect(url_for("helpers.invite_scopes"))
    day = date.fromisoformat(journey["ends_on"])
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            with unit_of_work() as (db, vault):
                made = create_invitation(db, vault, g.actor, journey["scopes"], _until(day))
                expires = made.invitation.expires_at
        except InvalidValue:
            # The date went stale while they were on this page: ask for it again.
            return redirect(url_for("helpers.invite_until"))
        session.pop("invite", None)
        send = SendCodeForm(data={"code": made.code})
        # Shown once, straight from this answer: the code is never stored or redirected.
        return render_template(
            "helpers/invite_code.html", code=made.code, expires=expires, form=send
        )
    return render_template(
        "helpers/invite_check.html",
        form=form,
        scopes=scope_words(journey["scopes"]),
        ends=_until(day),
    )


@bp.post("/invite/send")
@citizen_only
def invite_send() -> Any:
    """Send the code to the helper by email (optional)."""
    form = SendCodeForm()
    code = form.code.data or ""
    try:
        with unit_of_work() as (db, vault):
            invitation = find_open_invitation(db, vault, code)
            expires = invitation.expires_at
            if invitation.citizen_id != g.actor.citizen_id:
                raise InvalidValue("not yours")
    except VaultError:
        return _not_found()
    if not form.validate_on_submit():
        return render_template("helpers/invite_code.html", code=code, expires=expires, form=form)
    link = current_app.config["BASE_URL"].rstrip("/") + url_for("workers.accept", code=code)
    send_email(
        form.email.data,
        _("Someone asked you to help them on Tell Once"),
        _(
            "Someone asked you to help them on Tell Once.\n\n"
            "Their code is %(code)s. It works for 7 days, once.\n\n"
            "Sign in and use the code here:\n%(link)s\n\n"
            "If you do not know who this is, you can ignore this email.",
            code=code,
            link=link,
        ),
    )
    flash(_("We sent the code by email."))
    return redirect(url_for("helpers.list_helpers"))


@bp.post("/codes/<invitation_id>/cancel")
@citizen_only
def cancel_code(invitation_id: str) -> Any:
    """Stop a code that nobody has used yet."""
    if not ConfirmForm().validate_on_submit():
        return redirect(url_for("helpers.list_helpers"))
    try:
        with unit_of_work() as (db, vault):
            revoke_invitation(db, vault, g.actor, invitation_id)
    except NotFound:
        return _not_found()
    flash(_("That code will not work now."))
    return redirect(url_for("helpers.list_helpers"))


@bp.route("/<delegation_id>/remove", methods=["GET", "POST"])
@citizen_only
def remove(delegation_id: str) -> Any:
    """Are you sure? Then the helper can no longer do anything for you."""
    mine = _my_helper(delegation_id)
    if mine is None:
        return _not_found()
    _found, email = mine
    form = ConfirmForm()
    if form.validate_on_submit():
        with unit_of_work() as (db, vault):
            revoke_delegation(db, vault, g.actor, delegation_id)
        flash(_("Your helper has been removed. They cannot do anything for you now."))
        return redirect(url_for("helpers.list_helpers"))
    return render_template("helpers/remove.html", form=form, email=email)


@bp.route("/<delegation_id>/change", methods=["GET", "POST"])
@citizen_only
def change(delegation_id: str) -> Any:
    """Choose again what this helper can do."""
    mine = _my_helper(delegation_id)
    if mine is None:
        return _not_found()
    found, email = mine
    form = ScopesForm(data={"scopes": list(found.scopes)})
    if form.validate_on_submit():
        session["change"] = {"id": delegation_id, "scopes": list(form.scopes.data or [])}
        return redirect(url_for("helpers.change_check", delegation_id=delegation_id))
    return render_template("helpers/change.html", form=form, email=email)


@bp.route("/<delegation_id>/change/check", methods=["GET", "POST"])
@citizen_only
def change_check(delegation_id: str) -> Any:
    """Check your answers, then the change is made."""
    journey = session.get("change", {})
    if journey.get("id") != delegation_id or not journey.get("scopes"):
        return redirect(url_for("helpers.change", delegation_id=delegation_id))
    mine = _my_helper(delegation_id)
    if mine is None:
        return _not_found()
    _found, email = mine
    form = ConfirmForm()
    if form.validate_on_submit():
        with unit_of_work() as (db, vault):
            change_scopes(db, vault, g.actor, delegation_id, journey["scopes"])
        session.pop("change", None)
        flash(_("You changed what your helper can do."))
        return redirect(url_for("helpers.list_helpers"))
    return render_template(
        "helpers/change_check.html",
        form=form,
        email=email,
        scopes=scope_words(journey["scopes"]),
        delegation_id=delegation_id,
    )
