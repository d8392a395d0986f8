"""Rich authorization requests: what a department may ask for, and what the person grants."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.errors import InvalidAuthorizationDetails
from connectors.models import Department
from connectors.rar import (
    DETAILS_TYPE,
    DataRequest,
    granted_details,
    parse_authorization_details,
    read_data_request,
    to_grant_request,
)
from consent import actors
from consent.grants import give_grant, validate_request
from consent.models import Grant
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.services import Vault

DEPARTMENT_ID = "dept-housing"
PURPOSE_TEXT = "To find you somewhere safe to stay tonight."
DROP = object()  # passed to asked() to remove a field


def department() -> Department:
    """Anytown housing, registered for one purpose, in memory only."""
    return Department(
        id=DEPARTMENT_ID,
        name="Anytown Council housing",
        client_metadata={},
        purposes=[
            {
                "code": "emergency_housing",
                "description": PURPOSE_TEXT,
                "data_points": ["identity.name", "contact.address", "money.income_monthly"],
                "story_topics": ["housing", "health"],
            },
            {
                "code": "council_tax",
                "description": "To work out your council tax.",
                "data_points": ["contact.email"],
                "story_topics": [],
            },
        ],
        officer={"name": "Jo Bloggs", "role": "Housing lead", "email": "jo@anytown.example"},
    )


def asked(**changes: Any) -> dict[str, Any]:
    """The department's ordinary ``tellonce_data`` object, with fields changed or removed."""
    item: dict[str, Any] = {
        "type": DETAILS_TYPE,
        "purpose": "emergency_housing",
        "data_points": ["identity.name", "contact.address", "money.income_monthly"],
        "optional": ["money.income_monthly"],
        "story_topics": ["housing"],
        "case_reference": "HOU-2291",
        "duration_days": 30,
        "data_life_days": 90,
        "max_fetches": 10,
    }
    for name, value in changes.items():
        if value is DROP:
            item.pop(name)
        else:
            item[name] = value
    return item


def read(item: dict[str, Any]) -> DataRequest:
    return read_data_request(parse_authorization_details(json.dumps([item])), department())


def refused(message: str) -> Any:
    """Expect InvalidAuthorizationDetails with exactly this message."""
    return pytest.raises(InvalidAuthorizationDetails, match=f"^{re.escape(message)}$")


# --- A good request -------------------------------------------------------------------------


def test_a_good_request_is_read_as_asked() -> None:
    request = read(asked())
    assert request == DataRequest(
        purpose_code="emergency_housing",
        purpose_text=PURPOSE_TEXT,
        data_points=("identity.name", "contact.address", "money.income_monthly"),
        optional=("money.income_monthly",),
        story_topics=("housing",),
        case_reference="HOU-2291",
        duration_days=30,
        data_life_days=90,
        max_fetches=10,
    )


def test_an_already_parsed_list_is_accepted() -> None:
    details = parse_authorization_details([asked()])
    assert read_data_request(details, department()).case_reference == "HOU-2291"


def test_lists_may_be_left_out_when_something_else_is_asked_for() -> None:
    request = read(asked(data_points=DROP, optional=DROP, story_topics=["housing"]))
    assert request.data_points == ()
    assert request.story_topics == ("housing",)


def test_repeated_keys_are_listed_once_in_the_order_given() -> None:
    request = read(
        asked(data_points=["contact.address", "identity.name", "contact.address"], optional=[])
    )
    assert request.data_points == ("contact.address", "identity.name")


def test_the_person_can_untick_optional_items() -> None:
    grant_request = to_grant_request(
        read(asked()), DEPARTMENT_ID, leave_out=["money.income_monthly"]
    )
    assert list(grant_request.data_points) == ["identity.name", "contact.address"]
    assert grant_request.department_id == DEPARTMENT_ID
    assert grant_request.purpose_text == PURPOSE_TEXT


def test_a_grant_request_passes_the_consent_checks_unchanged() -> None:
    request = read(asked(story_topics=["housing", "health"]))
    grant_request = to_grant_request(request, DEPARTMENT_ID, explicit_topics=["health"])
    checked = validate_request(grant_request)
    assert list(checked.data_points) == list(request.data_points)
    assert list(checked.story_topics) == ["housing", "health"]
    assert list(checked.explicit_topics) == ["health"]
    assert (checked.duration_days, checked.data_life_days, checked.max_fetches) == (30, 90, 10)


def test_granted_details_say_what_was_granted_and_until_when() -> None:
    starts = datetime(2026, 1, 1, 9, 0, 0, 123456, tzinfo=UTC)
    grant = Grant(
        citizen_id="c1",
        department_id=DEPARTMENT_ID,
        purpose_code="emergency_housing",
        purpose_text=PURPOSE_TEXT,
        data_points=["identity.name"],
        story_topics=["housing", "health"],
        explicit_topics=["health"],
        case_reference="HOU-2291",
        starts_at=starts,
        ends_at=starts + timedelta(days=30),
        data_life_days=90,
        max_fetches=10,
        given_by="citizen:a1",
        created_at=starts,
    )
    details = granted_details(grant)
    assert details == [
        {
            "type": "tellonce_data",
            "purpose": "emergency_housing",
            "data_points": ["identity.name"],
            "story_topics": ["housing", "health"],
            "explicit_topics": ["health"],
            "case_reference": "HOU-2291",
            "ends_at": "2026-01-31T09:00:00Z",
            "duration_days": 30,
            "data_life_days": 90,
            "max_fetches": 10,
        }
    ]
    assert json.loads(json.dumps(details)) == details


def test_a_request_round_trips_through_a_stored_grant(db: Any, vault: Vault) -> None:
    request = read(asked())
    with db.tx() as session:
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, "sam@example.com", citizen_id=citizen.id)
        given = give_grant(
            session,
            vault,
            actors.citizen(account.id, citizen.id),
            to_grant_request(request, DEPARTMENT_ID, leave_out=["money.income_monthly"]),
        )
        grant_id = given.grant.id
    with db.tx() as session:
        stored = session.get(Grant, grant_id)
        assert stored is not None
        (details,) = granted_details(stored)
    assert details["data_points"] == ["identity.name", "contact.address"]
    assert details["story_topics"] == ["housing"]
    assert details["duration_days"] == 30
    assert details["ends_at"] == "2026-01-31T09:00:00Z"  # the frozen clock starts 1 Jan 09:00


# --- The envelope ---------------------------------------------------------------------------

REQUIRED = "authorization_details is required."
NOT_JSON = "authorization_details must be valid JSON."
NO_TYPE = "Each item in authorization_details must have a type, as text."
BAD_ENVELOPES: dict[str, tuple[str | None, str]] = {
    "missing": (None, REQUIRED),
    "empty-string": ("", REQUIRED),
    "not-json": ("[{", NOT_JSON),
    "nan": (
        '[{"type": NaN}]',
        "authorization_details must be valid JSON (NaN and Infinity are not).",
    ),
    "deep": ("[" * 4000 + "]" * 4000, NOT_JSON),
    "huge-int": ("[" + "9" * 5000 + "]", NOT_JSON),
    "object": (json.dumps(asked()), "authorization_details must be a JSON array."),
    "empty": ("[]", "authorization_details must hold one tellonce_data object."),
    "not-an-object": (
        '["tellonce_data"]',
        "Each item in authorization_details must be a JSON object.",
    ),
    "no-type": ('[{"purpose": "emergency_housing"}]', NO_TYPE),
    "type-not-text": ('[{"type": 7}]', NO_TYPE),
    "unknown-type": ('[{"type": "x"}]', "We do not know the authorization_details type 'x'."),
    "unknown-type-beside-ours": (
        json.dumps([asked(), {"type": "payment_initiation"}]),
        "We do not know the authorization_details type 'payment_initiation'.",
    ),
    "unknown-type-not-repeated": (
        '[{"type": "<b>Sam Taylor</b>"}]',
        "We do not know that authorization_details type.",
    ),
    "two-of-ours": (
        json.dumps([asked(), asked()]),
        "authorization_details may hold only one tellonce_data object.",
    ),
    "duplicate-field": (
        '[{"type": "tellonce_data", "purpose": "a", "purpose": "b"}]',
        "authorization_details gives the field 'purpose' twice.",
    ),
    "over-8-KB": (
        json.dumps([asked(case_reference="A" * 9000)]),
        "authorization_details is too long: it may be at most 8 KB.",
    ),
}


@pytest.mark.parametrize(("raw", "message"), BAD_ENVELOPES.values(), ids=BAD_ENVELOPES.keys())
def test_a_bad_envelope_is_refused(raw: str | None, message: str) -> None:
    with refused(message):
        parse_authorization_details(raw)


def test_an_unserialisable_list_is_refused() -> None:
    with refused("authorization_details must be valid JSON."):
        parse_authorization_details([{"type": DETAILS_TYPE, "when": datetime.now(UTC)}])


def test_a_list_over_8_kb_is_refused() -> None:
    with refused("authorization_details is too long: it may be at most 8 KB."):
        parse_authorization_details([asked(case_reference="é" * 4500)])


def test_exactly_8_kb_is_accepted() -> None:
    item = asked()
    padding = 8192 - len(json.dumps([item], ensure_ascii=False))
    raw = json.dumps([item], ensure_ascii=False)[:-1] + " " * padding + "]"
    assert len(raw.encode()) == 8192
    assert parse_authorization_details(raw) == [item]


# --- The tellonce_data object ---------------------------------------------------------------

CASE_RULE = "case_reference must be 1 to 64 letters, digits, or - _ / ."
PURPOSE_RULE = "purpose must be a purpose code, like emergency_housing."
KEYS_RULE = "{} must be a list of data point keys, like contact.address."
OUTSIDE = "{} is not part of the purpose emergency_housing."
BAD_REQUESTS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown-field": (
        {"locations": ["https://api.example"]},
        "The tellonce_data object has a field we do not know: 'locations'.",
    ),
    "unknown-field-not-repeated": (
        {"<i>sam@example.com</i>": 1},
        "The tellonce_data object has a field we do not know.",
    ),
    **{
        f"no-{name}": ({name: DROP}, f"authorization_details must include {name}.")
        for name in ("purpose", "case_reference", "duration_days", "data_life_days", "max_fetches")
    },
    "purpose-not-a-code": ({"purpose": "Emergency Housing"}, PURPOSE_RULE),
    "purpose-not-text": ({"purpose": ["emergency_housing"]}, PURPOSE_RULE),
    "purpose-not-registered": (
        {"purpose": "debt_advice"},
        "The purpose debt_advice is not one this department registered.",
    ),
    "data-point-outside-purpose": (
        {"data_points": ["identity.name", "contact.email"], "optional": []},
        OUTSIDE.format("contact.email"),
    ),
    "data-point-not-repeated": (
        {"data_points": ["Sam Taylor, 10 High Street"], "optional": []},
        OUTSIDE.format("A data point"),
    ),
    "data-points-not-a-list": ({"data_points": "identity.name"}, KEYS_RULE.format("data_points")),
    "data-point-not-text": (
        {"data_points": ["identity.name", 7], "optional": []},
        KEYS_RULE.format("data_points"),
    ),
    "topic-outside-purpose": (
        {"story_topics": ["justice"]},
        OUTSIDE.format("The story topic justice"),
    ),
    "topics-null": (
        {"story_topics": None},
        "story_topics must be a list of story topics, like housing.",
    ),
    "optional-not-asked-for": (
        {"optional": ["identity.name", "contact.phone"], "data_points": ["identity.name"]},
        "optional names contact.phone, which is not in data_points.",
    ),
    "optional-not-a-list": ({"optional": {"identity.name": True}}, KEYS_RULE.format("optional")),
    "case-empty": ({"case_reference": ""}, CASE_RULE),
    "case-leading-dash": ({"case_reference": "-HOU"}, CASE_RULE),
    "case-space": ({"case_reference": "HOU 2291"}, CASE_RULE),
    "case-trailing-newline": ({"case_reference": "HOU-2291\n"}, CASE_RULE),
    "case-too-long": ({"case_reference": "H" * 65}, CASE_RULE),
    "case-number": ({"case_reference": 2291}, CASE_RULE),
    **{
        f"{name}-{label}": ({name: value}, f"{name} must be a whole number from 1 to {most}.")
        for name, most in (
            ("duration_days", 366),
            ("data_life_days", 3650),
            ("max_fetches", 10_000),
        )
        for label, value in (
            ("zero", 0),
            ("negative", -1),
            ("too-many", most + 1),
            ("text", "30"),
            ("float", 30.0),
            ("bool", True),
            ("null", None),
        )
    },
    "nothing-asked": (
        {"data_points": [], "optional": [], "story_topics": []},
        "authorization_details must ask for at least one data point or story topic.",
    ),
}


@pytest.mark.parametrize(("changes", "message"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_bad_request_is_refused_naming_the_field(changes: dict[str, Any], message: str) -> None:
    with refused(message):
        read(asked(**changes))


def test_another_purposes_data_points_are_not_allowed() -> None:
    # contact.email is registered, but for council_tax, not for emergency_housing.
    with refused("contact.email is not part of the purpose emergency_housing."):
        read(asked(data_points=["contact.email"], optional=[]))


def test_a_purpose_listing_a_key_we_do_not_know_is_refused() -> None:
    registered = department()
    registered.purposes = [{**registered.purposes[0], "data_points": ["contact.fax"]}]
    details = parse_authorization_details([asked(data_points=["contact.fax"], optional=[])])
    with refused("We do not know the kind of information 'contact.fax'."):
        read_data_request(details, registered)


def test_details_without_our_object_are_refused() -> None:
    with refused("authorization_details must hold one tellonce_data object."):
        read_data_request([], department())


# --- The person's answer --------------------------------------------------------------------


def test_a_needed_item_cannot_be_left_out() -> None:
    with refused("identity.name is needed and cannot be left out."):
        to_grant_request(read(asked()), DEPARTMENT_ID, leave_out=["identity.name"])


def test_only_items_asked_for_can_be_left_out() -> None:
    with refused("Only information the department asked for can be left out."):
        to_grant_request(read(asked()), DEPARTMENT_ID, leave_out=["contact.phone"])


def test_an_explicit_yes_only_covers_topics_asked_for() -> None:
    with refused("A story topic can only be shared if the department asked for it."):
        to_grant_request(read(asked()), DEPARTMENT_ID, explicit_topics=["health"])


def test_leaving_out_everything_shares_nothing_and_is_refused() -> None:
    request = read(asked(data_points=["money.income_monthly"], story_topics=[]))
    with refused("There is nothing left to share. Tick at least one item, or do not share."):
        to_grant_request(request, DEPARTMENT_ID, leave_out=["money.income_monthly"])


# --- Whatever arrives, the only failure is a plain refusal ----------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
FIELD_NAMES = st.sampled_from([*asked().keys(), "locations", "actions"])


def _read_or_refuse(raw: Any) -> None:
    try:
        read_data_request(parse_authorization_details(raw), department())
    except InvalidAuthorizationDetails as error:
        assert error.message
        assert "Traceback" not in error.message


@settings(max_examples=200, deadline=None)
@given(JSON_VALUES)
def test_any_json_value_is_read_or_refused_plainly(value: Any) -> None:
    _read_or_refuse(json.dumps(value))
    if isinstance(value, list):
        _read_or_refuse(value)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=10))
def test_any_near_miss_object_is_read_or_refused_plainly(fields: dict[str, Any]) -> None:
    item = {**asked(), **fields, "type": DETAILS_TYPE}
    _read_or_refuse([item])
    _read_or_refuse(json.dumps([item]))
