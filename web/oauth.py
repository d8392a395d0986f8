"""OAuth endpoints for departments, and the consent page where a person says yes or no.

The rules live in ``connectors``; this module only turns HTTP into ``HttpRequest`` and
``HttpResponse`` back into HTTP, and renders the consent page.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
)
from sqlmodel import Session

from connectors import par
from connectors.departments import get_department
from connectors.errors import ConnectorError, InvalidAuthorizationDetails
from connectors.grants import ConsentAnswer
from connectors.metadata import server_metadata
from connectors.models import PushedRequest
from connectors.pushed import RequestExpired, mark_answered, open_request, pending_request
from connectors.rar import granted_details, read_data_request, to_grant_request
from connectors.server import HttpRequest, HttpResponse, TellOnceServer
from consent.grants import give_grant
from consent.receipts import public_jwks
from vault.services import Vault
from web.citizen_base import actor, allowed, render
from web.oauth_consent import ConsentForm, ConsentView, consent_view
from web.security_headers import allow_form_target
from web.signin_state import actor_required
from web.state import unit_of_work

bp = Blueprint("oauth", __name__)
OPENED = "oauth_opened"  # the Flask session's list of requests this browser opened


def issuer() -> str:
    """Our issuer identifier: the base URL departments were told about."""
    return str(current_app.config["BASE_URL"]).rstrip("/")


def _http() -> HttpRequest:
    return HttpRequest(
        method=request.method,
        url=request.base_url,
        headers=request.headers,  # type: ignore[arg-type]
        form=request.form.to_dict(flat=False),
        dpop=request.headers.getlist("DPoP"),
    )


def _send(answer: HttpResponse) -> Response:
    response = jsonify(answer.body) if answer.body is not None else Response(status=answer.status)
    response.status_code = answer.status
    for name, value in answer.headers:
        response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _endpoint(call: str) -> Response:
    with unit_of_work() as (db, vault):
        server = TellOnceServer(db, vault, issuer())
        try:
            answer = getattr(server, call)(_http())
        except ConnectorError as error:
            answer = HttpResponse(
                error.status, {"error": error.error, "error_description": error.message}
            )
    return _send(answer)


@bp.get("/.well-known/oauth-authorization-server")
def metadata() -> Response:
    """RFC 8414 metadata."""
    return jsonify(server_metadata(issuer()))


@bp.get("/jwks.json")
def jwks() -> Response:
    """The keys that sign our receipts and notifications."""
    with unit_of_work() as (_db, vault):
        return jsonify(public_jwks(vault))


@bp.post("/oauth/par")
def pushed_authorization_request() -> Response:
    """RFC 9126: the department pushes its request first."""
    with unit_of_work() as (db, vault):
        server = TellOnceServer(db, vault, issuer())
        try:
            answer = par.push(server, _http())
        except ConnectorError as error:
            answer = HttpResponse(
                error.status, {"error": error.error, "error_description": error.message}
            )
    return _send(answer)


@bp.post("/oauth/token")
def token() -> Response:
    """Swap a code (or refresh token, or client credentials) for a DPoP-bound token."""
    return _endpoint("token_response")


@bp.post("/oauth/revoke")
def revoke() -> Response:
    """RFC 7009 revocation."""
    return _endpoint("revocation_response")


@bp.post("/oauth/introspect")
def introspect() -> Response:
    """RFC 7662 introspection."""
    return _endpoint("introspection_response")


@bp.get("/oauth/authorize")
def authorize() -> Any:
    """Open a pushed request (once) and send the person on to the consent page."""
    client_id = request.args.get("client_id", "")
    request_uri = request.args.get("request_uri", "")
    # No one is signed in necessarily here, so the page is rendered without an actor.
    if not request_uri or not client_id:
        return render_template("oauth/problem.html", reason="no_par"), 400
    try:
        with unit_of_work() as (db, vault):
            pushed = open_request(db, request_uri, client_id, vault.clock())
            pushed_id = pushed.id
    except RequestExpired:
        return render_template("oauth/problem.html", reason="expired"), 400
    opened = [*session.get(OPENED, [])[-4:], pushed_id]
    session[OPENED] = opened
    return redirect(f"/oauth/consent/{pushed_id}", code=303)


def _opened_here(pushed_id: str) -> bool:
    return pushed_id in session.get(OPENED, [])


@bp.route("/oauth/consent/<pushed_id>", methods=["GET", "POST"])
@actor_required
def consent(pushed_id: str) -> Any:
    """Who is asking, for what, why and for how long; then Share or Don't share."""
    allowed("answer_requests")
    if not _opened_here(pushed_id):
        return render("oauth/problem.html", reason="expired"), 400
    location = None
    try:
        with unit_of_work() as (db, vault):
            pushed = pending_request(db, pushed_id, vault.clock())
            allow_form_target(pushed.params["redirect_uri"])  # the answer goes back there
            view = consent_view(db, vault, pushed, actor().citizen_id)
            form = ConsentForm.for_view(view)
            if request.method == "POST" and form.validate_on_submit():
                location = _decide(db, vault, pushed, view, form)
    except RequestExpired:  # ended, or answered meanwhile (in another tab)
        return render("oauth/problem.html", reason="expired"), 400
    except InvalidAuthorizationDetails as error:
        # The person's own ticks left nothing to share: say so on the page, decide nothing.
        form.keep.errors = [error.message]
        return render("oauth/consent.html", view=view, form=form), 400
    # Pages are rendered after the transaction ends: rendering reads the database itself
    # (who a worker acts for), which would wait on this transaction's lock under SQLite.
    if location is None:
        return render("oauth/consent.html", view=view, form=form)
    session[OPENED] = [p for p in session.get(OPENED, []) if p != pushed_id]
    return redirect(location, code=303)


def _decide(
    db: Session, vault: Vault, pushed: PushedRequest, view: ConsentView, form: ConsentForm
) -> str:
    """Record the answer (once) and return where to send the browser back to."""
    mark_answered(db, pushed.id, vault.clock())
    server = TellOnceServer(db, vault, issuer())
    if form.decline.data:
        return server.answer(pushed.params, None)
    department = get_department(db, pushed.department_id)
    data_request = read_data_request(view.details, department)
    leave_out = [k for k in data_request.optional if k not in (form.keep.data or [])]
    given = give_grant(
        db,
        vault,
        actor(),
        to_grant_request(
            data_request,
            department.id,
            leave_out=leave_out,
            explicit_topics=form.explicit.data or [],
        ),
        issuer=issuer(),
    )
    return server.answer(
        pushed.params,
        ConsentAnswer(
            citizen_id=given.grant.citizen_id,
            grant_id=given.grant.id,
            dpop_jkt=pushed.params.get("dpop_jkt"),
            authorization_details=granted_details(given.grant),
        ),
    )
