"""Forms for signing in: one question each, with GOV.UK-style error messages."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput, GovTextInput
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, ValidationError

from vault import catalogue
from vault.accounts import normalise_email
from vault.errors import InvalidValue


def _email_shape(form: Any, field: Any) -> None:
    # Both checks: the account's rough one, and the stricter one for the contact.email fact,
    # so a sign-up never fails after the link is clicked.
    try:
        clean = normalise_email(field.data or "")
        catalogue.validate_value("contact.email", clean)
    except InvalidValue as exc:
        raise ValidationError(
            str(_l("Enter an email address in the right format, like name@example.com"))
        ) from exc
    field.data = clean


class EmailForm(FlaskForm):
    """Sign in or sign up: just an email address."""

    email = StringField(
        _l("Email address"),
        widget=GovTextInput(),
        description=_l("We will send you a link. You do not need a password."),
        validators=[
            InputRequired(message=_l("Enter your email address")),
            Length(max=254, message=_l("Email address must be 254 characters or fewer")),
            _email_shape,
        ],
    )
    submit = SubmitField(_l("Continue"), widget=GovSubmitInput())


class LinkForm(FlaskForm):
    """The button behind an emailed link (so a mail scanner opening it does not use it up)."""

    token = HiddenField(validators=[InputRequired()])
    submit = SubmitField(_l("Continue"), widget=GovSubmitInput())


class ConfirmForm(FlaskForm):
    """A single confirm button (for removing a passkey)."""

    submit = SubmitField(_l("Yes, remove it"), widget=GovSubmitInput())
