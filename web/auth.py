"""Signing in without passwords: one-time email links and passkeys.

The sign-in page asks one question (an email address) and always gives the same answer,
whether or not there is an account: a link to sign in, or a link to finish signing up.
"""

from __future__ import annotations

import base64
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlmodel import Session, col

from vault.accounts import account_email, create_account, find_account
from vault.citizens import create_citizen
from vault.errors import InvalidValue
from vault.models import Account
from vault.records import record_data_point
from vault.services import Vault
from vault.signin import (
    LINK_TTL,
    PASSKEY_FAILED,
    RelyingParty,
    add_passkey,
    authentication_options,
    issue_link,
    link_purpose,
    list_passkeys,
    redeem_link_details,
    registration_options,
    remove_passkey,
    use_passkey,
)
from web.auth_forms import ConfirmForm, EmailForm, LinkForm
from web.mail import send_email
from web.security_headers import cookie_named, over_https
from web.signin_state import (
    destination_after_sign_in,
    sign_in,
    sign_out,
    signed_in_required,
)
from web.state import unit_of_work

bp = Blueprint("auth", __name__)
CHALLENGE_COOKIE = "tellonce_webauthn"
CHALLENGE_SECONDS = 300
# One-time secrets that travel in URLs: sign-in link tokens, helper invitation codes and
# pushed-request URIs.
_TOKEN_IN_URL = re.compile(r"\b(token|code|request_uri)=[^\s&\"]+")


class RedactLinkTokens(logging.Filter):
    """Keep one-time link tokens out of request logs (the server logs every query string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "=" in message and _TOKEN_IN_URL.search(message):
            record.msg, record.args = _TOKEN_IN_URL.sub(r"\1=[hidden]", message), ()
        return True


_redactor = RedactLinkTokens()
for _name in ("werkzeug", "gunicorn.access"):
    if _redactor not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_redactor)


def link_url(token: str) -> str:
    """The full address of an emailed link (the token is in it; never log it)."""
    return current_app.config["BASE_URL"] + url_for("auth.link", token=token)


def _email_text(purpose: str, url: str) -> tuple[str, str]:
    minutes = int(LINK_TTL.total_seconds() // 60)
    if purpose == "sign_in":
        subject = _("Your link to sign in to Tell Once")
        opening = _("Use this link to sign in to Tell Once:")
    else:
        subject = _("Finish making your Tell Once account")
        opening = _("Use this link to finish making your Tell Once account:")
    body = "\n\n".join(
        [
            opening,
            url,
            _("The link works once, for %(minutes)d minutes.", minutes=minutes),
            _("If you did not ask for this, you can ignore this email."),
        ]
    )
    return subject, body + "\n"


def send_link(session: Session, vault: Vault, email: str, purpose: str) -> None:
    """Make a one-time link for ``purpose`` and email it (used by sign-in and invitations)."""
    token = issue_link(session, vault, email, purpose)
    subject, body = _email_text(purpose, link_url(token))
    send_email(email, subject, body)


@bp.route("/sign-in", methods=["GET", "POST"])
def start() -> Any:
    """Ask for an email address; send a sign-in link, or a sign-up link if there is no account."""
    form = EmailForm()
    if form.validate_on_submit():
        email = str(form.email.data)
        with unit_of_work() as (session, vault):
            # The same work either way (look up, make a link, write an email), so the
            # answer's timing does not tell whether an account exists.
            known = find_account(session, vault, email) is not None
            send_link(session, vault, email, "sign_in" if known else "sign_up")
        return redirect(url_for("auth.check_email"), code=303)
    status = 400 if form.errors else 200
    return render_template("auth/start.html", form=form), status


@bp.get("/sign-in/check-your-email")
def check_email() -> str:
    """The one answer everyone gets after asking for a link."""
    return render_template("auth/check_email.html", minutes=int(LINK_TTL.total_seconds() // 60))


def _dead_link() -> tuple[str, int]:
    return render_template("auth/dead_link.html"), 400


@bp.route("/sign-in/link", methods=["GET", "POST"])
def link() -> Any:
    """An emailed link: show a button first (mail scanners open links), then use it up."""
    form = LinkForm()
    if request.method == "GET":
        token = str(request.args.get("token", ""))
        with unit_of_work() as (session, vault):
            purpose = link_purpose(session, vault, token)
        if purpose is None:
            return _dead_link()
        form.token.data = token
        # Its requests never carry the token in a Referer: every answer's Referrer-Policy is
        # strict-origin (web/security_headers.py). Not no-referrer: over https, Flask-WTF
        # refuses a form sent without a Referer, so the button would never work.
        return Response(render_template("auth/link.html", form=form, purpose=purpose))
    if not form.validate_on_submit():
        return _dead_link()
    account_id = _redeem(str(form.token.data))
    if account_id is None:
        return _dead_link()
    return sign_in(account_id, redirect(destination_after_sign_in(), code=303))  # type: ignore[arg-type]


def _redeem(token: str) -> str | None:
    """Use up a link; return the account to sign in (made now for a sign-up), or None."""
    with unit_of_work() as (session, vault):
        purpose = link_purpose(session, vault, token)
        if purpose is None:
            return None
        try:
            used = redeem_link_details(session, vault, token, purpose)
        except InvalidValue:
            return None
        account = session.execute(
            select(Account).where(col(Account.email_lookup) == used.email_lookup)
        ).scalar_one_or_none()
        if account is not None:
            # A sign-up or invitation link for an address that now has an account proves
            # the same thing a sign-in link does: the person reads that inbox.
            return account.id
        if purpose == "sign_in":
            return None  # the account was deleted after the link was sent
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, used.email, citizen_id=citizen.id)
        record_data_point(
            session,
            vault,
            citizen.id,
            "contact.email",
            used.email,
            recorded_by=f"citizen:{account.id}",
        )
        return account.id


@bp.route("/sign-out", methods=["GET", "POST"])
def sign_out_page() -> Response:
    """Sign out: the session ends on the server."""
    if g.get("account") is not None:
        flash(_("You have signed out."))
    return sign_out(redirect(url_for("auth.start")))  # type: ignore[arg-type]


@bp.errorhandler(CSRFError)
def form_expired(_exc: CSRFError) -> Any:
    """A form sent without its hidden token (or an old one): say so plainly."""
    message = _("This page timed out. Go back, reload the page and try again.")
    if request.is_json or request.path.endswith(("/options", "/verify")):
        return jsonify({"error": "csrf", "message": message}), 400
    return render_template("auth/form_expired.html", message=message), 400


# ---- Passkeys ------------------------------------------------------------------------------


def _relying_party() -> RelyingParty:
    parts = urlsplit(current_app.config["BASE_URL"])
    return RelyingParty(
        rp_id=parts.hostname or "localhost", origin=f"{parts.scheme}://{parts.netloc}"
    )


def _challenges() -> URLSafeTimedSerializer:
    with unit_of_work() as (_session, vault):
        secret = vault.secret("webauthn-challenge")
    return URLSafeTimedSerializer(secret, salt="tellonce/webauthn-challenge/v1")


def _with_challenge(options_json: str, challenge: bytes, kind: str) -> Response:
    """Answer with the options, keeping the challenge in a short-lived signed cookie."""
    response = Response(options_json, mimetype="application/json")
    account = g.get("account")
    value = _challenges().dumps(
        {
            "c": base64.urlsafe_b64encode(challenge).decode(),
            "k": kind,
            "a": account.id if account is not None else None,
        }
    )
    response.set_cookie(
        cookie_named(CHALLENGE_COOKIE),
        value,
        max_age=CHALLENGE_SECONDS,
        httponly=True,
        secure=over_https(),
        samesite="Strict",
        path="/",
    )
    return response


def _forget_challenge(response: Response) -> None:
    # Deleted with the attributes it was set with: a browser ignores a __Host- cookie's
    # deletion that is not Secure, and the cookie would outlive its use.
    response.delete_cookie(
        cookie_named(CHALLENGE_COOKIE),
        path="/",
        secure=over_https(),
        httponly=True,
        samesite="Strict",
    )


def _challenge(kind: str) -> bytes | None:
    """The challenge this browser was given for ``kind``, if it is fresh and for this account."""
    try:
        data = _challenges().loads(
            request.cookies.get(cookie_named(CHALLENGE_COOKIE), ""), max_age=CHALLENGE_SECONDS
        )
    except BadSignature:
        return None
    account = g.get("account")
    if not isinstance(data, dict) or data.get("k") != kind:
        return None
    if kind == "register" and (account is None or data.get("a") != account.id):
        return None
    return base64.urlsafe_b64decode(str(data.get("c", "")))


def _refused(message: str) -> Response:
    response = jsonify({"error": "passkey_refused", "message": message})
    response.status_code = 400
    _forget_challenge(response)
    return response


def _credential() -> dict[str, Any] | None:
    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else None


@bp.post("/sign-in/passkey/options")
def passkey_options() -> Response:
    """Options for signing in with a passkey (the browser's passkey picker needs them)."""
    options_json, challenge = authentication_options(_relying_party())
    return _with_challenge(options_json, challenge, "sign_in")


@bp.post("/sign-in/passkey/verify")
def passkey_verify() -> Response:
    """Check a passkey sign-in, then start a new session."""
    challenge = _challenge("sign_in")
    credential = _credential()
    if challenge is None or credential is None:
        return _refused(PASSKEY_FAILED)
    try:
        with unit_of_work() as (session, vault):
            account_id = use_passkey(session, vault, _relying_party(), credential, challenge)
    except InvalidValue as exc:
        return _refused(exc.message)
    response = jsonify({"redirect": destination_after_sign_in()})
    _forget_challenge(response)
    return sign_in(account_id, response)


@bp.get("/passkeys")
@signed_in_required
def passkeys() -> str:
    """The passkeys on this account: see them, add one, remove one."""
    with unit_of_work() as (session, _vault):
        found = list_passkeys(session, g.account.id)
    return render_template("auth/passkeys.html", passkeys=found)


@bp.post("/passkeys/options")
@signed_in_required
def passkey_register_options() -> Response:
    """Options for adding a passkey to this account."""
    with unit_of_work() as (session, vault):
        name = account_email(vault, g.account)
        options_json, challenge = registration_options(
            session, _relying_party(), g.account.id, name
        )
    return _with_challenge(options_json, challenge, "register")


@bp.post("/passkeys/verify")
@signed_in_required
def passkey_register_verify() -> Response:
    """Check and keep a new passkey."""
    challenge = _challenge("register")
    credential = _credential()
    if challenge is None or credential is None:
        return _refused(PASSKEY_FAILED)
    try:
        with unit_of_work() as (session, vault):
            add_passkey(session, vault, _relying_party(), g.account.id, credential, challenge)
    except InvalidValue as exc:
        return _refused(exc.message)
    flash(_("Your passkey is added. Next time, you can sign in with it."))
    response = jsonify({"redirect": url_for("auth.passkeys")})
    _forget_challenge(response)
    return response


@bp.route("/passkeys/<passkey_id>/remove", methods=["GET", "POST"])
@signed_in_required
def passkey_remove(passkey_id: str) -> Any:
    """Ask, then remove one passkey."""
    form = ConfirmForm()
    # Templates are rendered after the transaction ends: rendering opens its own (the
    # "acting for" banner), which would wait 30 s on this one's SQLite write lock, then fail.
    with unit_of_work() as (session, _vault):
        mine = {p.id: p for p in list_passkeys(session, g.account.id)}
        passkey = mine.get(passkey_id)
        removed = passkey is not None and form.validate_on_submit()
        if removed:
            remove_passkey(session, g.account.id, passkey_id)
    if passkey is None:
        return render_template("auth/not_found.html"), 404
    if removed:
        flash(_("The passkey is removed."))
        return redirect(url_for("auth.passkeys"), code=303)
    return render_template("auth/remove_passkey.html", form=form, passkey=passkey)
