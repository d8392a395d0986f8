"""The department API for decisions, reviews, challenges and deletion confirmations.

Routes on the same blueprint as ``/api/v1/data``: validate (marshmallow) → authenticate
(DPoP, ``connectors.resource``) → hand plain values to ``connectors.decisions_api`` inside
one unit of work → serialize. A refused write leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, request
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from connectors import decisions_api
from connectors.resource import ApiCaller, authenticate_call
from web.api import ApiErrorSchema, blp
from web.state import unit_of_work

# The acting officer is written as ``department:<client id>/<name>`` in 200 characters, and a
# client id has at most 64: 120 characters always fit.
MAX_OFFICER = 120
REVIEW_KINDS = ("adjusted", "overturned", "upheld")
ANSWER_OUTCOMES = ("corrected", "upheld", "decision_changed")
CHALLENGE_STATUSES = ("open", *ANSWER_OUTCOMES, "all")


class NotBlank(validate.Regexp):
    """Text with a character that is not a space (and, for ``no_nul``, no NUL character)."""

    def __init__(self, *, no_nul: bool) -> None:
        # JSON Schema patterns match anywhere in the text: "\S" says "has a non-space".
        # PostgreSQL cannot store a NUL, so a body's text may not hold one; a header never
        # can (HTTP forbids it), so there the plainer pattern documents it as well.
        pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$" if no_nul else r"\S"
        super().__init__(pattern, error="must not be blank.")
        self.no_nul = no_nul

    def __call__(self, value: Any) -> Any:
        """Pass the value on if it is not blank and holds no NUL character."""
        if "\x00" in value:
            raise ValidationError("must not contain the NUL character.")
        if self.regex.search(value) is None:
            raise ValidationError(self._format_error(value))
        return value


BODY_TEXT = NotBlank(no_nul=True)
HEADER_TEXT = NotBlank(no_nul=False)


def _text(
    most: int, example: str, description: str | None = None, *, header: bool = False, **kw: Any
) -> fields.String:
    metadata = {"example": example, **({"description": description} if description else {})}
    checks = [validate.Length(min=1, max=most), HEADER_TEXT if header else BODY_TEXT]
    return fields.String(validate=checks, metadata=metadata, **kw)


def _flatten(messages: Any, where: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested messages into ``{"data_points_used[0].version": [...]}``."""
    if not isinstance(messages, Mapping):
        found = messages if isinstance(messages, list) else [str(messages)]
        return {where or "body": [str(m) for m in found]}
    flat: dict[str, list[str]] = {}
    for name, inner in messages.items():
        path = f"{where}[{name}]" if isinstance(name, int) else f"{where}.{name}" if where else name
        flat.update(_flatten(inner, str(path)))
    return flat


class ApiInput(Schema):
    """A request body whose errors name the field by its path, like ``algorithm.name``."""

    def handle_error(self, error: ValidationError, data: Any, *, many: bool, **kwargs: Any) -> None:
        """Re-raise with flat field paths, so the one-line message names the exact field."""
        raise ValidationError(_flatten(error.messages)) from None


class OfficerHeaders(Schema):
    acting_officer = _text(
        MAX_OFFICER,
        "A. Officer",
        "The name of the person doing this; kept with the record.",
        header=True,
        data_key="Acting-Officer",
        required=True,
    )


class ReviewHeaders(Schema):
    acting_officer = _text(
        MAX_OFFICER,
        "A. Officer",
        "Who records the review, if not the reviewer.",
        header=True,
        data_key="Acting-Officer",
        load_default=None,
    )


class Algorithm(Schema):
    name = _text(200, "Priority need screener", required=True)
    version = _text(64, "2.3.1", required=True)


class NamedPerson(Schema):
    name = _text(200, "Priya Shah", required=True)
    role = _text(200, "Head of Housing Options", required=True)


class UsedDataPoint(Schema):
    key = _text(64, "contact.address", required=True)
    version = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1), metadata={"example": 2}
    )


class OtherInformation(Schema):
    description = _text(500, "Housing register banding rules", required=True)
    source = _text(500, "Anytown Council allocation policy 2025", required=True)


class DecisionIn(ApiInput):
    case_reference = _text(64, "HOU-2291", "The case of the permission.", required=True)
    title = _text(200, "Emergency housing", required=True)
    outcome = _text(2000, "Priority need accepted", required=True)
    reasons = _text(5000, "The household has no safe place to stay tonight.", required=True)
    automated = fields.Boolean(
        required=True, metadata={"description": "Was it decided by a computer system?"}
    )
    algorithm = fields.Nested(
        Algorithm,
        allow_none=True,
        load_default=None,
        metadata={"description": "Required when automated: the system and its version."},
    )
    accountable_officer = fields.Nested(
        NamedPerson,
        required=True,
        metadata={"description": "The named person accountable for the decision."},
    )
    data_points_used = fields.List(
        fields.Nested(UsedDataPoint),
        required=True,
        validate=validate.Length(max=200),
        metadata={"description": "Each a version you were given under this permission."},
    )
    other_information_used = fields.List(
        fields.Nested(OtherInformation), load_default=list, validate=validate.Length(max=50)
    )

    @validates_schema
    def _algorithm_when_automated(self, data: dict[str, Any], **kwargs: Any) -> None:
        # Said here too, so the answer names the field; consent.decisions has the last word.
        if data.get("automated") and data.get("algorithm") is None:
            raise ValidationError(
                "is required when the decision is automated: give its name and version.",
                "algorithm",
            )


class DecisionOut(Schema):
    id = fields.String(required=True)
    series_id = fields.String(
        required=True, metadata={"description": "Shared by every version of the decision."}
    )
    version = fields.Integer(required=True, metadata={"example": 1})
    kind = fields.String(
        required=True,
        metadata={"description": "original, adjusted, overturned or upheld", "example": "original"},
    )
    subject = fields.String(
        required=True, metadata={"description": "The person, under an id only you get."}
    )
    created_at = fields.DateTime(required=True)
    data_points_used = fields.List(fields.Nested(UsedDataPoint), required=True)


class ReviewIn(ApiInput):
    kind = fields.String(
        required=True, validate=validate.OneOf(REVIEW_KINDS), metadata={"example": "overturned"}
    )
    reviewer = fields.Nested(
        NamedPerson,
        required=True,
        metadata={"description": "For an automated decision: not its accountable officer."},
    )
    reasons = _text(5000, "The tenancy had ended before the decision.", required=True)
    outcome = _text(
        2000,
        "Priority need accepted",
        "The new outcome; required unless the decision is upheld.",
        load_default=None,
    )


class ChallengeQuery(Schema):
    status = fields.String(
        load_default="open",
        validate=validate.OneOf(CHALLENGE_STATUSES),
        metadata={"description": "open (the default), corrected, upheld, decision_changed or all."},
    )


class ChallengeOut(Schema):
    id = fields.String(required=True)
    target = fields.String(
        required=True, metadata={"description": "data_point or decision", "example": "data_point"}
    )
    decision_id = fields.String(required=True, metadata={"description": "Where it was seen."})
    subject = fields.String(
        required=True, metadata={"description": "The person, under an id only you get."}
    )
    key = fields.String(allow_none=True, required=True, metadata={"example": "contact.address"})
    version = fields.Integer(allow_none=True, required=True, metadata={"example": 2})
    reason = fields.String(
        required=True,
        metadata={"description": "In the person's own words.", "example": "I moved in May."},
    )
    opened_at = fields.DateTime(required=True)
    due_at = fields.DateTime(required=True, metadata={"description": "One month after opening."})
    overdue = fields.Boolean(required=True)
    status = fields.String(
        required=True,
        metadata={"description": "open, corrected, upheld or decision_changed", "example": "open"},
    )
    answer = fields.String(allow_none=True, required=True)
    answered_at = fields.DateTime(allow_none=True, required=True)
    corrected_version = fields.Integer(allow_none=True, required=True)


class ChallengeList(Schema):
    challenges = fields.List(fields.Nested(ChallengeOut), required=True)


class AnswerIn(ApiInput):
    outcome = fields.String(
        required=True, validate=validate.OneOf(ANSWER_OUTCOMES), metadata={"example": "corrected"}
    )
    reasons = _text(5000, "Checked against the tenancy record.", required=True)
    value = fields.Raw(
        allow_none=True,
        load_default=None,
        metadata={
            "description": "For corrected: the right value, as the catalogue defines the key.",
            "example": {"lines": ["1 Example Road"], "town": "Anytown", "postcode": "AN1 1AA"},
        },
    )


class DeletionOut(Schema):
    grant_id = fields.String(required=True)
    deletion_confirmed_at = fields.DateTime(required=True)


DECISION_EXAMPLE = {
    "case_reference": "HOU-2291",
    "title": "Emergency housing",
    "outcome": "Priority need accepted",
    "reasons": "The household has no safe place to stay tonight.",
    "automated": True,
    "algorithm": {"name": "Priority need screener", "version": "2.3.1"},
    "accountable_officer": {"name": "Priya Shah", "role": "Head of Housing Options"},
    "data_points_used": [{"key": "contact.address", "version": 2}],
    "other_information_used": [
        {"description": "Housing register banding rules", "source": "Allocation policy 2025"}
    ],
}
REVIEW_EXAMPLE = {
    "kind": "overturned",
    "reviewer": {"name": "A. Reviewer", "role": "Senior Housing Officer"},
    "reasons": "The address used was out of date.",
    "outcome": "Priority need not accepted",
}
ANSWER_EXAMPLE = {
    "outcome": "corrected",
    "reasons": "Checked against the tenancy record.",
    "value": {"lines": ["1 Example Road"], "town": "Anytown", "postcode": "AN1 1AA"},
}


def _caller() -> ApiCaller:
    """Authenticate the call in its own transaction.

    The proof's ``jti`` is kept even when the call is then refused, so a captured request
    cannot be replayed later, when it might succeed.
    """
    with unit_of_work() as (session, vault):
        return authenticate_call(
            session,
            authorization=request.headers.get("Authorization"),
            dpop_values=request.headers.getlist("DPoP"),
            method=request.method,
            url=str(current_app.config["BASE_URL"]).rstrip("/") + request.path,
            now=vault.clock(),
        )


def _refusals(*statuses: int) -> Any:
    """Document the error answers a route can give, all ``{"error", "message"}``."""
    descriptions = {
        401: "No token, a bad token or a bad proof.",
        403: "This token cannot do this (use the person's permission's token).",
        404: "Not found, or not yours: the two look the same.",
        409: "Already done, or not possible yet.",
        422: "The request breaks a rule; the message names the field.",
    }

    def document(view: Any) -> Any:
        for status in statuses:
            view = blp.alt_response(
                status, schema=ApiErrorSchema, description=descriptions[status]
            )(view)
        return blp.doc(security=[{"DPoP": []}])(view)

    return document


@blp.route("/decisions", methods=["POST"])
@blp.arguments(OfficerHeaders, location="headers", as_kwargs=True)
@blp.arguments(DecisionIn, example=DECISION_EXAMPLE)
@blp.response(201, DecisionOut)
@_refusals(401, 403, 404, 422)
def record_decision(body: dict[str, Any], acting_officer: str) -> Any:
    """Record a decision about the person, citing exactly the data point versions it used."""
    caller = _caller()
    with unit_of_work() as (session, vault):
        return decisions_api.record_decision(
            session, vault, caller, body, acting_officer=acting_officer
        )


@blp.route("/decisions/<decision_id>/reviews", methods=["POST"])
@blp.arguments(ReviewHeaders, location="headers", as_kwargs=True)
@blp.arguments(ReviewIn, example=REVIEW_EXAMPLE)
@blp.response(201, DecisionOut)
@_refusals(401, 404, 422)
def review_decision(body: dict[str, Any], decision_id: str, acting_officer: str | None) -> Any:
    """A named reviewer adjusts, overturns or upholds a decision: its next version."""
    caller = _caller()
    with unit_of_work() as (session, vault):
        return decisions_api.review_decision(
            session, vault, caller, decision_id, body, acting_officer=acting_officer
        )


@blp.route("/challenges", methods=["GET"])
@blp.arguments(ChallengeQuery, location="query", as_kwargs=True)
@blp.response(200, ChallengeList)
@_refusals(401, 422)
def list_challenges(status: str) -> Any:
    """Your department's challenges: people saying a data point or a decision is wrong."""
    caller = _caller()
    with unit_of_work() as (session, vault):
        return decisions_api.department_challenges(session, vault, caller, status=status)


@blp.route("/challenges/<challenge_id>/answer", methods=["POST"])
@blp.arguments(OfficerHeaders, location="headers", as_kwargs=True)
@blp.arguments(AnswerIn, example=ANSWER_EXAMPLE)
@blp.response(200, ChallengeOut)
@_refusals(401, 404, 409, 422)
def answer_challenge(body: dict[str, Any], challenge_id: str, acting_officer: str) -> Any:
    """Answer a challenge: corrected (with the right value), upheld, or decision changed."""
    caller = _caller()
    with unit_of_work() as (session, vault):
        return decisions_api.answer_challenge(
            session, vault, caller, challenge_id, body, acting_officer=acting_officer
        )


@blp.route("/grants/<grant_id>/deletion", methods=["POST"])
@blp.arguments(OfficerHeaders, location="headers", as_kwargs=True)
@blp.response(200, DeletionOut)
@_refusals(401, 404, 409, 422)
def confirm_deletion(grant_id: str, acting_officer: str) -> Any:
    """Confirm you deleted what you received under a permission that has ended."""
    caller = _caller()
    with unit_of_work() as (session, vault):
        return decisions_api.confirm_deletion(
            session, vault, caller, grant_id, acting_officer=acting_officer
        )
