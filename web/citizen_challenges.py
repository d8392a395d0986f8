"""Saying something is wrong: one question, check your answer, then we tell the department.

The journey starts beside a data point (``?key=...&version=...``) or the decision itself.
The person's words wait in the Flask session between the question and the check page: never
in the address bar, and nothing is saved until they press "Send".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Response, abort, redirect, request, session, url_for
from flask_babel import gettext as _

from consent.challenges import (
    ChallengeView,
    challenge_for_citizen,
    challenges_for_citizen,
    open_challenge,
)
from consent.decision_views import DecisionView, UsedDataPoint, decision_for_citizen
from vault.errors import InvalidValue
from web.citizen_base import actor, allowed, bp, department_name, render
from web.citizen_forms import ConfirmForm
from web.decision_forms import WhatIsWrongForm
from web.signin_state import actor_required
from web.state import unit_of_work

DRAFT = "challenge_draft"


@dataclass(frozen=True)
class WrongThing:
    """What the person says is wrong: a decision, or one data point version it used."""

    decision: DecisionView
    point: UsedDataPoint | None

    @property
    def target(self) -> tuple[str, int] | None:
        """(key, version) of the data point, or None for the decision itself."""
        return (self.point.key, self.point.version) if self.point else None

    @property
    def args(self) -> dict[str, Any]:
        """URL arguments that keep the journey on the same decision and data point."""
        found: dict[str, Any] = {"decision_id": self.decision.id}
        if self.point is not None:
            found.update(key=self.point.key, version=self.point.version)
        return found

    def draft(self) -> str | None:
        """The words this same person wrote about this same thing, if any."""
        draft = session.get(DRAFT) or {}
        same = (
            draft.get("by") == actor().label
            and draft.get("decision_id") == self.decision.id
            and draft.get("target") == (list(self.target) if self.target else None)
        )
        return str(draft["reason"]) if same and draft.get("reason") else None

    def keep_draft(self, reason: str) -> None:
        """Keep the words until the check page sends them."""
        session[DRAFT] = {
            # Tied to who wrote it: a shared browser never sends one person's words for another.
            "by": actor().label,
            "decision_id": self.decision.id,
            "target": list(self.target) if self.target else None,
            "reason": reason,
        }


def _wrong_thing(decision_id: str) -> WrongThing:
    """The decision (and data point, from ``?key=&version=``); 404 if not the person's."""
    with unit_of_work() as (db, vault):
        decision = decision_for_citizen(db, vault, actor().citizen_id, decision_id)
        department_name(decision.department_id, db)
    key, version = request.args.get("key"), request.args.get("version", "")
    if not key:
        return WrongThing(decision, None)
    if not version.isdigit() or len(version) > 9:
        abort(404)
    used = {(p.key, p.version): p for p in decision.data_points_used}
    point = used.get((key, int(version)))
    if point is None:
        abort(404)  # the decision did not use it
    return WrongThing(decision, point)


def _page(template: str, wrong: WrongThing, **context: Any) -> str:
    return render(template, decision=wrong.decision, point=wrong.point, args=wrong.args, **context)


@bp.route("/decisions/<decision_id>/wrong", methods=["GET", "POST"])
@actor_required
def challenge_start(decision_id: str) -> str | Response:
    """What is wrong? One box, in the person's own words."""
    allowed("challenge")
    wrong = _wrong_thing(decision_id)
    form = WhatIsWrongForm()
    if form.validate_on_submit():
        wrong.keep_draft(form.answer())
        return redirect(url_for("citizen.challenge_check", **wrong.args))  # type: ignore[return-value]
    if not form.is_submitted():
        form.reason.data = wrong.draft()
    return _page("citizen/challenge_start.html", wrong, form=form)


@bp.route("/decisions/<decision_id>/wrong/check", methods=["GET", "POST"])
@actor_required
def challenge_check(decision_id: str) -> str | Response:
    """Check your answer, then send it: the department is told and must answer in a month."""
    allowed("challenge")
    wrong = _wrong_thing(decision_id)
    reason = wrong.draft()
    if reason is None:
        return redirect(url_for("citizen.challenge_start", **wrong.args))  # type: ignore[return-value]
    if ConfirmForm().validate_on_submit():
        try:
            with unit_of_work() as (db, vault):
                challenge_id = open_challenge(
                    db,
                    vault,
                    actor(),
                    decision_id=wrong.decision.id,
                    reason=reason,
                    data_point=wrong.target,
                ).id
        except InvalidValue as problem:
            # Already being checked (or the words broke a rule): say so on the question page.
            form = WhatIsWrongForm(formdata=None, data={"reason": reason})
            form.reason.errors = [problem.message]
            return _page("citizen/challenge_start.html", wrong, form=form)
        session.pop(DRAFT, None)
        return redirect(  # type: ignore[return-value]
            url_for("citizen.challenge_sent", challenge_id=challenge_id)
        )
    return _page("citizen/challenge_check.html", wrong, reason=reason)


def _own_challenge(challenge_id: str) -> ChallengeView:
    with unit_of_work() as (db, vault):
        found = challenge_for_citizen(db, vault, actor().citizen_id, challenge_id)
        department_name(found.department_id, db)
    return found


@bp.get("/challenges/<challenge_id>/sent")
@actor_required
def challenge_sent(challenge_id: str) -> str:
    """Sent: who we told, and the date they must answer by."""
    allowed("view")
    return render("citizen/challenge_sent.html", challenge=_own_challenge(challenge_id))


@bp.get("/challenges")
@actor_required
def challenges() -> str:
    """Everything the person said is wrong, newest first, with where each one is up to."""
    allowed("view")
    with unit_of_work() as (db, vault):
        found = challenges_for_citizen(db, vault, actor().citizen_id)
        for challenge in found:
            department_name(challenge.department_id, db)
    return render("citizen/challenges.html", challenges=found)


@bp.get("/challenges/<challenge_id>")
@actor_required
def challenge(challenge_id: str) -> str:
    """One challenge: the person's own words and the department's answer."""
    allowed("view")
    return render("citizen/challenge_detail.html", challenge=_own_challenge(challenge_id))


@bp.app_template_global()
def challenge_status_words(status: str) -> str:
    """Where a challenge is up to, in words people use."""
    words = {
        "open": _("Being checked"),
        "corrected": _("Corrected"),
        "upheld": _("They kept it the same"),
        "decision_changed": _("Decision changed"),
    }
    return words.get(status, status)
