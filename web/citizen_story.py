"""My story: one page per topic, written in the person's own words, checked before saving.

A helper never sees an "ask me each time" part, and cannot change one: changing it would
mean writing over words they are not allowed to read.
"""

from __future__ import annotations

from flask import Response, abort, flash, redirect, request, url_for
from flask_babel import gettext as _

from vault import catalogue
from vault.records import current_story, record_story_section, story_history
from web.citizen_base import actor, allowed, bp, is_worker, person_name, render
from web.citizen_forms import ConfirmForm, StoryForm
from web.signin_state import actor_required
from web.state import unit_of_work

PRIVATE = "ask_me_each_time"


def _topic_or_404(topic: str) -> tuple[str, str]:
    if topic not in catalogue.STORY_TOPICS:
        abort(404)
    label, prompt = catalogue.STORY_TOPICS[topic]
    return _(label), _(prompt)


def _current(topic: str) -> object | None:
    with unit_of_work() as (session, vault):
        found = current_story(session, vault, actor().citizen_id, [topic])
    return found[0] if found else None


@bp.get("/story")
@actor_required
def story() -> str:
    """Every topic of the story, with what is written so far."""
    allowed("view")
    with unit_of_work() as (session, vault):
        written = {s.topic: s for s in current_story(session, vault, actor().citizen_id)}
    topics = [
        {"topic": t, "label": _(label), "section": written.get(t)}
        for t, (label, _prompt) in catalogue.STORY_TOPICS.items()
    ]
    return render("citizen/story.html", topics=topics, private=PRIVATE, name=person_name())


@bp.get("/story/<topic>")
@actor_required
def story_topic(topic: str) -> str:
    """One topic: the current words and every earlier version."""
    allowed("view")
    label, prompt = _topic_or_404(topic)
    with unit_of_work() as (session, vault):
        versions = story_history(session, vault, actor().citizen_id, topic)
    current = next((v for v in versions if v.status == "current"), None)
    return render(
        "citizen/story_topic.html",
        topic=topic,
        label=label,
        prompt=prompt,
        current=current,
        versions=versions,
        private=PRIVATE,
        name=person_name(),
    )


def _refuse_private(topic: str) -> None:
    """A helper may not write over a private part they cannot read."""
    section = _current(topic)
    if is_worker() and section is not None and getattr(section, "sensitivity", "") == PRIVATE:
        allowed("citizen_only")


@bp.route("/story/<topic>/write", methods=["GET", "POST"])
@actor_required
def story_write(topic: str) -> str | Response:
    """Write or change one topic. A valid answer goes to the check page, not the vault."""
    allowed("manage_story")
    label, prompt = _topic_or_404(topic)
    _refuse_private(topic)
    form = StoryForm()
    if request.method == "GET":
        section = _current(topic)
        if section is not None:
            form.text.data = getattr(section, "text", "")
            form.sensitivity.data = getattr(section, "sensitivity", "normal")
    elif request.form.get("change"):
        pass  # the "Change" button of the check page: show the form with their answers
    elif form.validate():
        return render(
            "citizen/story_check.html",
            topic=topic,
            label=label,
            form=None,
            answers=form,
            confirm=ConfirmForm(),
            private=PRIVATE,
        )
    return render("citizen/story_write.html", topic=topic, label=label, prompt=prompt, form=form)


@bp.get("/story/<topic>/check")
@actor_required
def story_check_get(topic: str) -> Response:
    """The check page is only ever the answer to a form: a plain visit goes back to it."""
    _topic_or_404(topic)
    return redirect(url_for("citizen.story_write", topic=topic))  # type: ignore[return-value]


@bp.post("/story/<topic>/check")
@actor_required
def story_save(topic: str) -> str | Response:
    """The person said their answers are right: save a new version."""
    allowed("manage_story")
    label, prompt = _topic_or_404(topic)
    _refuse_private(topic)
    form = StoryForm()
    if not form.validate():
        return render(
            "citizen/story_write.html", topic=topic, label=label, prompt=prompt, form=form
        )
    who = actor()
    with unit_of_work() as (session, vault):
        record_story_section(
            session,
            vault,
            who.citizen_id,
            topic,
            form.text.data,
            recorded_by=who.label,
            sensitivity=form.sensitivity.data,
        )
    flash(_("Your story about %(topic)s is saved.", topic=label.lower()))
    return redirect(url_for("citizen.story_topic", topic=topic))  # type: ignore[return-value]
