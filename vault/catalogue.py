"""The fixed catalogue of kinds of information a citizen can keep, and story topics.

Every check here raises an error whose message is safe to show and to log: it names the
kind of information and what is wrong, but never repeats the value (it is personal data).
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from functools import partial
from types import MappingProxyType
from typing import Any

from marshmallow import ValidationError, fields

from vault.errors import InvalidValue, UnknownKey

__all__ = [
    "CATALOGUE",
    "CATEGORIES",
    "HOUSING_STATUSES",
    "SENSITIVITIES",
    "STORY_MAX_CHARS",
    "STORY_TOPICS",
    "CatalogueEntry",
    "entry",
    "is_special_category",
    "validate_sensitivity",
    "validate_story_text",
    "validate_topic",
    "validate_value",
]

FREE_TEXT_MAX_CHARS = 2_000
STORY_MAX_CHARS = 20_000
MAX_PENCE = 10_000_000  # £100,000 a month: far above any real income, so it only stops typos
MAX_LIST_ITEMS = 20

# [0-9] rather than \d: \d also matches non-ASCII digits such as Arabic-Indic ones.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_NI = re.compile(r"[A-Z]{2}[0-9]{6}[A-D]")
_NI_BAD_FIRST = frozenset("DFIQUV")
_NI_BAD_SECOND = frozenset("DFIOQUV")
_NI_BAD_PAIRS = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})
# Royal Mail rules: which letters may sit in each place of the outward and inward codes.
_POSTCODE = re.compile(
    r"(?P<out>[A-PR-UWYZ]"
    r"(?:[0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPSTUW]|[A-HK-Y][0-9][ABEHMNPRVWXY])"
    r"|GIR)(?P<in>[0-9][ABD-HJLNP-UW-Z]{2})"
)
# UK numbers without the leading 0: mobiles are 7 + 9 digits; a few old areas and 0800
# numbers have 9 digits in all; 4 and 6 are not in use.
_UK_NATIONAL = re.compile(r"7[0-9]{9}|[12358][0-9]{8,9}|9[0-9]{9}")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL_LOCAL = re.compile(rf"{_ATOM}(?:\.{_ATOM})*")
_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TLD = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")


def _today() -> date:
    """Return the latest date that may be 'today' anywhere in the UK."""
    # The UK is at most one hour ahead of UTC, so this never refuses a UK birthday today.
    return (datetime.now(UTC) + timedelta(hours=1)).date()


def _text(value: object, subject: str, max_chars: int, *, multiline: bool = False) -> str:
    """Check and tidy text: NFC, no control characters, stripped, not blank, not too long."""
    if not isinstance(value, str):
        raise ValidationError(f"{subject} must be text.")
    text = unicodedata.normalize("NFC", value)
    if multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        allowed = "\n\t"
    else:
        allowed = "\n\t\r"  # on one line these are just spaces, folded below
    for char in text:
        category = unicodedata.category(char)
        # Cc are control characters (NUL, escape...); Cs are broken halves of characters
        # that cannot be stored as UTF-8.
        if (category == "Cc" and char not in allowed) or category == "Cs":
            raise ValidationError(f"{subject} has a hidden character. Please type it again.")
    text = text.strip() if multiline else " ".join(text.split())
    if not text:
        raise ValidationError(f"{subject} must not be empty.")
    if len(text) > max_chars:
        raise ValidationError(f"{subject} must be {max_chars:,} characters or fewer.")
    return text


def _pence(value: object, subject: str) -> int:
    """Check a whole number of pence; digit-only strings are allowed because forms send text."""
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,9}", value.strip()):
        value = int(value.strip())
    # bool is a subclass of int, and 12.0 is a float: both are refused on purpose.
    if type(value) is not int:
        raise ValidationError(f"{subject} must be a whole number of pence, like 125000 for £1,250.")
    if value < 0:
        raise ValidationError(f"{subject} must be 0 or more.")
    if value > MAX_PENCE:
        raise ValidationError(f"{subject} must be no more than £{MAX_PENCE // 100:,} a month.")
    return value


def _iso_date(value: object, subject: str, example: str) -> str:
    """Check a real past date written YYYY-MM-DD from 1900 on; return it as that string."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
        raise ValidationError(f"{subject} must be a date written like {example}.")
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{subject} must be a real date, like {example}.") from None
    if day.year < 1900:
        raise ValidationError(f"{subject} must be in 1900 or later.")
    if day > _today():
        raise ValidationError(f"{subject} must not be in the future.")
    return day.isoformat()


def _object(value: object, subject: str, keys: frozenset[str], shape: str) -> Mapping[str, Any]:
    """Check a JSON object has exactly the given keys."""
    if not isinstance(value, Mapping) or set(value) != keys:
        raise ValidationError(f"{subject} must have {shape}.")
    return value


def _items(value: object, subject: str) -> list[object]:
    """Check a JSON list of at most MAX_LIST_ITEMS items."""
    if not isinstance(value, list | tuple):
        raise ValidationError(f"{subject} must be a list.")
    if len(value) > MAX_LIST_ITEMS:
        raise ValidationError(f"{subject} can have up to {MAX_LIST_ITEMS} items.")
    return list(value)


class _CheckedField(fields.Field):
    """A marshmallow field whose errors are whole plain sentences about `subject`."""

    def __init__(self, subject: str, check: Callable[[object, str], object]) -> None:
        super().__init__()
        self.subject = subject
        self._check = check
        # Marshmallow's own wording ("Field may not be null.") is not plain English.
        self.error_messages["null"] = f"{subject} must not be empty."
        self.error_messages["required"] = f"{subject} is needed."

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        """Return the checked, normalised value."""
        return self._check(value, self.subject)


_check_name = partial(_text, max_chars=200)
_check_free_text = partial(_text, max_chars=FREE_TEXT_MAX_CHARS, multiline=True)
_check_birth_date = partial(_iso_date, example="1990-04-21")


def _check_ni_number(value: object, subject: str) -> str:
    """Check a National Insurance number and return it as QQ123456C."""
    shape = f"{subject} must be 2 letters, 6 numbers, then A, B, C or D, like QQ 12 34 56 C."
    if not isinstance(value, str):
        raise ValidationError(shape)
    compact = "".join(value.split()).upper()
    if not compact.isascii() or not _NI.fullmatch(compact):
        raise ValidationError(shape)
    first, second = compact[0], compact[1]
    if first in _NI_BAD_FIRST or second in _NI_BAD_SECOND or compact[:2] in _NI_BAD_PAIRS:
        raise ValidationError(f"{subject} cannot start with those letters. Please check it.")
    return compact


def _check_postcode(value: object, subject: str) -> str:
    """Check a UK postcode and return it in capitals with one space, like SW1A 1AA."""
    if isinstance(value, str):
        compact = "".join(value.split()).upper()
        found = _POSTCODE.fullmatch(compact) if compact.isascii() else None
        if found:
            return f"{found['out']} {found['in']}"
    raise ValidationError(f"{subject} must be a real UK postcode, like SW1A 1AA.")


def _check_address(value: object, subject: str) -> dict[str, object]:
    """Check a postal address, or a 'no fixed address' answer with the area the person stays in."""
    if isinstance(value, Mapping) and "no_fixed_address" in value:
        nfa = "'no fixed address' set to true, and an area"
        found = _object(value, subject, frozenset({"no_fixed_address", "area"}), nfa)
        if found["no_fixed_address"] is not True:
            raise ValidationError(f"{subject} must have {nfa}.")
        return {"no_fixed_address": True, "area": _text(found["area"], "The area you stay in", 100)}
    found = _object(
        value,
        subject,
        frozenset({"lines", "town", "postcode"}),
        "address lines, a town and a postcode",
    )
    lines = found["lines"]
    if not isinstance(lines, list | tuple) or not 1 <= len(lines) <= 4:
        raise ValidationError(f"{subject} must have 1 to 4 lines.")
    return {
        "lines": [_text(line, f"Line {n} of your address", 100) for n, line in enumerate(lines, 1)],
        "town": _text(found["town"], "The town in your address", 100),
        "postcode": _check_postcode(found["postcode"], "The postcode in your address"),
    }


def _check_phone(value: object, subject: str) -> str:
    """Check a UK phone number and return it in +44 form (E.164)."""
    if isinstance(value, str):
        compact = re.sub(r"[\s-]", "", value)
        if compact.startswith("+44(0)"):  # a common way of writing the optional 0
            compact = "+44" + compact[6:]
        compact = compact.replace("(", "").replace(")", "")
        for prefix in ("+440", "+44", "0044", "0"):
            if compact.startswith(prefix):
                national = compact[len(prefix) :]
                if national.isascii() and _UK_NATIONAL.fullmatch(national):
                    return "+44" + national
                break
    raise ValidationError(f"{subject} must be a UK number, like 07700 900123 or +44 7700 900123.")


def _check_email(value: object, subject: str) -> str:
    """Check an email address; the domain is lower-cased, the part before @ is kept as typed."""
    if isinstance(value, str) and len(value.strip()) > 254:
        raise ValidationError(f"{subject} must be 254 characters or fewer.")
    if isinstance(value, str) and value.strip().count("@") == 1:
        local, _, domain = value.strip().partition("@")
        labels = domain.lower().split(".")
        if (
            len(local) <= 64
            and _EMAIL_LOCAL.fullmatch(local)
            and len(labels) >= 2
            and all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
            and _TLD.fullmatch(labels[-1])
        ):
            return f"{local}@{'.'.join(labels)}"
    raise ValidationError(f"{subject} must look like name@example.com.")


def _check_choice(choices: Mapping[str, str]) -> Callable[[object, str], str]:
    """Build a check that the value is exactly one of the given codes."""

    def check(value: object, subject: str) -> str:
        """Check the value is one of the codes."""
        if isinstance(value, str) and value in choices:
            return value
        raise ValidationError(f"{subject} must be one of the choices on the list.")

    return check


def _check_benefits(value: object, subject: str) -> list[dict[str, object]]:
    """Check a list of benefits, each with a name and an amount in pence a month."""
    keys = frozenset({"name", "amount_pence_monthly"})
    checked: list[dict[str, object]] = []
    for n, item in enumerate(_items(value, subject), 1):
        found = _object(item, f"Benefit {n}", keys, "a name and an amount each month")
        checked.append(
            {
                "name": _text(found["name"], f"The name of benefit {n}", 100),
                "amount_pence_monthly": _pence(
                    found["amount_pence_monthly"], f"The amount for benefit {n}"
                ),
            }
        )
    return checked


def _check_children(value: object, subject: str) -> list[dict[str, object]]:
    """Check a list of children, each with a name and a date of birth."""
    keys = frozenset({"name", "date_of_birth"})
    checked: list[dict[str, object]] = []
    for n, item in enumerate(_items(value, subject), 1):
        found = _object(item, f"Child {n}", keys, "a name and a date of birth")
        checked.append(
            {
                "name": _text(found["name"], f"The name of child {n}", 200),
                "date_of_birth": _iso_date(
                    found["date_of_birth"], f"The date of birth of child {n}", "2015-04-21"
                ),
            }
        )
    return checked


@dataclasses.dataclass(frozen=True)
class CatalogueEntry:
    """One kind of information a citizen can keep, with the field that checks its value."""

    key: str
    label: str
    explanation: str
    category: str
    special_category: bool
    field: fields.Field = dataclasses.field(compare=False, repr=False)
    example: object = dataclasses.field(default=None, compare=False)


CATEGORIES: Mapping[str, str] = MappingProxyType(
    {
        "identity": "About you",
        "contact": "How to reach you",
        "housing": "Where you live",
        "money": "Money",
        "health": "Health",
        "justice": "Police, courts and prison",
        "family": "Family",
        "support": "Help you need",
    }
)

# Health data is special category (UK GDPR art. 9); criminal offence data (art. 10) needs
# the same extra care, so both are treated as special.
_SPECIAL_CATEGORIES = frozenset({"health", "justice"})

HOUSING_STATUSES: Mapping[str, str] = MappingProxyType(
    {
        "own_home": "I own my home",
        "renting": "I rent from a private landlord",
        "social_housing": "I rent from the council or a housing association",
        "supported_housing": "I live in supported housing",
        "staying_with_friends": "I am staying with friends or family",
        "hostel": "I am in a hostel",
        "refuge": "I am in a refuge",
        "temporary_accommodation": "I am in temporary housing from the council",
        "rough_sleeping": "I am sleeping rough",
        "prison": "I am in prison",
        "hospital": "I am in hospital",
        "other": "Something else",
    }
)

_ENTRIES: tuple[tuple[str, str, str, Callable[[object, str], object], object], ...] = (
    ("identity.name", "Your name", "The name you want services to use.", _check_name, "Sam Taylor"),
    (
        "identity.date_of_birth",
        "Your date of birth",
        "The day you were born.",
        _check_birth_date,
        "1990-04-21",
    ),
    # QQ is the letter pair HMRC uses in examples because it is never given to anyone;
    # the docs example must pass the check, so it uses a real-looking pair instead.
    (
        "identity.ni_number",
        "Your National Insurance number",
        "Your number for tax and benefits. It looks like QQ 12 34 56 C.",
        _check_ni_number,
        "AB123456C",
    ),
    (
        "contact.address",
        "Your address",
        "Where you live or get post. If you have no fixed address, say so and tell us the area.",
        _check_address,
        {"lines": ["10 High Street"], "town": "Leeds", "postcode": "LS1 1AA"},
    ),
    (
        "contact.phone",
        "Your phone number",
        "A UK phone number that services can call or text.",
        _check_phone,
        "+447700900123",
    ),
    (
        "contact.email",
        "Your email address",
        "An email address that services can write to.",
        _check_email,
        "sam@example.com",
    ),
    (
        "housing.status",
        "Your housing",
        "Where you are staying now. For example, a hostel.",
        _check_choice(HOUSING_STATUSES),
        "hostel",
    ),
    (
        "money.income_monthly",
        "Your income each month",
        "All the money you get in a month. This includes pay and benefits.",
        _pence,
        125_000,
    ),
    (
        "money.benefits",
        "Your benefits",
        "Money you get from the government, like Universal Credit. Say how much each month.",
        _check_benefits,
        [{"name": "Universal Credit", "amount_pence_monthly": 40_000}],
    ),
    (
        "health.conditions",
        "Your health conditions",
        "Health problems you want services to know about. This can include mental health.",
        _check_free_text,
        "Asthma. I get anxious in crowds.",
    ),
    (
        "health.medication",
        "Your medicines",
        "Medicines you take now. Say how much and how often, if you know.",
        _check_free_text,
        "Salbutamol inhaler when needed.",
    ),
    (
        "justice.convictions",
        "Your convictions",
        "Times a court found you guilty of a crime. You choose who can see this.",
        _check_free_text,
        "Theft, 2019. Fine paid.",
    ),
    (
        "family.children",
        "Your children",
        "The names and birthdays of your children.",
        _check_children,
        [{"name": "Alex Taylor", "date_of_birth": "2015-04-21"}],
    ),
    (
        "support.needs",
        "The help you need",
        "Things that would make it easier for you. For example, help with reading.",
        _check_free_text,
        "Please explain letters to me on the phone.",
    ),
)

CATALOGUE: Mapping[str, CatalogueEntry] = MappingProxyType(
    {
        key: CatalogueEntry(
            key=key,
            label=label,
            explanation=explanation,
            category=key.split(".", 1)[0],
            special_category=key.split(".", 1)[0] in _SPECIAL_CATEGORIES,
            field=_CheckedField(label, check),
            example=example,
        )
        for key, label, explanation, check, example in _ENTRIES
    }
)


def entry(key: str) -> CatalogueEntry:
    """Return the catalogue entry for `key`, or raise UnknownKey."""
    found = CATALOGUE.get(key) if isinstance(key, str) else None
    if found is None:
        # Keys are not personal data, but only a short, printable key is safe to repeat.
        shown = key if isinstance(key, str) and len(key) <= 64 and key.isprintable() else "?"
        raise UnknownKey(f"We do not know the kind of information '{shown}'.")
    return found


def _first_message(messages: object, fallback: str) -> str:
    """Pull the first plain sentence out of marshmallow's str, list or dict messages."""
    if isinstance(messages, str):
        return messages
    if isinstance(messages, list) and messages:
        return _first_message(messages[0], fallback)
    if isinstance(messages, dict) and messages:
        return _first_message(next(iter(messages.values())), fallback)
    return fallback


def validate_value(key: str, value: object) -> object:
    """Check `value` for `key` and return it normalised and JSON-serialisable."""
    item = entry(key)
    try:
        return item.field.deserialize(value)
    except ValidationError as error:
        # `from None` keeps marshmallow's error, which holds the raw input, off the chain.
        raise InvalidValue(_first_message(error.messages, f"{item.label} is not valid.")) from None


def is_special_category(key: str) -> bool:
    """Say whether `key` is health or justice information, which needs extra care."""
    return entry(key).special_category


STORY_TOPICS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "housing": ("Housing", "Tell us about where you live now, and where you lived before."),
        "money": ("Money", "Tell us about money. What do you get, and what is hard?"),
        "health": (
            "Health",
            "Tell us about your health, in body and mind. Only say what you want.",
        ),
        "justice": (
            "Police, courts and prison",
            "Tell us about any time with the police, courts or prison that matters now.",
        ),
        "family": ("Family", "Tell us about the people close to you. Who helps you?"),
        "support": ("Help you need", "Tell us what help would make life easier for you."),
    }
)

SENSITIVITIES: tuple[str, ...] = ("normal", "ask_me_each_time")


def validate_topic(topic: object) -> str:
    """Return `topic` if it is one of STORY_TOPICS, or raise InvalidValue."""
    if isinstance(topic, str) and topic in STORY_TOPICS:
        return topic
    raise InvalidValue("The story topic must be one of the topics on the list.")


def validate_story_text(text: object) -> str:
    """Return the story stripped, with newlines tidied, or raise InvalidValue."""
    try:
        return _text(text, "Your story", STORY_MAX_CHARS, multiline=True)
    except ValidationError as error:
        raise InvalidValue(_first_message(error.messages, "Your story is not valid.")) from None


def validate_sensitivity(value: object) -> str:
    """Return `value` if it is one of SENSITIVITIES, or raise InvalidValue."""
    if isinstance(value, str) and value in SENSITIVITIES:
        return value
    raise InvalidValue("The sharing setting must be 'normal' or 'ask me each time'.")
