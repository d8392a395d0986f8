"""Forms for the citizen pages: one question each, with GOV.UK-style error messages.

Every data point form turns its answer into the value the catalogue expects (``answer``),
and can be filled again from a stored value (``fill``), so a change starts from what is there.
The vault checks every value again when it is saved; its plain message is shown on the field.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from govuk_frontend_wtf.wtforms_widgets import (
    GovCharacterCount,
    GovCheckboxInput,
    GovRadioInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import BooleanField, Field, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, ValidationError

from vault import catalogue
from vault.errors import InvalidValue

MONEY = re.compile(r"[0-9]{1,7}(\.[0-9]{1,2})?")
ROWS = 3


def to_pence(typed: str) -> int:
    """'1,250.5' or '£1250.50' (already checked against MONEY) -> 125050."""
    pounds, _dot, pence = typed.replace(",", "").replace("£", "").strip().partition(".")
    return int(pounds) * 100 + int((pence + "00")[:2])


def _enter(label: str) -> str:
    """'Your phone number' -> 'Enter your phone number'."""
    return str(_l("Enter %(what)s", what=f"{label[:1].lower()}{label[1:]}"))


class StoryForm(FlaskForm):
    """Write (or change) one topic of the story, and say how private it is."""

    text = TextAreaField(
        _l("Your story"),
        widget=GovCharacterCount(),
        validators=[
            InputRequired(_l("Write your story for this topic")),
            Length(
                max=catalogue.STORY_MAX_CHARS,
                message=_l("Your story must be 20,000 characters or fewer"),
            ),
        ],
    )
    sensitivity = RadioField(
        _l("When can we share this part?"),
        widget=GovRadioInput(),
        choices=[
            SelectChoice("normal", _l("When I say yes to a service")),
            SelectChoice("ask_me_each_time", _l("Ask me each time")),
        ],
        validators=[InputRequired(_l("Choose when we can share this part"))],
    )

    def validate_text(self, field: Field) -> None:
        """Use the vault's own check, so what we show is what it will accept."""
        if not (field.data or "").strip():
            raise ValidationError(_l("Write your story for this topic"))
        try:
            catalogue.validate_story_text(field.data)
        except InvalidValue as error:
            raise ValidationError(error.message) from None


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token: the confirm button of a check page."""


class DeleteForm(FlaskForm):
    """Deleting an account needs a tick to say the person understands."""

    understand = BooleanField(
        _l("I understand that my account and my information will be deleted for ever"),
        widget=GovCheckboxInput(),
        validators=[InputRequired(_l("Tick the box to say you understand"))],
    )


class AnswerForm(FlaskForm):
    """Base of the one-question forms for data points."""

    key: str = ""
    # The box that a problem found by the vault is shown on.
    main_field = "value"

    def fill(self, value: Any) -> None:
        """Put a stored value into the form."""
        raise NotImplementedError

    def answer(self) -> Any:
        """The form's answer as the catalogue value (call after validate)."""
        raise NotImplementedError

    def check_with_vault(self) -> bool:
        """Validate with the vault's rules too; put its message on the first field."""
        if not self.validate():
            return False
        try:
            catalogue.validate_value(self.key, self.answer())
        except InvalidValue as error:
            self[self.main_field].errors = [error.message]
            return False
        return True


class TextAnswer(AnswerForm):
    """One line of text: a name, a number, an email address."""

    value = StringField(widget=GovTextInput())

    def fill(self, value: Any) -> None:
        self.value.data = str(value)

    def answer(self) -> Any:
        return (self.value.data or "").strip()


class LongTextAnswer(AnswerForm):
    """A few sentences: health, medicines, convictions, help needed."""

    value = TextAreaField(widget=GovTextArea())

    def fill(self, value: Any) -> None:
        self.value.data = str(value)

    def answer(self) -> Any:
        return (self.value.data or "").strip()


class MoneyAnswer(AnswerForm):
    """An amount a month, typed in pounds and kept in pence."""

    value = StringField(widget=GovTextInput())

    def fill(self, value: Any) -> None:
        self.value.data = f"{int(value) // 100}.{int(value) % 100:02d}"

    def validate_value(self, field: Field) -> None:
        """Accept 1250, 1,250 or £1250.50."""
        typed = (field.data or "").replace(",", "").replace("£", "").strip()
        if not MONEY.fullmatch(typed):
            raise ValidationError(_l("Enter an amount in pounds, like 1250 or 1250.50"))

    def answer(self) -> Any:
        pounds, _dot, pence = (
            self.value.data.replace(",", "").replace("£", "").strip().partition(".")
        )
        return int(pounds) * 100 + int((pence + "00")[:2])


class HousingAnswer(AnswerForm):
    """Where the person is staying now: one of the catalogue's choices."""

    value = RadioField(
        widget=GovRadioInput(),
        choices=[
            SelectChoice(code, _l(words)) for code, words in catalogue.HOUSING_STATUSES.items()
        ],
        validators=[InputRequired(_l("Choose where you are staying now"))],
    )

    def fill(self, value: Any) -> None:
        self.value.data = value

    def answer(self) -> Any:
        return self.value.data


class DateAnswer(AnswerForm):
    """A date typed as day, month and year."""

    main_field = "day"

    day = StringField(_l("Day"), widget=GovTextInput())
    month = StringField(_l("Month"), widget=GovTextInput())
    year = StringField(_l("Year"), widget=GovTextInput())

    def fill(self, value: Any) -> None:
        found = date.fromisoformat(value)
        self.day.data, self.month.data, self.year.data = (
            str(found.day),
            str(found.month),
            str(found.year),
        )

    def validate_day(self, field: Field) -> None:
        """One message for the whole date, on its first box."""
        parts = [(f.data or "").strip() for f in (self.day, self.month, self.year)]
        if not all(parts):
            raise ValidationError(_l("Enter the date, with a day, month and year"))
        try:
            date(int(parts[2]), int(parts[1]), int(parts[0]))
        except ValueError:
            raise ValidationError(_l("The date must be a real date")) from None
        if len(parts[2]) != 4:
            raise ValidationError(_l("The year must have 4 numbers"))

    def answer(self) -> Any:
        return date(int(self.year.data), int(self.month.data), int(self.day.data)).isoformat()


class AddressAnswer(AnswerForm):
    """A postal address, or no fixed address and the area the person stays in."""

    main_field = "line_1"

    no_fixed_address = BooleanField(_l("I do not have a fixed address"), widget=GovCheckboxInput())
    area = StringField(_l("Area you stay in (if no fixed address)"), widget=GovTextInput())
    line_1 = StringField(_l("Address line 1"), widget=GovTextInput())
    line_2 = StringField(_l("Address line 2 (optional)"), widget=GovTextInput())
    town = StringField(_l("Town or city"), widget=GovTextInput())
    postcode = StringField(_l("Postcode"), widget=GovTextInput())

    def fill(self, value: Any) -> None:
        if value.get("no_fixed_address"):
            self.no_fixed_address.data = True
            self.area.data = value["area"]
            return
        lines = [*value["lines"], ""]
        self.line_1.data, self.line_2.data = lines[0], " ".join(lines[1:]).strip()
        self.town.data, self.postcode.data = value["town"], value["postcode"]

    def validate_area(self, field: Field) -> None:
        """Only needed with no fixed address."""
        if self.no_fixed_address.data and not (field.data or "").strip():
            raise ValidationError(_l("Enter the area you stay in"))

    def validate_line_1(self, field: Field) -> None:
        """Needed unless the person has no fixed address."""
        if not self.no_fixed_address.data and not (field.data or "").strip():
            raise ValidationError(_l("Enter the first line of your address"))

    def validate_town(self, field: Field) -> None:
        """Needed unless the person has no fixed address."""
        if not self.no_fixed_address.data and not (field.data or "").strip():
            raise ValidationError(_l("Enter your town or city"))

    def validate_postcode(self, field: Field) -> None:
        """Needed unless the person has no fixed address."""
        if not self.no_fixed_address.data and not (field.data or "").strip():
            raise ValidationError(_l("Enter your postcode"))

    def answer(self) -> Any:
        if self.no_fixed_address.data:
            return {"no_fixed_address": True, "area": self.area.data.strip()}
        lines = [x.strip() for x in (self.line_1.data, self.line_2.data or "") if x.strip()]
        return {"lines": lines, "town": self.town.data.strip(), "postcode": self.postcode.data}


def _row_fields(first: str, second: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for n in range(1, ROWS + 1):
        found[f"name_{n}"] = StringField(_l(first), widget=GovTextInput())
        found[f"other_{n}"] = StringField(_l(second), widget=GovTextInput())
    return found


class RowsAnswer(AnswerForm):
    """A short list (benefits, children): up to three rows of two boxes each."""

    main_field = "name_1"
    empty_message: Any = ""

    def rows(self) -> list[tuple[Field, Field]]:
        """The pairs of boxes, in order."""
        return [(self[f"name_{n}"], self[f"other_{n}"]) for n in range(1, ROWS + 1)]

    def filled(self) -> list[tuple[str, str]]:
        """The rows the person typed something in."""
        pairs = [((a.data or "").strip(), (b.data or "").strip()) for a, b in self.rows()]
        return [(a, b) for a, b in pairs if a or b]

    def validate(self, extra_validators: Any = None) -> bool:
        """Check each row the person typed in, and that there is at least one."""
        ok = super().validate(extra_validators)
        for n, (a, b) in enumerate(self.rows(), 1):
            name, other = (a.data or "").strip(), (b.data or "").strip()
            message = self.row_problem(n, name, other) if (name or other) else None
            if message:
                (b if name else a).errors = [message]
                ok = False
        if ok and not self.filled():
            self.rows()[0][0].errors = [str(self.empty_message)]
            ok = False
        return ok

    def row_problem(self, n: int, name: str, other: str) -> str | None:
        """What is wrong with one row, if anything."""
        raise NotImplementedError


class BenefitsAnswer(RowsAnswer):
    """Benefits: each a name and an amount in pounds a month."""

    empty_message = _l("Enter at least one benefit")

    def fill(self, value: Any) -> None:
        for (a, b), item in zip(self.rows(), value, strict=False):
            a.data = item["name"]
            pence = int(item["amount_pence_monthly"])
            b.data = f"{pence // 100}.{pence % 100:02d}"

    def row_problem(self, n: int, name: str, other: str) -> str | None:
        if not name:
            return str(_l("Enter the name of benefit %(n)s", n=n))
        if not MONEY.fullmatch(other.replace(",", "").replace("£", "")):
            return str(_l("Enter the amount for benefit %(n)s in pounds, like 400", n=n))
        return None

    def answer(self) -> Any:
        return [
            {"name": name, "amount_pence_monthly": to_pence(other)} for name, other in self.filled()
        ]


class ChildrenAnswer(RowsAnswer):
    """Children: each a name and a date of birth typed like 21 4 2015."""

    empty_message = _l("Enter at least one child")

    def fill(self, value: Any) -> None:
        for (a, b), item in zip(self.rows(), value, strict=False):
            found = date.fromisoformat(item["date_of_birth"])
            a.data, b.data = item["name"], f"{found.day} {found.month} {found.year}"

    @staticmethod
    def _date(typed: str) -> date | None:
        parts = re.split(r"[\s/.-]+", typed.strip())
        try:
            found = date(int(parts[2]), int(parts[1]), int(parts[0])) if len(parts) == 3 else None
        except ValueError:
            return None
        return found if found and len(parts[2]) == 4 else None

    def row_problem(self, n: int, name: str, other: str) -> str | None:
        if not name:
            return str(_l("Enter the name of child %(n)s", n=n))
        if self._date(other) is None:
            return str(_l("Enter the date of birth of child %(n)s, like 21 4 2015", n=n))
        return None

    def answer(self) -> Any:
        result = []
        for name, other in self.filled():
            found = self._date(other)
            assert found is not None
            result.append({"name": name, "date_of_birth": found.isoformat()})
        return result


for _name, _field in _row_fields("Name of the benefit", "Amount each month, in pounds").items():
    setattr(BenefitsAnswer, _name, _field)
for _name, _field in _row_fields("Name of the child", "Date of birth, like 21 4 2015").items():
    setattr(ChildrenAnswer, _name, _field)

FORMS: dict[str, type[AnswerForm]] = {
    "identity.name": TextAnswer,
    "identity.date_of_birth": DateAnswer,
    "identity.ni_number": TextAnswer,
    "contact.address": AddressAnswer,
    "contact.phone": TextAnswer,
    "contact.email": TextAnswer,
    "housing.status": HousingAnswer,
    "money.income_monthly": MoneyAnswer,
    "money.benefits": BenefitsAnswer,
    "health.conditions": LongTextAnswer,
    "health.medication": LongTextAnswer,
    "justice.convictions": LongTextAnswer,
    "family.children": ChildrenAnswer,
    "support.needs": LongTextAnswer,
}


def answer_form(key: str, **kwargs: Any) -> AnswerForm:
    """The one-question form for a catalogue key, with the key's label and hint."""
    entry = catalogue.entry(key)
    form = FORMS[key](**kwargs)
    form.key = key
    if "value" in form:
        form.value.label.text = _l(entry.label)
        form.value.description = _l(entry.explanation)
        if not isinstance(form, HousingAnswer | MoneyAnswer):
            form.value.validators = [InputRequired(_enter(entry.label))]
        elif isinstance(form, MoneyAnswer):
            form.value.validators = [InputRequired(_l("Enter an amount in pounds, like 1250"))]
        else:
            form.value.validators = [InputRequired(_l("Choose where you are staying now"))]
    return form
