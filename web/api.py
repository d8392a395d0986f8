"""The department API (``/api/v1``), described by OpenAPI at ``/api/v1/openapi.json``.

Every call carries ``Authorization: DPoP <token>`` and a ``DPoP`` proof; the checks live in
``connectors.resource``. Schemas are marshmallow, served through flask-smorest.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from flask_smorest import Api, Blueprint
from marshmallow import Schema, ValidationError, fields, validate

from connectors.data_api import fetch_data, plan_data
from connectors.resource import check_call, confirm_call
from web.state import read_only_unit_of_work, unit_of_work

API_PREFIX = "/api/v1"
blp = Blueprint(
    "api",
    __name__,
    url_prefix=API_PREFIX,
    description="What departments may fetch, with the person's permission.",
)


def no_nul(value: str) -> None:
    """Refuse text holding a NUL character: PostgreSQL cannot store one."""
    # HTTP forbids NUL in a header, but not every server in front of us refuses it.
    if "\x00" in value:
        raise ValidationError("must not contain the NUL character.")


class DataHeaders(Schema):
    """Who is looking, and for which case: both written into the person's record."""

    case_reference = fields.String(
        data_key="Case-Reference",
        required=True,
        validate=[validate.Length(min=1, max=64), no_nul],
        metadata={"description": "The case the permission was given for.", "example": "HOU-2291"},
    )
    acting_officer = fields.String(
        data_key="Acting-Officer",
        required=True,
        validate=[validate.Length(min=1, max=200), no_nul],
        metadata={"description": "The name of the person looking.", "example": "A. Officer"},
    )


class DataPointSchema(Schema):
    key = fields.String(required=True, metadata={"example": "contact.address"})
    label = fields.String(required=True, metadata={"example": "Address"})
    value = fields.Raw(required=True, metadata={"description": "As the catalogue defines it."})
    version = fields.Integer(required=True)
    source = fields.String(required=True, metadata={"example": "self"})
    recorded_at = fields.DateTime(required=True)
    contested = fields.Boolean(required=True)


class StoryPartSchema(Schema):
    topic = fields.String(required=True, metadata={"example": "housing"})
    text = fields.String(required=True)
    version = fields.Integer(required=True)


class ReceiptSchema(Schema):
    access_id = fields.String(required=True)
    ledger_index = fields.Integer(required=True)
    leaf_hash = fields.String(required=True, metadata={"description": "Base64 leaf hash."})


class DataSchema(Schema):
    grant_id = fields.String(required=True)
    subject = fields.String(
        required=True, metadata={"description": "The person, under an id only you get."}
    )
    case_reference = fields.String(required=True)
    data_points = fields.List(fields.Nested(DataPointSchema), required=True)
    story = fields.List(fields.Nested(StoryPartSchema), required=True)
    withheld = fields.List(
        fields.String(), required=True, metadata={"description": "Asked for but not shared."}
    )
    fetches_left = fields.Integer(required=True)
    ends_at = fields.DateTime(required=True)
    receipt = fields.Nested(ReceiptSchema, required=True)


class ApiErrorSchema(Schema):
    error = fields.String(required=True, metadata={"example": "invalid_token"})
    message = fields.String(required=True, metadata={"example": "This token has expired."})
    receipt = fields.Nested(
        ReceiptSchema,
        metadata={"description": "For a refusal the person can see: where it is recorded."},
    )


class DepartmentApi(Api):
    """flask-smorest's Api, documenting the error body our handlers really send."""

    # Every refusal (web.errors) is {"error", "message"}, also for answers no route lists
    # (a body that is not JSON, too many requests): the document's "default" says so.
    ERROR_SCHEMA = ApiErrorSchema


@blp.route("/data")
@blp.arguments(DataHeaders, location="headers", as_kwargs=True)
@blp.response(200, DataSchema)
@blp.alt_response(401, schema=ApiErrorSchema, description="No token, a bad token or a bad proof.")
@blp.alt_response(403, schema=ApiErrorSchema, description="The permission does not allow this now.")
@blp.alt_response(422, schema=ApiErrorSchema, description="A header is missing or wrong.")
@blp.doc(security=[{"DPoP": []}])
def data(case_reference: str, acting_officer: str) -> Any:
    """What the person agreed to share with you, now. Every call is in their record."""
    # Check the call and open the values first, reading only; then take the writer lock just
    # for the writes, which count the fetch only if nothing read has changed meanwhile.
    with read_only_unit_of_work() as (session, vault):
        caller, proof = check_call(
            session,
            authorization=request.headers.get("Authorization"),
            dpop_values=request.headers.getlist("DPoP"),
            method="GET",
            url=str(current_app.config["BASE_URL"]).rstrip("/") + request.path,
            now=vault.clock(),
            check_grant=False,  # fetch_data refuses an ended grant and records the refusal
        )
        plan = plan_data(
            session, vault, caller, acting_officer=acting_officer, case_reference=case_reference
        )
    with unit_of_work() as (session, vault):
        confirm_call(session, caller, proof, vault.clock())
        answer = fetch_data(
            session,
            vault,
            caller,
            acting_officer=acting_officer,
            case_reference=case_reference,
            plan=plan,
        )
    if answer.status != 200:
        response: Response = jsonify(answer.body)
        response.status_code = answer.status
        return response
    return answer.body


def init_api(app: Flask) -> Api:
    """Mount the department API and its OpenAPI document."""
    app.config.setdefault("API_TITLE", "Tell Once department API")
    app.config.setdefault("API_VERSION", "1.0.0")
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", API_PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    api = DepartmentApi(app, spec_kwargs={"servers": [{"url": app.config["BASE_URL"]}]})
    api.spec.components.security_scheme(
        "DPoP",
        {
            "type": "http",
            "scheme": "DPoP",
            "description": "A DPoP-bound access token (RFC 9449), with a DPoP proof header.",
        },
    )
    import web.api_decisions  # noqa: F401  (its routes join this blueprint before it is registered)

    api.register_blueprint(blp)
    return api
