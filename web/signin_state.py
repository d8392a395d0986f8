"""Who is signed in, for this request: the server-side session behind the cookie.

A citizen acts in their own vault. A support worker picks a person who invited them and then
acts in that person's vault, within the delegation's scopes; every page says so.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, redirect, request, session, url_for

from consent.actors import Actor, active_delegation
from consent.actors import citizen as citizen_actor
from consent.actors import worker as worker_actor
from vault.models import Account
from vault.sessions import end_session, resume_session, start_session
from web.security_headers import over_https
from web.state import unit_of_work

F = TypeVar("F", bound=Callable[..., Any])


def cookie_name(app: Flask | None = None) -> str:
    """The session cookie's name: ``__Host-`` prefixed whenever we are served over https."""
    app = app or current_app
    return "__Host-tellonce" if over_https(app) else "tellonce"


def load_signed_in() -> None:
    """Before each request: find the live session (if any) and who it belongs to."""
    g.web_session = None
    g.account = None
    g.acting_for = None
    token = request.cookies.get(cookie_name())
    if not token:
        return
    with unit_of_work() as (session, vault):
        found = resume_session(session, vault, token)
        if found is None:
            return
        account = session.get(Account, found.account_id)
        if account is None:
            return
        g.web_session = found
        g.account = account
        g.acting_for = found.acting_for


def set_session_cookie(response: Response, token: str) -> Response:
    """Put a session token in the cookie, with every protective flag."""
    response.set_cookie(
        cookie_name(), token, httponly=True, secure=over_https(), samesite="Lax", path="/"
    )
    return response


def sign_in(account_id: str, response: Response) -> Response:
    """Start a fresh session (a new id, never a reused one) and set its cookie."""
    old = request.cookies.get(cookie_name())
    with unit_of_work() as (session, vault):
        end_session(session, vault, old)
        token = start_session(session, vault, account_id)
    return set_session_cookie(response, token)


def sign_out(response: Response) -> Response:
    """End the session on the server and clear the cookies (drafts in Flask's one too)."""
    with unit_of_work() as (db, vault):
        end_session(db, vault, request.cookies.get(cookie_name()))
    # An unsent challenge draft must not outlive the sign-in; the "signed out" message may.
    messages = session.get("_flashes")
    session.clear()
    if messages:
        session["_flashes"] = messages
    # Browsers ignore a __Host- cookie sent without Secure, its removal included.
    response.delete_cookie(
        cookie_name(), path="/", secure=over_https(), httponly=True, samesite="Lax"
    )
    return response


def current_actor() -> Actor | None:
    """The actor for this request: the citizen themselves, or a worker acting for someone."""
    account = g.get("account")
    if account is None:
        return None
    if g.get("acting_for"):
        return worker_actor(account.id, g.acting_for)
    if account.citizen_id:
        return citizen_actor(account.id, account.citizen_id)
    return None


# Only these pages may be returned to after signing in (never an address from outside).
RETURN_AFTER_SIGN_IN = ("/oauth/consent/",)


def remember_destination(path: str) -> None:
    """Come back to this page after signing in (only pages listed as safe to return to)."""
    if path.startswith(RETURN_AFTER_SIGN_IN) and "//" not in path:
        session["after_sign_in"] = path


def destination_after_sign_in() -> str:
    """Where to go once signed in: a remembered page, or home."""
    path = session.pop("after_sign_in", None)
    if isinstance(path, str) and path.startswith(RETURN_AFTER_SIGN_IN) and "//" not in path:
        return path
    return url_for("citizen.home")


def signed_in_required(view: F) -> F:
    """Send people who are not signed in to the sign-in page."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("account") is None:
            return redirect(url_for("auth.start"))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def actor_required(view: F) -> F:
    """Pages about a vault need an actor: a citizen, or a worker who has chosen a person."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("account") is None:
            remember_destination(request.path)
            return redirect(url_for("auth.start"))
        actor = current_actor()
        if actor is None:
            return redirect(url_for("workers.people"))
        if actor.kind == "worker":
            with unit_of_work() as (session, vault):
                live = active_delegation(session, actor.citizen_id, actor.account_id, vault.clock())
            if live is None:
                return redirect(url_for("workers.people"))
            g.delegation_scopes = list(live.scopes)
        g.actor = actor
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
