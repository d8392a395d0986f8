"""The consent page's content and form: what a department asks for, in plain words."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovCheckboxesInput, GovSubmitInput
from sqlalchemy import select
from sqlmodel import Session, col
from wtforms import SelectMultipleField, SubmitField

from connectors.departments import get_department
from connectors.models import PushedRequest
from connectors.rar import DataRequest, read_data_request
from vault import catalogue
from vault.models import StorySection
from vault.services import Vault


@dataclass(frozen=True)
class AskedItem:
    """One fact asked for, as the person reads it."""

    key: str
    label: str
    special: bool
    optional: bool


@dataclass(frozen=True)
class AskedTopic:
    """One part of the person's story asked for."""

    topic: str
    label: str
    ask_each_time: bool
    written: bool


@dataclass(frozen=True)
class ConsentView:
    """Everything the consent page shows."""

    department_name: str
    officer_name: str
    officer_role: str
    purpose_text: str
    case_reference: str
    items: list[AskedItem]
    topics: list[AskedTopic]
    ends_at: datetime
    data_life_days: int
    max_fetches: int
    details: list[dict[str, object]]
    request: DataRequest


def consent_view(
    session: Session, vault: Vault, pushed: PushedRequest, citizen_id: str
) -> ConsentView:
    """Read a pushed request for the page, with the person's own story settings."""
    department = get_department(session, pushed.department_id)
    details = json.loads(pushed.params["authorization_details"])
    asked = read_data_request(details, department)
    sensitivity = dict(
        session.execute(
            select(col(StorySection.topic), col(StorySection.sensitivity)).where(
                col(StorySection.citizen_id) == citizen_id,
                col(StorySection.status) == "current",
            )
        ).all()
    )
    items = [
        AskedItem(
            key,
            catalogue.entry(key).label,
            catalogue.entry(key).special_category,
            key in asked.optional,
        )
        for key in asked.data_points
    ]
    topics = [
        AskedTopic(
            topic,
            catalogue.STORY_TOPICS[topic][0],
            sensitivity.get(topic) == "ask_me_each_time",
            topic in sensitivity,
        )
        for topic in asked.story_topics
    ]
    officer = department.officer or {}
    return ConsentView(
        department_name=department.name,
        officer_name=str(officer.get("name", "")),
        officer_role=str(officer.get("role", "")),
        purpose_text=asked.purpose_text,
        case_reference=asked.case_reference,
        items=items,
        topics=topics,
        ends_at=vault.clock() + timedelta(days=asked.duration_days),
        data_life_days=asked.data_life_days,
        max_fetches=asked.max_fetches,
        details=details,
        request=asked,
    )


class ConsentForm(FlaskForm):
    """Untick optional facts, give a second yes to "ask me each time" parts, then answer."""

    keep = SelectMultipleField(
        _l("You can choose not to share these"),
        widget=GovCheckboxesInput(),
        validate_choice=True,
    )
    explicit = SelectMultipleField(
        _l("You asked us to check with you first before sharing these"),
        widget=GovCheckboxesInput(),
        validate_choice=True,
    )
    share = SubmitField(_l("Share"), widget=GovSubmitInput())
    decline = SubmitField(_l("Don't share"), widget=GovSubmitInput())

    @classmethod
    def for_view(cls, view: ConsentView) -> ConsentForm:
        """A form whose choices are exactly this request's optional facts and private topics."""
        form = cls()
        form.keep.choices = [(i.key, i.label) for i in view.items if i.optional]
        form.explicit.choices = [
            (t.topic, t.label) for t in view.topics if t.ask_each_time and t.written
        ]
        if not form.is_submitted():
            form.keep.data = [i.key for i in view.items if i.optional]  # ticked to start
            form.explicit.data = []  # a second yes is never given for them
        return form

    def validate(self, extra_validators: object = None) -> bool:
        """Share or Don't share must be pressed; the ticks must be from the page."""
        if not (self.share.data or self.decline.data):
            return False
        return bool(super().validate(extra_validators))
