"""The citizen's pages: home, story, information, sharing, who has seen it, download, delete.

The routes live in a few modules by meaning (story, information, sharing, account), all on
the one ``citizen`` blueprint defined in ``web.citizen_base``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import render_template, url_for
from flask_babel import gettext as _

from consent.access import access_events_for_citizen
from consent.citizen_notices import KIND_LABELS, recent_notices
from consent.grants import grants_for_citizen
from vault.records import current_data_points
from web import (
    citizen_account,
    citizen_challenges,
    citizen_decisions,
    citizen_format,
    citizen_info,
    citizen_sharing,
    citizen_story,
)
from web.citizen_base import actor, allowed, bp, department_name, render
from web.signin_state import actor_required
from web.state import unit_of_work

__all__ = [
    "bp",
    "citizen_account",
    "citizen_challenges",
    "citizen_decisions",
    "citizen_format",
    "citizen_info",
    "citizen_sharing",
    "citizen_story",
]

NEWS_ITEMS = 6
# Where each kind of notice is shown in full: the page, and the argument its id fills.
NOTICE_LINKS = {
    "decision_recorded": ("citizen.decision", "decision_id"),
    "decision_reviewed": ("citizen.decision", "decision_id"),
    "challenge_opened": ("citizen.challenge", "challenge_id"),
    "challenge_answered": ("citizen.challenge", "challenge_id"),
}


@dataclass(frozen=True)
class News:
    """One line of 'what's new'."""

    at: datetime
    text: str
    href: str


def whats_new(citizen_id: str) -> list[News]:
    """The latest few things that happened: uses, sharing, corrections, decisions, challenges."""
    news: list[News] = []
    with unit_of_work() as (session, vault):
        for event in access_events_for_citizen(session, citizen_id, limit=NEWS_ITEMS):
            who = department_name(event.department_id, session)
            text = (
                _("%(who)s saw your information.", who=who)
                if event.result == "served"
                else _("%(who)s asked for your information and was refused.", who=who)
            )
            news.append(News(event.at, text, url_for("citizen.access")))
        for grant in grants_for_citizen(session, citizen_id)[:NEWS_ITEMS]:
            who = department_name(grant.department_id, session)
            href = url_for("citizen.consents")
            news.append(
                News(grant.created_at, _("You started sharing with %(who)s.", who=who), href)
            )
            if grant.revoked_at is not None:
                text = _("Sharing with %(who)s was stopped.", who=who)
                news.append(News(grant.revoked_at, text, href))
        for notice in recent_notices(session, citizen_id, limit=NEWS_ITEMS):
            if notice.kind in NOTICE_LINKS:
                page, argument = NOTICE_LINKS[notice.kind]
                ids: dict[str, Any] = {argument: notice.ref_id}
                href = url_for(page, **ids)
                news.append(News(notice.created_at, _(KIND_LABELS[notice.kind]) + ".", href))
        for point in current_data_points(session, vault, citizen_id):
            if point.version > 1:
                href = url_for("citizen.information_history", key=point.key)
                text = _("%(label)s was changed.", label=_(point.label))
                news.append(News(point.recorded_at, text, href))
    return sorted(news, key=lambda n: n.at, reverse=True)[:NEWS_ITEMS]


@bp.get("/")
@actor_required
def home() -> str:
    """What's new."""
    allowed("view")
    return render("citizen/home.html", news=whats_new(actor().citizen_id))


@bp.get("/about-the-record")
def about_ledger() -> str:
    """How the record of every use works, in plain words."""
    return render_template("citizen/about_ledger.html")
