"""What every page template needs: the menu, and who a support worker is acting for."""

from __future__ import annotations

from typing import Any

from flask import g, request, url_for
from flask_babel import gettext as _

from consent.actors import active_delegation
from vault.errors import VaultError
from vault.records import current_data_points
from web.signin_state import current_actor
from web.state import unit_of_work


def _menu() -> list[dict[str, Any]]:
    actor = current_actor()
    if g.get("account") is None:
        return []
    items: list[tuple[str, str]] = []
    if actor is not None:
        items += [
            (_("Home"), url_for("citizen.home")),
            (_("My story"), url_for("citizen.story")),
            (_("My information"), url_for("citizen.information")),
            (_("Sharing"), url_for("citizen.consents")),
            (_("Who has seen it"), url_for("citizen.access")),
            (_("Decisions about me"), url_for("citizen.decisions")),
            (_("My challenges"), url_for("citizen.challenges")),
        ]
    if actor is not None and actor.kind == "citizen":
        items.append((_("People helping me"), url_for("helpers.list_helpers")))
    if actor is None or actor.kind == "worker" or g.get("helps_anyone"):
        items.append((_("People I help"), url_for("workers.people")))
    if actor is None or actor.kind == "citizen":
        items.append((_("Passkeys"), url_for("auth.passkeys")))
    items.append((_("Sign out"), url_for("auth.sign_out_page")))
    return [{"text": text, "href": href, "active": request.path == href} for text, href in items]


def acting_for_name() -> str | None:
    """The name of the person a support worker is acting for (None for a citizen)."""
    actor = current_actor()
    if actor is None or actor.kind != "worker":
        return None
    try:
        with unit_of_work() as (session, vault):
            # No banner once their help has ended, and no name without the "view" scope.
            live = active_delegation(session, actor.citizen_id, actor.account_id, vault.clock())
            if live is None:
                return None
            if "view" not in live.scopes:
                return _("someone who asked for your help")
            names = current_data_points(session, vault, actor.citizen_id, ["identity.name"])
    except VaultError:
        names = []
    return str(names[0].value) if names else _("this person")


def page_context() -> dict[str, Any]:
    """Template variables for every page."""
    return {"nav_items": _menu(), "acting_for_name": acting_for_name()}
