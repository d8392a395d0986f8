"""What a department's library reads to find us: RFC 8414 metadata, our keys, the OpenAPI."""

from __future__ import annotations

from typing import Any

import openapi_spec_validator
import pytest

from tests.oauth.harness import DepartmentSide, whole_flow

FAPI_ALGORITHMS = {"ES256", "PS256", "EdDSA"}


@pytest.fixture
def metadata(client: Any) -> dict[str, Any]:
    response = client.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return dict(response.get_json())


@pytest.fixture
def openapi(client: Any) -> dict[str, Any]:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return dict(response.get_json())


# --- RFC 8414 metadata --------------------------------------------------------------------------


def test_the_metadata_names_every_endpoint_under_our_issuer(
    metadata: dict[str, Any], app: Any
) -> None:
    issuer = app.config["BASE_URL"].rstrip("/")
    assert metadata["issuer"] == issuer
    assert metadata["authorization_endpoint"] == issuer + "/oauth/authorize"
    assert metadata["token_endpoint"] == issuer + "/oauth/token"
    assert metadata["pushed_authorization_request_endpoint"] == issuer + "/oauth/par"
    assert metadata["revocation_endpoint"] == issuer + "/oauth/revoke"
    assert metadata["introspection_endpoint"] == issuer + "/oauth/introspect"
    assert metadata["jwks_uri"] == issuer + "/jwks.json"


@pytest.mark.parametrize(
    ("name", "method"),
    [
        ("authorization_endpoint", "GET"),
        ("token_endpoint", "POST"),
        ("pushed_authorization_request_endpoint", "POST"),
        ("revocation_endpoint", "POST"),
        ("introspection_endpoint", "POST"),
        ("jwks_uri", "GET"),
    ],
)
def test_every_endpoint_named_is_really_there(
    metadata: dict[str, Any], client: Any, app: Any, name: str, method: str
) -> None:
    path = metadata[name].removeprefix(app.config["BASE_URL"].rstrip("/"))
    response = client.open(path, method=method)
    assert response.status_code not in (404, 405, 500), (name, response.status_code)


def test_the_metadata_says_pushed_requests_are_required(metadata: dict[str, Any]) -> None:
    assert metadata["require_pushed_authorization_requests"] is True


def test_the_metadata_offers_only_the_code_flow_with_s256(metadata: dict[str, Any]) -> None:
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert set(metadata["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
    }
    assert metadata["scopes_supported"] == ["challenges"]


def test_the_metadata_names_the_two_client_authentication_methods(
    metadata: dict[str, Any],
) -> None:
    for endpoint in ("token_endpoint", "revocation_endpoint", "introspection_endpoint"):
        methods = metadata[f"{endpoint}_auth_methods_supported"]
        assert set(methods) == {"private_key_jwt", "client_secret_basic"}, endpoint


def test_the_metadata_allows_only_fapi_signing_algorithms(metadata: dict[str, Any]) -> None:
    for name in (
        "token_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint_auth_signing_alg_values_supported",
        "introspection_endpoint_auth_signing_alg_values_supported",
        "dpop_signing_alg_values_supported",
    ):
        algorithms = set(metadata[name])
        assert algorithms >= FAPI_ALGORITHMS, name
        assert algorithms <= FAPI_ALGORITHMS | {"Ed25519"}, name  # RFC 9864's new name


def test_the_metadata_announces_rich_requests_and_the_iss_parameter(
    metadata: dict[str, Any],
) -> None:
    assert metadata["authorization_details_types_supported"] == ["tellonce_data"]
    assert metadata["authorization_response_iss_parameter_supported"] is True


def test_the_metadata_promises_nothing_we_do_not_do(metadata: dict[str, Any]) -> None:
    assert "registration_endpoint" not in metadata  # departments are registered by operators
    assert "none" not in metadata["token_endpoint_auth_methods_supported"]
    assert "client_secret_post" not in metadata["token_endpoint_auth_methods_supported"]


# --- Our keys -----------------------------------------------------------------------------------


def test_the_jwks_has_an_ec_signing_key_with_a_kid_and_nothing_private(client: Any) -> None:
    response = client.get("/jwks.json")
    assert response.status_code == 200
    keys = response.get_json()["keys"]
    ec_keys = [k for k in keys if k["kty"] == "EC"]
    assert ec_keys, keys
    for key in ec_keys:
        assert key["kid"]
        assert key["crv"] == "P-256"
        assert key["x"] and key["y"]
    for key in keys:
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key), "a private member"


# --- The department API's OpenAPI document ------------------------------------------------------


def test_the_openapi_document_is_valid_openapi_3_1(openapi: dict[str, Any]) -> None:
    assert openapi["openapi"].startswith("3.1.")
    assert openapi["info"]["title"] and openapi["info"]["version"]
    openapi_spec_validator.validate(openapi)  # raises, naming the problem, if it is not valid


def test_every_reference_in_the_openapi_document_resolves(openapi: dict[str, Any]) -> None:
    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for value in node.values() for r in refs(value)]
        if isinstance(node, list):
            return [r for item in node for r in refs(item)]
        return []

    for ref in refs(openapi):
        assert ref.startswith("#/"), ref
        target: Any = openapi
        for part in ref[2:].split("/"):
            assert isinstance(target, dict) and part in target, ref
            target = target[part]


def test_the_openapi_document_describes_the_data_endpoint_and_its_headers(
    openapi: dict[str, Any],
) -> None:
    operation = openapi["paths"]["/api/v1/data"]["get"]
    headers = {p["name"]: p for p in operation["parameters"] if p["in"] == "header"}
    assert headers["Case-Reference"]["required"] is True
    assert headers["Acting-Officer"]["required"] is True
    assert {"200", "401", "403", "422"} <= set(operation["responses"])
    assert operation["security"] == [{"DPoP": []}]


def test_the_openapi_document_defines_the_dpop_security_scheme(openapi: dict[str, Any]) -> None:
    scheme = openapi["components"]["securitySchemes"]["DPoP"]
    assert scheme["type"] == "http"
    assert scheme["scheme"] == "DPoP"
    assert "RFC 9449" in scheme["description"]


def test_a_served_answer_has_exactly_the_documented_fields(
    openapi: dict[str, Any], department: DepartmentSide, sam: Any
) -> None:
    tokens = whole_flow(sam, department)
    body = department.fetch(tokens["access_token"]).get_json()
    schemas = openapi["components"]["schemas"]
    assert set(body) == set(schemas["Data"]["properties"])
    for point in body["data_points"]:
        assert set(point) == set(schemas["DataPoint"]["properties"])
    for part in body["story"]:
        assert set(part) == set(schemas["StoryPart"]["properties"])


def test_an_error_answer_has_the_documented_fields(
    openapi: dict[str, Any], department: DepartmentSide
) -> None:
    body = department.fetch("never-issued").get_json()
    assert set(openapi["components"]["schemas"]["ApiError"]["required"]) <= set(body)


def test_a_recorded_refusal_has_only_documented_fields(
    openapi: dict[str, Any], department: DepartmentSide, sam: Any
) -> None:
    tokens = whole_flow(sam, department)
    refused = department.fetch(tokens["access_token"], case_reference="HOU-0000")
    assert refused.status_code == 403
    assert set(refused.get_json()) <= set(
        openapi["components"]["schemas"]["ApiError"]["properties"]
    )
