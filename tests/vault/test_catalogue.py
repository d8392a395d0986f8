"""Tests for the catalogue of kinds of information, story topics and their checks."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vault import catalogue
from vault.catalogue import (
    CATALOGUE,
    SENSITIVITIES,
    STORY_MAX_CHARS,
    STORY_TOPICS,
    CatalogueEntry,
    entry,
    is_special_category,
    validate_sensitivity,
    validate_story_text,
    validate_topic,
    validate_value,
)
from vault.errors import InvalidValue, UnknownKey

CANARY = "CANARY7x"  # a marker we can look for in error messages
REQUIRED_KEYS = (
    "identity.name",
    "identity.date_of_birth",
    "identity.ni_number",
    "contact.address",
    "contact.phone",
    "contact.email",
    "housing.status",
    "money.income_monthly",
    "money.benefits",
    "health.conditions",
    "health.medication",
    "justice.convictions",
    "family.children",
    "support.needs",
)
BANNED = ("third party", "third-party", "implementation", "data controller", "processing")
UTC_TODAY = datetime.now(UTC).date()
TOMORROW_PLUS = (UTC_TODAY + timedelta(days=2)).isoformat()


def invalid(key: str, value: object) -> str:
    """Assert validate_value refuses `value` and return the message."""
    with pytest.raises(InvalidValue) as caught:
        validate_value(key, value)
    assert not isinstance(caught.value, UnknownKey)
    return caught.value.message


def sentences(text: str) -> list[str]:
    """Split plain text into sentences."""
    return [s for s in re.split(r"(?<=[.?!])\s+", text.strip()) if s]


# --- The catalogue itself -------------------------------------------------------------------


def test_catalogue_has_every_required_key_in_display_order() -> None:
    assert tuple(CATALOGUE)[: len(REQUIRED_KEYS)] == REQUIRED_KEYS


def test_catalogue_is_read_only() -> None:
    with pytest.raises(TypeError):
        CATALOGUE["x.y"] = CATALOGUE["identity.name"]  # type: ignore[index]


@pytest.mark.parametrize("key", list(CATALOGUE))
def test_every_entry_is_complete(key: str) -> None:
    item = CATALOGUE[key]
    assert isinstance(item, CatalogueEntry)
    assert item.key == key
    assert item.label.strip() and item.explanation.strip()
    assert item.category == key.split(".")[0]
    assert item.category in catalogue.CATEGORIES
    assert item.special_category is (item.category in {"health", "justice"})
    assert is_special_category(key) is item.special_category
    assert entry(key) is item


@pytest.mark.parametrize("key", list(CATALOGUE))
def test_every_example_passes_its_own_check_and_is_json(key: str) -> None:
    item = CATALOGUE[key]
    normalised = validate_value(key, item.example)
    assert normalised == item.example
    json.dumps(normalised)


def test_entries_are_frozen() -> None:
    with pytest.raises(AttributeError):
        CATALOGUE["identity.name"].label = "x"  # type: ignore[misc]


@pytest.mark.parametrize("key", list(CATALOGUE))
def test_every_key_refuses_nothing(key: str) -> None:
    assert invalid(key, None) == f"{CATALOGUE[key].label} must not be empty."


def test_special_categories() -> None:
    assert is_special_category("health.conditions")
    assert is_special_category("health.medication")
    assert is_special_category("justice.convictions")
    assert not is_special_category("identity.name")
    assert not is_special_category("support.needs")


def citizen_texts() -> list[str]:
    """Every label, explanation and prompt a citizen reads."""
    texts = [t for e in CATALOGUE.values() for t in (e.label, e.explanation)]
    texts += [t for pair in STORY_TOPICS.values() for t in pair]
    texts += list(catalogue.CATEGORIES.values()) + list(catalogue.HOUSING_STATUSES.values())
    return texts


@pytest.mark.parametrize("text", citizen_texts())
def test_citizen_text_is_plain_and_short(text: str) -> None:
    lowered = text.lower()
    for word in BANNED:
        assert word not in lowered
    for sentence in sentences(text):
        assert len(sentence.split()) <= 20, sentence


# --- Unknown keys ---------------------------------------------------------------------------


def test_unknown_key_names_the_key() -> None:
    with pytest.raises(UnknownKey) as caught:
        entry("xyz")
    assert caught.value.message == "We do not know the kind of information 'xyz'."


def test_unknown_key_is_an_invalid_value_for_validate_value() -> None:
    with pytest.raises(UnknownKey):
        validate_value("health.blood_type", CANARY)
    with pytest.raises(UnknownKey):
        is_special_category("nope")


def test_unknown_key_never_echoes_a_long_or_odd_key() -> None:
    with pytest.raises(UnknownKey) as caught:
        entry("x\n" + CANARY * 20)
    assert CANARY not in caught.value.message


# --- Text -----------------------------------------------------------------------------------


def test_name_is_stripped_and_spaces_folded() -> None:
    assert validate_value("identity.name", "  Sam \t  Taylor \n") == "Sam Taylor"
    assert validate_value("identity.name", "Zoë O'Brien-Ngũgĩ") == "Zoë O'Brien-Ngũgĩ"
    assert validate_value("identity.name", "x" * 200) == "x" * 200


def test_name_is_unicode_normalised() -> None:
    assert validate_value("identity.name", "Zoe\u0308") == "Zo\u00eb"


@pytest.mark.parametrize("bad", ["", "   ", "x" * 201, None, 5, ["Sam"], "Sam\x00", "A\x1bB"])
def test_name_rejects(bad: object) -> None:
    message = invalid("identity.name", bad)
    assert message.startswith("Your name ")


@pytest.mark.parametrize(
    "key", ["health.conditions", "health.medication", "justice.convictions", "support.needs"]
)
def test_free_text_keeps_lines_and_limits_length(key: str) -> None:
    assert validate_value(key, "  one\r\ntwo\rthree\tfour  ") == "one\ntwo\nthree\tfour"
    assert validate_value(key, "y" * 2000) == "y" * 2000
    assert invalid(key, "y" * 2001).endswith("2,000 characters or fewer.")
    invalid(key, " \n\t ")
    invalid(key, "bad\x00byte")
    invalid(key, "half \ud800 character")
    invalid(key, ["a list"])


# --- Dates ----------------------------------------------------------------------------------


def test_date_of_birth_accepts_and_normalises() -> None:
    assert validate_value("identity.date_of_birth", " 1990-04-21 ") == "1990-04-21"
    assert validate_value("identity.date_of_birth", "1900-01-01") == "1900-01-01"
    assert validate_value("identity.date_of_birth", "2000-02-29") == "2000-02-29"
    today = UTC_TODAY.isoformat()
    assert validate_value("identity.date_of_birth", today) == today


@pytest.mark.parametrize(
    ("bad", "ending"),
    [
        ("1990-02-30", "must be a real date, like 1990-04-21."),
        ("2001-02-29", "must be a real date, like 1990-04-21."),
        ("1990-13-01", "must be a real date, like 1990-04-21."),
        ("21/04/1990", "must be a date written like 1990-04-21."),
        ("19900421", "must be a date written like 1990-04-21."),
        ("1990-W01-1", "must be a date written like 1990-04-21."),
        ("١٩٩٠-٠٤-٢١", "must be a date written like 1990-04-21."),  # Arabic-Indic digits
        ("1899-12-31", "must be in 1900 or later."),
        (TOMORROW_PLUS, "must not be in the future."),
        (19900421, "must be a date written like 1990-04-21."),
        (None, "must not be empty."),
    ],
)
def test_date_of_birth_rejects(bad: object, ending: str) -> None:
    assert invalid("identity.date_of_birth", bad) == f"Your date of birth {ending}"


# --- National Insurance number --------------------------------------------------------------


@pytest.mark.parametrize(
    ("good", "normal"),
    [
        ("AB123456C", "AB123456C"),
        ("ab 12 34 56 c", "AB123456C"),
        (" JG 103759 A ", "JG103759A"),
        ("CE123456D", "CE123456D"),
        ("OA123456B", "OA123456B"),
    ],
)
def test_ni_number_accepts(good: str, normal: str) -> None:
    assert validate_value("identity.ni_number", good) == normal


@pytest.mark.parametrize(
    "prefix",
    [
        "DA",
        "FA",
        "IA",
        "QA",
        "UA",
        "VA",
        "AD",
        "AF",
        "AI",
        "AO",
        "AQ",
        "AU",
        "AV",
        "QQ",
        "BG",
        "GB",
        "NK",
        "KN",
        "TN",
        "NT",
        "ZZ",
    ],
)
def test_ni_number_rejects_prefixes_never_issued(prefix: str) -> None:
    message = invalid("identity.ni_number", f"{prefix}123456C")
    assert message == (
        "Your National Insurance number cannot start with those letters. Please check it."
    )


@pytest.mark.parametrize(
    "bad",
    [
        "AB123456E",
        "AB12345C",
        "AB1234567C",
        "A1123456C",
        "AB-12-34-56-C",
        "",
        123456,
        "\uff21\uff22123456C",
    ],  # full-width letters
)
def test_ni_number_rejects_bad_shapes(bad: object) -> None:
    assert invalid("identity.ni_number", bad).startswith("Your National Insurance number must be")


# --- Address --------------------------------------------------------------------------------


def test_address_is_normalised() -> None:
    value = {"lines": [" Flat 2 ", "10  High Street"], "town": " Leeds", "postcode": "ls11aa"}
    assert validate_value("contact.address", value) == {
        "lines": ["Flat 2", "10 High Street"],
        "town": "Leeds",
        "postcode": "LS1 1AA",
    }


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("sw1a1aa", "SW1A 1AA"),
        ("SW1A 1AA", "SW1A 1AA"),
        ("m1 1ae", "M1 1AE"),
        ("B33  8TH", "B33 8TH"),
        ("cr26xh", "CR2 6XH"),
        ("DN55 1PT", "DN55 1PT"),
        ("W1A 0AX", "W1A 0AX"),
        ("EC1A 1BB", "EC1A 1BB"),
        ("GIR 0AA", "GIR 0AA"),
    ],
)
def test_postcodes_accepted(raw: str, normal: str) -> None:
    value = {"lines": ["1 A Road"], "town": "Town", "postcode": raw}
    assert validate_value("contact.address", value)["postcode"] == normal  # type: ignore[index]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "SW1A",
        "SW1A 1A",
        "QA1 1AA",
        "VA1 1AA",
        "XA1 1AA",
        "AI1 1AA",
        "SW1A 1CA",
        "SW1A 1AI",
        "1AA SW1",
        "SW1A-1AA!",
        "\uff33\uff37\uff11\uff21 1AA",
        12345,
        None,
    ],
)
def test_bad_postcodes_rejected(bad: object) -> None:
    value = {"lines": ["1 A Road"], "town": "Town", "postcode": bad}
    message = invalid("contact.address", value)
    assert message == "The postcode in your address must be a real UK postcode, like SW1A 1AA."


def test_no_fixed_address() -> None:
    value = {"no_fixed_address": True, "area": "  Leeds city  centre "}
    assert validate_value("contact.address", value) == {
        "no_fixed_address": True,
        "area": "Leeds city centre",
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"no_fixed_address": False, "area": "Leeds"},
        {"no_fixed_address": 1, "area": "Leeds"},
        {"no_fixed_address": True},
        {"no_fixed_address": True, "area": ""},
        {"no_fixed_address": True, "area": "Leeds", "postcode": "LS1 1AA"},
        {"lines": [], "town": "Leeds", "postcode": "LS1 1AA"},
        {"lines": ["a", "b", "c", "d", "e"], "town": "Leeds", "postcode": "LS1 1AA"},
        {"lines": "10 High Street", "town": "Leeds", "postcode": "LS1 1AA"},
        {"lines": ["x" * 101], "town": "Leeds", "postcode": "LS1 1AA"},
        {"lines": ["10 High Street"], "town": "", "postcode": "LS1 1AA"},
        {"lines": ["10 High Street"], "postcode": "LS1 1AA"},
        {"lines": ["10 High Street"], "town": "Leeds", "postcode": "LS1 1AA", "extra": 1},
        "10 High Street, Leeds",
        ["10 High Street"],
        None,
    ],
)
def test_address_rejects(bad: object) -> None:
    invalid("contact.address", bad)


# --- Phone and email ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "07700 900123",
        "07700-900-123",
        "+44 7700 900123",
        "+447700900123",
        "0044 7700 900123",
        "+44 (0)7700 900123",
        "+44 07700 900123",
    ],
)
def test_phone_normalised_to_e164(raw: str) -> None:
    assert validate_value("contact.phone", raw) == "+447700900123"


def test_landlines_accepted() -> None:
    assert validate_value("contact.phone", "(020) 7946 0000") == "+442079460000"
    assert validate_value("contact.phone", "0113 496 0000") == "+441134960000"
    assert validate_value("contact.phone", "0800 123 456") == "+44800123456"


@pytest.mark.parametrize(
    "bad",
    [
        "7700 900123",
        "+1 202 555 0100",
        "077009001234",
        "0770090012",
        "04000 000000",
        "07700 9OO123",
        "+44 7700 900123 ext 5",
        "",
        447700900123,
        "٠٧٧٠٠٩٠٠١٢٣",
    ],
)
def test_phone_rejects(bad: object) -> None:
    assert invalid("contact.phone", bad).startswith("Your phone number must be a UK number")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Sam@Example.COM", "Sam@example.com"),
        (" sam.taylor+gp@mail.example.org ", "sam.taylor+gp@mail.example.org"),
        ("a@b.xn--p1ai", "a@b.xn--p1ai"),
    ],
)
def test_email_accepted(raw: str, normal: str) -> None:
    assert validate_value("contact.email", raw) == normal


@pytest.mark.parametrize(
    "bad",
    [
        "sam",
        "sam@",
        "@example.com",
        "sam@example",
        "sam@@example.com",
        "sam@exa mple.com",
        "sam..t@example.com",
        ".sam@example.com",
        "sam@-example.com",
        "sam@example.c",
        "sam@example.123",
        "x" * 65 + "@example.com",
        "sämm@example.com",
        5,
        None,
    ],
)
def test_email_rejects(bad: object) -> None:
    invalid("contact.email", bad)


def test_email_length_limit() -> None:
    domain = ".".join(["b" * 60] * 4) + ".com"  # 247 characters, every label valid
    assert validate_value("contact.email", "abcdef@" + domain) == "abcdef@" + domain
    too_long = "abcdefgh@" + domain  # 256 characters
    assert invalid("contact.email", too_long).endswith("254 characters or fewer.")


# --- Housing and money ----------------------------------------------------------------------


def test_housing_status_codes() -> None:
    for code in catalogue.HOUSING_STATUSES:
        assert validate_value("housing.status", code) == code
    for bad in ["Hostel", " hostel", "castle", "", 1]:
        assert invalid("housing.status", bad) == (
            "Your housing must be one of the choices on the list."
        )


def test_income_accepts_whole_pence() -> None:
    assert validate_value("money.income_monthly", 0) == 0
    assert validate_value("money.income_monthly", 10_000_000) == 10_000_000
    assert validate_value("money.income_monthly", " 125000 ") == 125_000


@pytest.mark.parametrize(
    "bad",
    [
        True,
        False,
        12.0,
        12.5,
        "12.50",
        "£125",
        "1,250",
        "-1",
        -1,
        10_000_001,
        "",
        None,
        "\uff11\uff12\uff13",
    ],
)
def test_income_rejects(bad: object) -> None:
    assert invalid("money.income_monthly", bad).startswith("Your income each month must")


def test_benefits() -> None:
    value = [
        {"name": " Universal  Credit ", "amount_pence_monthly": 40_000},
        {"name": "PIP", "amount_pence_monthly": "0"},
    ]
    assert validate_value("money.benefits", value) == [
        {"name": "Universal Credit", "amount_pence_monthly": 40_000},
        {"name": "PIP", "amount_pence_monthly": 0},
    ]
    assert validate_value("money.benefits", []) == []


@pytest.mark.parametrize(
    "bad",
    [
        [{"name": "PIP", "amount_pence_monthly": True}],
        [{"name": "PIP", "amount_pence_monthly": 10.5}],
        [{"name": "PIP", "amount_pence_monthly": -5}],
        [{"name": "x" * 101, "amount_pence_monthly": 5}],
        [{"name": "PIP"}],
        [{"name": "PIP", "amount_pence_monthly": 5, "other": 1}],
        [{"name": "PIP", "amount_pence_monthly": 5}] * 21,
        ["PIP"],
        {"name": "PIP", "amount_pence_monthly": 5},
        "PIP",
    ],
)
def test_benefits_reject(bad: object) -> None:
    invalid("money.benefits", bad)


def test_benefit_errors_say_which_one() -> None:
    value = [
        {"name": "PIP", "amount_pence_monthly": 5},
        {"name": "UC", "amount_pence_monthly": 1.5},
    ]
    assert invalid("money.benefits", value).startswith("The amount for benefit 2 must")


# --- Family ---------------------------------------------------------------------------------


def test_children() -> None:
    value = [{"name": " Alex ", "date_of_birth": "2015-04-21"}]
    assert validate_value("family.children", value) == [
        {"name": "Alex", "date_of_birth": "2015-04-21"},
    ]
    assert validate_value("family.children", []) == []


@pytest.mark.parametrize(
    "bad",
    [
        [{"name": "Alex", "date_of_birth": TOMORROW_PLUS}],
        [{"name": "Alex", "date_of_birth": "2015-02-30"}],
        [{"name": "", "date_of_birth": "2015-04-21"}],
        [{"name": "Alex"}],
        [{"name": "Alex", "date_of_birth": "2015-04-21"}] * 21,
        3,
        True,
        None,
    ],
)
def test_children_reject(bad: object) -> None:
    invalid("family.children", bad)


# --- Error messages never repeat the value --------------------------------------------------


CANARY_CASES: list[tuple[str, Any]] = [
    ("identity.name", CANARY * 30),
    ("identity.name", CANARY + "\x00"),
    ("identity.date_of_birth", CANARY),
    ("identity.date_of_birth", "2999-01-01"),
    ("identity.ni_number", CANARY),
    ("identity.ni_number", "QQ123456C"),
    ("contact.address", {"lines": [CANARY], "town": CANARY, "postcode": CANARY}),
    ("contact.address", {"lines": [CANARY * 20], "town": "T", "postcode": "LS1 1AA"}),
    ("contact.address", {"no_fixed_address": CANARY, "area": CANARY}),
    ("contact.address", {CANARY: CANARY}),
    ("contact.phone", CANARY),
    ("contact.email", CANARY + "@"),
    ("contact.email", CANARY * 40 + "@example.com"),
    ("housing.status", CANARY),
    ("money.income_monthly", CANARY),
    ("money.income_monthly", 99_999_999),
    ("money.benefits", [{"name": CANARY * 20, "amount_pence_monthly": 1}]),
    ("money.benefits", [{"name": "x", "amount_pence_monthly": CANARY}]),
    ("health.conditions", CANARY * 300),
    ("family.children", [{"name": "A", "date_of_birth": CANARY}]),
    ("support.needs", [CANARY]),
]


@pytest.mark.parametrize(("key", "value"), CANARY_CASES)
def test_messages_never_echo_the_value(key: str, value: Any) -> None:
    message = invalid(key, value)
    for fragment in (CANARY, "2999", "QQ123456", "99999999", "99,999,999"):
        assert fragment not in message
    assert message.endswith(".")


def test_invalid_value_is_not_chained_to_the_raw_input() -> None:
    with pytest.raises(InvalidValue) as caught:
        validate_value("identity.name", CANARY * 300)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


# --- Stories and sensitivities --------------------------------------------------------------


def test_story_topics() -> None:
    assert tuple(STORY_TOPICS) == ("housing", "money", "health", "justice", "family", "support")
    for topic, (label, prompt) in STORY_TOPICS.items():
        assert validate_topic(topic) == topic
        assert label and prompt
    for bad in ["Housing", "crime", "", None, 1, CANARY]:
        with pytest.raises(InvalidValue) as caught:
            validate_topic(bad)
        assert CANARY not in caught.value.message


def test_story_text_accepts_and_tidies() -> None:
    assert validate_story_text("  Line one.\r\n\tLine two.  ") == "Line one.\n\tLine two."
    assert validate_story_text("x" * STORY_MAX_CHARS) == "x" * STORY_MAX_CHARS
    assert STORY_MAX_CHARS == 20_000


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "  \n ",
        "x" * (STORY_MAX_CHARS + 1),
        CANARY + "\x00",
        CANARY + "\x07",
        CANARY + "\x7f",
        CANARY + "\ud800",
        None,
        5,
        [CANARY],
    ],
)
def test_story_text_rejects(bad: object) -> None:
    with pytest.raises(InvalidValue) as caught:
        validate_story_text(bad)
    assert caught.value.message.startswith("Your story ")
    assert CANARY not in caught.value.message


def test_sensitivities() -> None:
    assert SENSITIVITIES == ("normal", "ask_me_each_time")
    for value in SENSITIVITIES:
        assert validate_sensitivity(value) == value
    for bad in ["Normal", "secret", "", None, True, CANARY]:
        with pytest.raises(InvalidValue) as caught:
            validate_sensitivity(bad)
        assert CANARY not in caught.value.message


# --- The marshmallow field can be used on its own -------------------------------------------


def test_field_works_inside_a_marshmallow_schema() -> None:
    from marshmallow import Schema, ValidationError

    schema_class = Schema.from_dict({"phone": CATALOGUE["contact.phone"].field})
    assert schema_class().load({"phone": "07700 900123"}) == {"phone": "+447700900123"}
    with pytest.raises(ValidationError) as caught:
        schema_class().load({"phone": CANARY})
    assert CANARY not in json.dumps(caught.value.messages)
