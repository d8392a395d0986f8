"""Rich authorization requests (RFC 9396): what a department asks for, checked against its purposes.

A department sends ``authorization_details`` holding one object of type ``tellonce_data``.
``parse_authorization_details`` checks the envelope, ``read_data_request`` checks the object
against the purpose the department registered, ``to_grant_request`` turns the person's answer
into a consent ``GrantRequest``, and ``granted_details`` says what was granted, for the token
response. Every error is ``InvalidAuthorizationDetails`` with a message that names the field
and never repeats a value that could be personal or unprintable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from connectors.errors import InvalidAuthorizationDetails
from connectors.models import Department
from consent.grants import (
    CASE_REFERENCE,
    CODE,
    MAX_DATA_LIFE_DAYS,
    MAX_DURATION_DAYS,
    MAX_FETCHES,
    GrantRequest,
)
from consent.models import Grant
from vault.catalogue import CATALOGUE, STORY_TOPICS

DETAILS_TYPE = "tellonce_data"
MAX_DETAILS_BYTES = 8 * 1024
# Only text that looks like a key or code is repeated back in a message; anything else
# (long, unprintable, markup) is described instead, so messages stay safe to show and log.
_SHOWABLE = re.compile(r"[A-Za-z0-9_.:/-]{1,64}")


@dataclass(frozen=True)
class DataRequest:
    """One checked ``tellonce_data`` request, ready to show on the consent page."""

    purpose_code: str
    purpose_text: str  # the department's registered description for that purpose
    data_points: tuple[str, ...]  # every key asked for, in the order given, no duplicates
    optional: tuple[str, ...]  # subset of data_points the person may untick
    story_topics: tuple[str, ...]
    case_reference: str
    duration_days: int
    data_life_days: int
    max_fetches: int


def _shown(value: object) -> str | None:
    """The value if it is safe to repeat in a message, else None."""
    if isinstance(value, str) and _SHOWABLE.fullmatch(value):
        return value
    return None


def _refuse(message: str) -> InvalidAuthorizationDetails:
    return InvalidAuthorizationDetails(message)


# --- The envelope ---------------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads would silently keep the last of two equal keys; a request that says two
    # things at once is refused instead of guessed at.
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            shown = _shown(key)
            named = f" '{shown}'" if shown else ""
            raise _refuse(f"authorization_details gives the field{named} twice.")
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise _refuse("authorization_details must be valid JSON (NaN and Infinity are not).")


def _as_text(raw: str | list[Any] | None) -> str:
    if raw is None or raw == "":
        raise _refuse("authorization_details is required.")
    if isinstance(raw, list):
        try:
            return json.dumps(raw, allow_nan=False, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            raise _refuse("authorization_details must be valid JSON.") from None
    if not isinstance(raw, str):
        raise _refuse("authorization_details must be a JSON array.")
    return raw


def parse_authorization_details(raw: str | list[Any] | None) -> list[dict[str, Any]]:
    """Check the ``authorization_details`` envelope: a JSON array holding one known object."""
    text = _as_text(raw)
    if len(text) > MAX_DETAILS_BYTES or (
        len(text.encode("utf-8", "surrogatepass")) > MAX_DETAILS_BYTES
    ):
        raise _refuse("authorization_details is too long: it may be at most 8 KB.")
    try:
        parsed = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        # ValueError covers malformed JSON and numbers too long to read; deep nesting
        # runs out of stack. Neither message would be plain English, so say it simply.
        raise _refuse("authorization_details must be valid JSON.") from None
    if not isinstance(parsed, list):
        raise _refuse("authorization_details must be a JSON array.")
    if not parsed:
        raise _refuse(f"authorization_details must hold one {DETAILS_TYPE} object.")
    for item in parsed:
        if not isinstance(item, dict):
            raise _refuse("Each item in authorization_details must be a JSON object.")
        kind = item.get("type")
        if not isinstance(kind, str):
            raise _refuse("Each item in authorization_details must have a type, as text.")
        if kind != DETAILS_TYPE:
            shown = _shown(kind)
            if shown is None:
                raise _refuse("We do not know that authorization_details type.")
            raise _refuse(f"We do not know the authorization_details type '{shown}'.")
    if len(parsed) > 1:
        raise _refuse(f"authorization_details may hold only one {DETAILS_TYPE} object.")
    return parsed


# --- The tellonce_data object ---------------------------------------------------------------

_RULES: Mapping[str, str] = {
    "type": f"type must be {DETAILS_TYPE}.",
    "purpose": "purpose must be a purpose code, like emergency_housing.",
    "data_points": "data_points must be a list of data point keys, like contact.address.",
    "optional": "optional must be a list of data point keys, like contact.address.",
    "story_topics": "story_topics must be a list of story topics, like housing.",
    "case_reference": "case_reference must be 1 to 64 letters, digits, or - _ / .",
    "duration_days": f"duration_days must be a whole number from 1 to {MAX_DURATION_DAYS}.",
    "data_life_days": f"data_life_days must be a whole number from 1 to {MAX_DATA_LIFE_DAYS}.",
    "max_fetches": f"max_fetches must be a whole number from 1 to {MAX_FETCHES}.",
}


def _messages(name: str) -> dict[str, str | list[Any] | dict[Any, Any]]:
    rule = _RULES[name]
    return {
        "required": f"authorization_details must include {name}.",
        "null": rule,
        "invalid": rule,
    }


def _text(name: str, pattern: re.Pattern[str]) -> fields.String:
    def check(value: str) -> None:
        # fullmatch, not the pattern's own match: "$" would let a trailing newline through.
        if pattern.fullmatch(value) is None:
            raise ValidationError(_RULES[name])

    return fields.String(required=True, validate=check, error_messages=_messages(name))


def _keys(name: str) -> fields.List:
    return fields.List(
        fields.String(validate=validate.Length(min=1, max=64), error_messages=_messages(name)),
        load_default=list,
        error_messages=_messages(name),
    )


def _whole(name: str, most: int) -> fields.Integer:
    # strict: "30", 30.0 and true are not whole numbers here.
    return fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=most, error=_RULES[name]),
        error_messages=_messages(name),
    )


class TellOnceDataSchema(Schema):
    """The ``tellonce_data`` object; unknown fields are refused (marshmallow's default)."""

    type = fields.String(
        required=True,
        validate=validate.Equal(DETAILS_TYPE, error=_RULES["type"]),
        error_messages=_messages("type"),
    )
    purpose = _text("purpose", CODE)
    data_points = _keys("data_points")
    optional = _keys("optional")
    story_topics = _keys("story_topics")
    case_reference = _text("case_reference", CASE_REFERENCE)
    duration_days = _whole("duration_days", MAX_DURATION_DAYS)
    data_life_days = _whole("data_life_days", MAX_DATA_LIFE_DAYS)
    max_fetches = _whole("max_fetches", MAX_FETCHES)


_SCHEMA = TellOnceDataSchema()


def _first_problem(messages: Mapping[Any, Any]) -> str:
    """One plain sentence for the first field that failed: unknown fields, then schema order."""
    unknown = [name for name in messages if name not in _RULES]
    if unknown:
        shown = _shown(unknown[0])
        if shown is None:
            return f"The {DETAILS_TYPE} object has a field we do not know."
        return f"The {DETAILS_TYPE} object has a field we do not know: '{shown}'."
    for name, rule in _RULES.items():
        if name in messages:
            found = messages[name]
            # A list item's error arrives as {index: [...]}; the field's rule says it better.
            if isinstance(found, list) and found and isinstance(found[0], str):
                return found[0]
            return rule
    return f"The {DETAILS_TYPE} object is not valid."


def _load(item: dict[str, Any]) -> dict[str, Any]:
    try:
        loaded = _SCHEMA.load(item)
    except ValidationError as error:
        # `from None`: marshmallow's error holds the raw input, which stays off the chain.
        raise _refuse(_first_problem(error.normalized_messages())) from None
    return dict(loaded)


def _registered_purpose(department: Department, code: str) -> Mapping[str, Any]:
    for purpose in department.purposes or ():
        if isinstance(purpose, Mapping) and purpose.get("code") == code:
            return purpose
    raise _refuse(f"The purpose {code} is not one this department registered.")


def _within_purpose(code: str, purpose: Mapping[str, Any], data: dict[str, Any]) -> None:
    allowed_keys = set(purpose.get("data_points") or ())
    for key in data["data_points"]:
        shown = _shown(key) or "A data point"
        if key not in allowed_keys:
            raise _refuse(f"{shown} is not part of the purpose {code}.")
        if key not in CATALOGUE:
            raise _refuse(f"We do not know the kind of information '{shown}'.")
    allowed_topics = set(purpose.get("story_topics") or ())
    for topic in data["story_topics"]:
        shown = _shown(topic) or "A story topic"
        if topic not in allowed_topics:
            raise _refuse(f"The story topic {shown} is not part of the purpose {code}.")
        if topic not in STORY_TOPICS:
            raise _refuse(f"We do not know the story topic '{shown}'.")
    asked = set(data["data_points"])
    for key in data["optional"]:
        if key not in asked:
            shown = _shown(key) or "a key"
            raise _refuse(f"optional names {shown}, which is not in data_points.")


def read_data_request(details: list[dict[str, Any]], department: Department) -> DataRequest:
    """Check the one ``tellonce_data`` object against the department's registered purpose."""
    ours = [item for item in details if isinstance(item, dict) and item.get("type") == DETAILS_TYPE]
    if len(ours) != 1:
        raise _refuse(f"authorization_details must hold one {DETAILS_TYPE} object.")
    data = _load(ours[0])
    # Order kept, repeats dropped: the consent page lists each thing once.
    for name in ("data_points", "optional", "story_topics"):
        data[name] = tuple(dict.fromkeys(data[name]))
    code = data["purpose"]
    purpose = _registered_purpose(department, code)
    _within_purpose(code, purpose, data)
    if not data["data_points"] and not data["story_topics"]:
        raise _refuse("authorization_details must ask for at least one data point or story topic.")
    return DataRequest(
        purpose_code=code,
        purpose_text=str(purpose.get("description") or ""),
        data_points=data["data_points"],
        optional=data["optional"],
        story_topics=data["story_topics"],
        case_reference=data["case_reference"],
        duration_days=data["duration_days"],
        data_life_days=data["data_life_days"],
        max_fetches=data["max_fetches"],
    )


# --- The person's answer, and what was granted ----------------------------------------------


def to_grant_request(
    request: DataRequest,
    department_id: str,
    *,
    leave_out: Iterable[str] = (),
    explicit_topics: Iterable[str] = (),
) -> GrantRequest:
    """Turn the person's yes into a consent request, without the optional items they unticked."""
    left_out = set(leave_out)
    for key in left_out:
        if key not in request.data_points:
            raise _refuse("Only information the department asked for can be left out.")
        if key not in request.optional:
            raise _refuse(f"{key} is needed and cannot be left out.")
    explicit = tuple(dict.fromkeys(explicit_topics))
    if not set(explicit) <= set(request.story_topics):
        raise _refuse("A story topic can only be shared if the department asked for it.")
    kept = tuple(key for key in request.data_points if key not in left_out)
    if not kept and not request.story_topics:
        raise _refuse("There is nothing left to share. Tick at least one item, or do not share.")
    return GrantRequest(
        department_id=department_id,
        purpose_code=request.purpose_code,
        purpose_text=request.purpose_text,
        data_points=kept,
        case_reference=request.case_reference,
        duration_days=request.duration_days,
        data_life_days=request.data_life_days,
        max_fetches=request.max_fetches,
        story_topics=request.story_topics,
        explicit_topics=explicit,
    )


def granted_details(grant: Grant) -> list[dict[str, Any]]:
    """The RFC 9396 ``authorization_details`` actually granted, for the token response."""
    ends_at = grant.ends_at.astimezone(UTC)
    return [
        {
            "type": DETAILS_TYPE,
            "purpose": grant.purpose_code,
            "data_points": list(grant.data_points),
            "story_topics": list(grant.story_topics),
            "explicit_topics": list(grant.explicit_topics),
            "case_reference": grant.case_reference,
            "ends_at": ends_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "duration_days": (grant.ends_at - grant.starts_at).days,
            "data_life_days": grant.data_life_days,
            "max_fetches": grant.max_fetches,
        }
    ]
