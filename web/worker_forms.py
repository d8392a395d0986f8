"""Forms for helpers: inviting one, changing what they can do, and the helper's own forms."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxesInput,
    GovDateInput,
    GovSubmitInput,
    GovTextInput,
)
from wtforms import DateField, SelectMultipleField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, ValidationError

from consent.actors import SCOPE_LABELS, SCOPES
from vault.accounts import normalise_email
from vault.errors import InvalidValue


def scope_choices() -> list[tuple[str, Any]]:
    """Each scope with its plain label, translated."""
    return [(scope, _l(SCOPE_LABELS[scope])) for scope in SCOPES]


class GovDateField(DateField):
    """A day / month / year date with GOV.UK-style messages for each way it can be wrong."""

    widget = GovDateInput()

    def process_formdata(self, valuelist: list[Any]) -> None:
        """Read the three boxes and say exactly what is missing or wrong."""
        if not valuelist:
            return
        parts = [str(v).strip() for v in [*valuelist, "", "", ""][:3]]
        self.data = None
        if not any(parts):
            raise ValueError(_l("Enter the date their help should end"))
        names = (_l("a day"), _l("a month"), _l("a year"))
        for part, name in zip(parts, names, strict=True):
            if not part:
                raise ValueError(_l("The date must include %(part)s", part=name))
        if not all(p.isdigit() for p in parts) or len(parts[2]) != 4:
            raise ValueError(_l("The date must be a real date"))
        try:
            self.data = date(int(parts[2]), int(parts[1]), int(parts[0]))
        except ValueError:
            raise ValueError(_l("The date must be a real date")) from None


class ScopesForm(FlaskForm):
    """What a helper may do."""

    scopes = SelectMultipleField(
        _l("What can they do for you?"),
        choices=scope_choices,
        widget=GovCheckboxesInput(),
        description=_l("Choose all that are right for you."),
        validators=[InputRequired(_l("Choose at least one thing they can do"))],
    )
    submit = SubmitField(_l("Continue"), widget=GovSubmitInput())


class UntilForm(FlaskForm):
    """Until when a helper may help."""

    ends_on = GovDateField(
        _l("Until when can they help you?"),
        description=_l("For example, 27 3 2027. It must be within one year."),
    )
    submit = SubmitField(_l("Continue"), widget=GovSubmitInput())


class ConfirmForm(FlaskForm):
    """A single button (with its CSRF token)."""

    submit = SubmitField(_l("Confirm"), widget=GovSubmitInput())


def _email_check(form: FlaskForm, field: StringField) -> None:
    try:
        field.data = normalise_email(field.data or "")
    except InvalidValue:
        raise ValidationError(
            _l("Enter an email address in the right format, like name@example.com")
        ) from None


class SendCodeForm(FlaskForm):
    """Send an invitation code to the helper's email."""

    code = StringField(widget=GovTextInput())
    email = StringField(
        _l("Their email address"),
        widget=GovTextInput(),
        validators=[InputRequired(_l("Enter their email address")), _email_check],
    )
    submit = SubmitField(_l("Send the code"), widget=GovSubmitInput())


class CodeForm(FlaskForm):
    """A helper types the code they were given."""

    code = StringField(
        _l("Enter the code"),
        widget=GovTextInput(),
        description=_l("It has 12 letters and numbers, like ABCD-EFGH-JKMN."),
        validators=[
            InputRequired(_l("Enter the code the person gave you")),
            Length(max=40, message=_l("The code must be 12 letters and numbers")),
        ],
    )
    submit = SubmitField(_l("Continue"), widget=GovSubmitInput())


class StartAccountForm(FlaskForm):
    """A helper starts an account for someone: their email address."""

    email = StringField(
        _l("Their email address"),
        widget=GovTextInput(),
        description=_l("We will send them a link to finish signing up."),
        validators=[InputRequired(_l("Enter their email address")), _email_check],
    )
    submit = SubmitField(_l("Send the link"), widget=GovSubmitInput())
