"""Forms for decisions: say what is wrong (in your own words), and choose how we tell you news."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovCharacterCount, GovRadioInput
from wtforms import Field, RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, ValidationError

from consent.citizen_notices import CHOICE_LABELS, CHOICES

REASON_MAX_CHARS = 2000


class WhatIsWrongForm(FlaskForm):
    """One question: what is wrong, in the person's own words."""

    reason = TextAreaField(
        _l("What is wrong?"),
        widget=GovCharacterCount(),
        validators=[
            InputRequired(_l("Say what is wrong")),
            Length(
                max=REASON_MAX_CHARS,
                message=_l("What you write must be 2,000 characters or fewer"),
            ),
        ],
    )

    def validate_reason(self, field: Field) -> None:
        """Spaces alone are not an answer."""
        if not (field.data or "").strip():
            raise ValidationError(_l("Say what is wrong"))

    def answer(self) -> str:
        """The person's words, without spaces at either end (call after validate)."""
        return (self.reason.data or "").strip()


class NotificationsForm(FlaskForm):
    """How the person wants to hear news: every time, once a day at most, or not by email."""

    choice = RadioField(
        _l("How should we tell you news?"),
        widget=GovRadioInput(),
        # The labels are written in consent; they are marked here for translation.
        choices=[SelectChoice(code, _l(CHOICE_LABELS[code])) for code in CHOICES],
        validators=[InputRequired(_l("Choose how we should tell you news"))],
    )
