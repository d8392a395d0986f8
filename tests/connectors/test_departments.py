"""The department register: what an operator's registration file may say, what is stored,
and what the public ledger shows about it."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, OKPKey, RSAKey

import connectors.events  # noqa: F401  (declare the department ledger event kinds)
from connectors import departments
from connectors.errors import ConnectorError, InvalidMetadata
from vault.errors import NotFound
from vault.services import Vault
from vault.verify import verify_ledger

Mutation = Callable[[dict[str, Any]], None]


def ec_key(kid: str = "housing-1") -> dict[str, Any]:
    return {**ECKey.generate_key("P-256").as_dict(private=False), "kid": kid}


def short_rsa_key() -> dict[str, Any]:
    """A 1024-bit RSA public key (joserfc will not make one without a warning)."""
    # S505 (short RSA key) is ignored on purpose: a key too short to trust is the point here.
    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()  # noqa: S505

    def b64(number: int) -> str:
        raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {"kty": "RSA", "n": b64(numbers.n), "e": b64(numbers.e)}


def housing_file(**changes: Any) -> dict[str, Any]:
    """The Anytown Council housing registration file, as in the brief, with fresh keys."""
    metadata: dict[str, Any] = {
        "client_name": "Anytown Council housing",
        "redirect_uris": ["https://housing.anytown.example/callback"],
        "jwks": {"keys": [ec_key()]},
        "token_endpoint_auth_method": "private_key_jwt",
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
        "tellonce": {
            "purposes": [
                {
                    "code": "emergency_housing",
                    "description": "To find you somewhere safe to stay tonight and help you "
                    "keep it.",
                    "data_points": ["identity.name", "contact.address", "money.income_monthly"],
                    "story_topics": ["housing"],
                }
            ],
            "accountable_officer": {
                "name": "Priya Shah",
                "role": "Head of Housing Options",
                "email": "priya.shah@anytown.example",
            },
            "webhook_url": "https://housing.anytown.example/tellonce/events",
        },
    }
    metadata.update(changes)
    return metadata


def secret_file() -> dict[str, Any]:
    metadata = housing_file(token_endpoint_auth_method="client_secret_basic")
    del metadata["jwks"]
    return metadata


def register(db: Any, vault: Vault, metadata: dict[str, Any], **kwargs: Any) -> Any:
    with db.tx() as session:
        return departments.register_department(session, vault, metadata, **kwargs)


def counts(db: Any) -> tuple[int, int]:
    """(departments stored, ledger leaves written)."""
    return db.scalar("SELECT COUNT(*) FROM department"), db.scalar(
        "SELECT COUNT(*) FROM ledger_entry"
    )


def refusal(db: Any, vault: Vault, mutate: Mutation, base: dict[str, Any] | None = None) -> str:
    """Register a changed file; it must be refused, leaving nothing behind. Return the message."""
    metadata = copy.deepcopy(base or housing_file())
    mutate(metadata)
    before = counts(db)
    with pytest.raises(InvalidMetadata) as caught:
        register(db, vault, metadata)
    assert counts(db) == before
    return caught.value.message


def setter(path: str, value: Any) -> Mutation:
    """Set ``a.b.c`` (list indexes as numbers) in the file."""
    *parents, last = path.split(".")

    def mutate(metadata: dict[str, Any]) -> None:
        target: Any = metadata
        for step in parents:
            target = target[int(step) if step.isdigit() else step]
        target[int(last) if last.isdigit() else last] = value

    return mutate


def remover(path: str) -> Mutation:
    *parents, last = path.split(".")

    def mutate(metadata: dict[str, Any]) -> None:
        target: Any = metadata
        for step in parents:
            target = target[int(step) if step.isdigit() else step]
        del target[last]

    return mutate


PURPOSE = "tellonce.purposes.0"
OFFICER = "tellonce.accountable_officer"

# (mutation, the start of the one-line message an operator sees)
REFUSED: dict[str, tuple[Mutation, str]] = {
    "client_name missing": (remover("client_name"), "client_name: is required"),
    "client_name blank": (setter("client_name", "   "), "client_name: must be 1 to 200"),
    "client_name too long": (setter("client_name", "x" * 201), "client_name: must be 1 to 200"),
    "client_name not text": (setter("client_name", 7), "client_name: must be text"),
    "client_name control": (setter("client_name", "A\x00B"), "client_name: must be plain text"),
    "redirect_uris missing": (remover("redirect_uris"), "redirect_uris: is required"),
    "redirect_uris empty": (setter("redirect_uris", []), "redirect_uris: must list 1 to 10"),
    "redirect_uris eleven": (
        setter("redirect_uris", [f"https://a.example/{n}" for n in range(11)]),
        "redirect_uris: must list 1 to 10",
    ),
    "redirect_uris not a list": (
        setter("redirect_uris", "https://a.example/cb"),
        "redirect_uris: must be a list",
    ),
    "redirect http": (
        setter("redirect_uris.0", "http://housing.anytown.example/callback"),
        "redirect_uris[0]: must be an https URL",
    ),
    "redirect fragment": (
        setter("redirect_uris.0", "https://housing.anytown.example/callback#top"),
        "redirect_uris[0]: must be an https URL with no fragment",
    ),
    "redirect empty fragment": (
        setter("redirect_uris.0", "https://housing.anytown.example/callback#"),
        "redirect_uris[0]: must be an https URL with no fragment",
    ),
    "redirect wildcard": (
        setter("redirect_uris.0", "https://*.anytown.example/callback"),
        "redirect_uris[0]: must not contain a wildcard",
    ),
    "redirect relative": (setter("redirect_uris.0", "/callback"), "redirect_uris[0]: must be"),
    "redirect other scheme": (
        setter("redirect_uris.0", "ftp://housing.anytown.example/cb"),
        "redirect_uris[0]: must be an absolute https URL",
    ),
    "redirect user info": (
        setter("redirect_uris.0", "https://user:pw@housing.anytown.example/cb"),
        "redirect_uris[0]: must not hold a user name or password",
    ),
    "redirect space": (
        setter("redirect_uris.0", "https://housing.anytown.example/call back"),
        "redirect_uris[0]: must not contain spaces",
    ),
    "redirect bad port": (
        setter("redirect_uris.0", "https://housing.anytown.example:99999/cb"),
        "redirect_uris[0]: must be an absolute https URL",
    ),
    "redirect too long": (
        setter("redirect_uris.0", "https://a.example/" + "x" * 500),
        "redirect_uris[0]: must be 500 characters or fewer",
    ),
    "redirect twice": (
        setter("redirect_uris", ["https://a.example/cb", "https://a.example/cb"]),
        "redirect_uris[1]: is listed twice",
    ),
    "second redirect bad": (
        setter("redirect_uris", ["https://a.example/cb", "http://a.example/cb"]),
        "redirect_uris[1]: must be an https URL",
    ),
    "auth method none": (
        setter("token_endpoint_auth_method", "none"),
        "token_endpoint_auth_method: must be private_key_jwt or client_secret_basic",
    ),
    "auth method client_secret_post": (
        setter("token_endpoint_auth_method", "client_secret_post"),
        "token_endpoint_auth_method: must be private_key_jwt or client_secret_basic",
    ),
    "auth method tls_client_auth": (
        setter("token_endpoint_auth_method", "tls_client_auth"),
        "token_endpoint_auth_method: must be private_key_jwt or client_secret_basic",
    ),
    "no keys for private_key_jwt": (remover("jwks"), "jwks: is required for private_key_jwt"),
    "jwks and jwks_uri": (
        setter("jwks_uri", "https://housing.anytown.example/jwks.json"),
        "jwks_uri: give jwks or jwks_uri, not both",
    ),
    "jwks not a set": (setter("jwks", [ec_key()]), "jwks: must be a JWK Set"),
    "jwks extra member": (
        setter("jwks", {"keys": [ec_key()], "extra": 1}),
        "jwks: must be a JWK Set",
    ),
    "jwks empty": (setter("jwks", {"keys": []}), "jwks.keys: must be a list of 1 to 10"),
    "jwks eleven keys": (
        setter("jwks", {"keys": [ec_key(str(n)) for n in range(11)]}),
        "jwks.keys: must be a list of 1 to 10",
    ),
    "jwks private EC key": (
        setter("jwks.keys.0", {**ECKey.generate_key("P-256").as_dict(private=True), "kid": "a"}),
        "jwks.keys[0]: must be a public key: remove the private part (d)",
    ),
    "jwks private RSA key": (
        setter("jwks.keys.0", RSAKey.generate_key(2048).as_dict(private=True)),
        "jwks.keys[0]: must be a public key: remove the private part (d, p, q, dp, dq, qi)",
    ),
    "jwks oct key": (
        setter("jwks.keys.0", {"kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0"}),
        "jwks.keys[0].kty: oct keys are shared secrets",
    ),
    "jwks P-384": (
        setter("jwks.keys.0", ECKey.generate_key("P-384").as_dict(private=False)),
        "jwks.keys[0].crv: EC keys must use the P-256 curve",
    ),
    "jwks RSA 1024": (
        setter("jwks.keys.0", short_rsa_key()),
        "jwks.keys[0]: RSA keys must be at least 2048 bits long",
    ),
    "jwks X25519": (
        setter("jwks.keys.0", OKPKey.generate_key("X25519").as_dict(private=False)),
        "jwks.keys[0].crv: OKP keys must use the Ed25519 curve",
    ),
    "jwks unknown kty": (setter("jwks.keys.0", {"kty": "XYZ"}), "jwks.keys[0].kty: must be EC"),
    "jwks point off the curve": (
        lambda m: m["jwks"]["keys"][0].update(x=m["jwks"]["keys"][0]["y"]),
        "jwks.keys[0]: is not a valid EC public key",
    ),
    "jwks EC missing y": (
        lambda m: m["jwks"]["keys"][0].pop("y"),
        "jwks.keys[0]: is not a valid EC public key",
    ),
    "jwks alg RS256": (setter("jwks.keys.0.alg", "RS256"), "jwks.keys[0].alg: must be ES256"),
    "jwks use enc": (setter("jwks.keys.0.use", "enc"), "jwks.keys[0].use: must be sig"),
    "jwks two keys without kid": (
        setter("jwks", {"keys": [ec_key(), {k: v for k, v in ec_key().items() if k != "kid"}]}),
        "jwks.keys[1].kid: is required when the set holds more than one key",
    ),
    "jwks kid twice": (
        setter("jwks", {"keys": [ec_key("same"), ec_key("same")]}),
        "jwks.keys[1].kid: is used by an earlier key",
    ),
    "jwks_uri http": (
        lambda m: (m.pop("jwks"), m.update(jwks_uri="http://housing.anytown.example/jwks")),
        "jwks_uri: must be an https URL",
    ),
    "grant type password": (
        setter("grant_types", ["authorization_code", "password"]),
        "grant_types[1]: must be authorization_code, refresh_token or client_credentials",
    ),
    "grant type implicit": (
        setter("grant_types", ["implicit"]),
        "grant_types[0]: must be authorization_code, refresh_token or client_credentials",
    ),
    "grant types empty": (setter("grant_types", []), "grant_types: must list at least one"),
    "grant type twice": (
        setter("grant_types", ["refresh_token", "refresh_token"]),
        "grant_types[1]: is listed twice",
    ),
    "tellonce missing": (remover("tellonce"), "tellonce: is required"),
    "tellonce not an object": (setter("tellonce", []), "tellonce: must be an object"),
    "purposes missing": (remover("tellonce.purposes"), "tellonce.purposes: is required"),
    "purposes empty": (setter("tellonce.purposes", []), "tellonce.purposes: must list 1 to 20"),
    "purposes 21": (
        lambda m: m["tellonce"].update(
            purposes=[{**m["tellonce"]["purposes"][0], "code": f"purpose_{n}"} for n in range(21)]
        ),
        "tellonce.purposes: must list 1 to 20",
    ),
    "purpose code upper case": (
        setter(f"{PURPOSE}.code", "Emergency"),
        "tellonce.purposes[0].code: must start with a lower-case letter",
    ),
    "purpose code digit first": (
        setter(f"{PURPOSE}.code", "1st_purpose"),
        "tellonce.purposes[0].code: must start with a lower-case letter",
    ),
    "purpose code too long": (
        setter(f"{PURPOSE}.code", "a" * 65),
        "tellonce.purposes[0].code: must start with a lower-case letter",
    ),
    "purpose code missing": (remover(f"{PURPOSE}.code"), "tellonce.purposes[0].code: is required"),
    "purpose code twice": (
        lambda m: m["tellonce"]["purposes"].append(dict(m["tellonce"]["purposes"][0])),
        "tellonce.purposes[1].code: is used by an earlier purpose",
    ),
    "description blank": (
        setter(f"{PURPOSE}.description", ""),
        "tellonce.purposes[0].description: must be 1 to 500 characters",
    ),
    "description too long": (
        setter(f"{PURPOSE}.description", "x" * 501),
        "tellonce.purposes[0].description: must be 1 to 500 characters",
    ),
    "description HTML": (
        setter(f"{PURPOSE}.description", "To help <b>you</b>."),
        "tellonce.purposes[0].description: must be plain text, not HTML",
    ),
    "description with a newline": (
        setter(f"{PURPOSE}.description", "To help\nyou."),
        "tellonce.purposes[0].description: must be plain text on one line",
    ),
    "unknown data point": (
        setter(f"{PURPOSE}.data_points.1", "contact.fax"),
        "tellonce.purposes[0].data_points[1]: is not a data point key in the catalogue",
    ),
    "data point twice": (
        setter(f"{PURPOSE}.data_points", ["identity.name", "identity.name"]),
        "tellonce.purposes[0].data_points[1]: is listed twice",
    ),
    "unknown story topic": (
        setter(f"{PURPOSE}.story_topics", ["hobbies"]),
        "tellonce.purposes[0].story_topics[0]: must be one of the story topics",
    ),
    "asks for nothing": (
        lambda m: m["tellonce"]["purposes"][0].update(data_points=[], story_topics=[]),
        "tellonce.purposes[0]: must ask for at least one data point or story topic",
    ),
    "unknown field in a purpose": (
        setter(f"{PURPOSE}.retention", "forever"),
        "tellonce.purposes[0].retention: is not a field we know",
    ),
    "officer missing": (remover(OFFICER), "tellonce.accountable_officer: is required"),
    "officer name blank": (
        setter(f"{OFFICER}.name", ""),
        "tellonce.accountable_officer.name: must be 1 to 200 characters",
    ),
    "officer role missing": (
        remover(f"{OFFICER}.role"),
        "tellonce.accountable_officer.role: is required",
    ),
    "officer role too long": (
        setter(f"{OFFICER}.role", "r" * 201),
        "tellonce.accountable_officer.role: must be 1 to 200 characters",
    ),
    "officer email bad": (
        setter(f"{OFFICER}.email", "priya.shah"),
        "tellonce.accountable_officer.email: must be an email address",
    ),
    "officer email missing": (
        remover(f"{OFFICER}.email"),
        "tellonce.accountable_officer.email: is required",
    ),
    "unknown field in officer": (
        setter(f"{OFFICER}.phone", "01632 960000"),
        "tellonce.accountable_officer.phone: is not a field we know",
    ),
    "webhook http": (
        setter("tellonce.webhook_url", "http://housing.anytown.example/events"),
        "tellonce.webhook_url: must be an https URL",
    ),
    "webhook fragment": (
        setter("tellonce.webhook_url", "https://housing.anytown.example/events#x"),
        "tellonce.webhook_url: must be an https URL with no fragment",
    ),
    "unknown top-level field": (
        setter("logo_uri", "https://anytown.example/logo.png"),
        "logo_uri: is not a field we know",
    ),
    "unknown tellonce field": (
        setter("tellonce.retention_days", 30),
        "tellonce.retention_days: is not a field we know",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_a_bad_file_is_refused_naming_the_field_and_nothing_is_stored(
    db: Any, vault: Vault, case: str
) -> None:
    mutate, expected = REFUSED[case]
    assert refusal(db, vault, mutate).startswith(expected)


@pytest.mark.parametrize("field", ["jwks", "jwks_uri"])
def test_keys_are_refused_for_a_client_secret_department(db: Any, vault: Vault, field: str) -> None:
    value = {"keys": [ec_key()]} if field == "jwks" else "https://a.example/jwks.json"
    message = refusal(db, vault, setter(field, value), base=secret_file())
    assert message.startswith(f"{field}: is only used with private_key_jwt")


def test_a_file_that_is_not_an_object_is_refused(db: Any, vault: Vault) -> None:
    with pytest.raises(InvalidMetadata, match="must hold a JSON object"):
        register(db, vault, ["client_name"])  # type: ignore[arg-type]
    assert counts(db) == (0, 0)


def test_every_problem_is_named_on_one_line(db: Any, vault: Vault) -> None:
    def two_problems(metadata: dict[str, Any]) -> None:
        metadata["client_name"] = ""
        metadata["tellonce"]["accountable_officer"]["email"] = "nobody"

    message = refusal(db, vault, two_problems)
    assert "\n" not in message
    assert message.startswith("client_name: must be 1 to 200 characters; ")
    assert "tellonce.accountable_officer.email: must be an email address" in message


def test_a_refusal_never_repeats_key_material_or_values(db: Any, vault: Vault) -> None:
    private = ECKey.generate_key("P-256").as_dict(private=True)
    message = refusal(db, vault, setter("jwks.keys.0", private))
    assert private["d"] not in message and private["x"] not in message
    email = refusal(db, vault, setter(f"{OFFICER}.email", "priya.shah-at-anytown"))
    assert "priya.shah-at-anytown" not in email


def test_a_strange_field_name_is_not_repeated(db: Any, vault: Vault) -> None:
    message = refusal(db, vault, setter("<script>alert(1)</script>", 1))
    assert message == "?: is not a field we know (check the spelling, or remove it)"


def test_private_key_jwt_department_is_stored_as_registered(db: Any, vault: Vault) -> None:
    metadata = housing_file()
    registered = register(db, vault, metadata)
    assert registered.client_secret is None
    assert registered.department.id.startswith("dept_")
    assert len(registered.department.id) == len("dept_") + 16
    with db.tx() as session:
        stored = departments.get_department(session, registered.department.id)
        assert stored.name == "Anytown Council housing"
        assert stored.secret_hash is None
        assert stored.client_metadata == {
            key: metadata[key]
            for key in (
                "client_name",
                "redirect_uris",
                "jwks",
                "token_endpoint_auth_method",
                "grant_types",
            )
        }
        assert stored.purposes == metadata["tellonce"]["purposes"]
        assert stored.officer == metadata["tellonce"]["accountable_officer"]
        assert stored.webhook_url == "https://housing.anytown.example/tellonce/events"
        assert departments.auth_method(stored) == "private_key_jwt"
        assert departments.public_key_set(stored) == metadata["jwks"]


def test_defaults_private_key_jwt_and_all_grant_types_and_no_webhook(db: Any, vault: Vault) -> None:
    metadata = housing_file()
    del metadata["token_endpoint_auth_method"], metadata["grant_types"]
    del metadata["tellonce"]["webhook_url"]
    registered = register(db, vault, metadata)
    stored = registered.department.client_metadata
    assert stored["token_endpoint_auth_method"] == "private_key_jwt"
    assert stored["grant_types"] == ["authorization_code", "refresh_token", "client_credentials"]
    assert registered.department.webhook_url is None


@pytest.mark.parametrize(
    "uri",
    [
        "http://localhost:8001/callback",
        "http://127.0.0.1/callback",
        "http://[::1]:9000/cb",
        "https://Housing.Anytown.example/Callback/?from=tellonce",
        "https://housing.anytown.example:8443/callback/",
    ],
)
def test_redirect_uris_are_kept_exactly_as_given(db: Any, vault: Vault, uri: str) -> None:
    registered = register(db, vault, housing_file(redirect_uris=[uri]))
    assert registered.department.client_metadata["redirect_uris"] == [uri]


@pytest.mark.parametrize(
    "key",
    [
        RSAKey.generate_key(2048).as_dict(private=False),
        OKPKey.generate_key("Ed25519").as_dict(private=False),
        {**ECKey.generate_key("P-256").as_dict(private=False), "alg": "ES256", "use": "sig"},
    ],
    ids=["RSA 2048", "Ed25519", "EC with alg and use"],
)
def test_public_keys_of_each_allowed_kind_are_accepted(
    db: Any, vault: Vault, key: dict[str, Any]
) -> None:
    registered = register(db, vault, housing_file(jwks={"keys": [key]}))
    assert registered.department.client_metadata["jwks"] == {"keys": [key]}


def test_text_is_tidied(db: Any, vault: Vault) -> None:
    metadata = housing_file(client_name="  Anytown Council housing  ")
    registered = register(db, vault, metadata)
    assert registered.department.name == "Anytown Council housing"


def test_client_secret_department_gets_a_secret_shown_once(db: Any, vault: Vault) -> None:
    registered = register(db, vault, secret_file())
    secret = registered.client_secret
    assert secret is not None and len(secret) >= 43
    with db.tx() as session:
        stored = departments.get_department(session, registered.department.id)
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert departments.check_client_secret(stored, secret)
    assert not departments.check_client_secret(stored, secret + "x")
    assert not departments.check_client_secret(stored, "")
    described = json.dumps(departments.describe(stored))
    assert secret not in described and stored.secret_hash not in described
    assert "jwks" not in stored.client_metadata


def test_a_private_key_jwt_department_has_no_secret_to_check(db: Any, vault: Vault) -> None:
    department = register(db, vault, housing_file()).department
    assert not departments.check_client_secret(department, "")
    assert not departments.check_client_secret(department, "anything")


def test_each_client_secret_department_gets_its_own_secret(db: Any, vault: Vault) -> None:
    first, second = register(db, vault, secret_file()), register(db, vault, secret_file())
    assert first.client_secret != second.client_secret
    assert not departments.check_client_secret(second.department, first.client_secret)


def test_a_given_client_id_is_used(db: Any, vault: Vault) -> None:
    registered = register(db, vault, housing_file(), client_id="anytown-housing")
    assert registered.department.id == "anytown-housing"


@pytest.mark.parametrize("client_id", ["ab", "Anytown", "any town", "a" * 65, "dept.x", ""])
def test_a_badly_formed_client_id_is_refused(db: Any, vault: Vault, client_id: str) -> None:
    with pytest.raises(InvalidMetadata, match="client id must be 3 to 64 characters"):
        register(db, vault, housing_file(), client_id=client_id)
    assert counts(db) == (0, 0)


def test_a_taken_client_id_is_refused(db: Any, vault: Vault) -> None:
    register(db, vault, housing_file(), client_id="anytown-housing")
    with pytest.raises(InvalidMetadata, match="'anytown-housing' is already taken"):
        register(db, vault, housing_file(), client_id="anytown-housing")
    assert counts(db) == (1, 1)


def test_lookups_and_the_list(db: Any, vault: Vault, clock: Any) -> None:
    first = register(db, vault, housing_file(), client_id="housing").department
    clock.advance(minutes=1)
    second = register(db, vault, secret_file(), client_id="benefits").department
    with db.tx() as session:
        assert [d.id for d in departments.list_departments(session)] == [first.id, second.id]
        assert departments.get_department(session, "benefits").name == second.name
        assert departments.active_department(session, "housing") is not None
        assert departments.active_department(session, "nobody") is None
        with pytest.raises(NotFound, match="no department with the client id 'nobody'"):
            departments.get_department(session, "nobody")


def test_a_disabled_department_is_not_active_but_is_still_listed(
    db: Any, vault: Vault, clock: Any
) -> None:
    department = register(db, vault, housing_file(), client_id="housing").department
    clock.advance(hours=1)
    with db.tx() as session:
        disabled = departments.disable_department(session, vault, "housing")
        assert disabled.disabled_at == clock()
    with db.tx() as session:
        assert departments.active_department(session, "housing") is None
        assert departments.get_department(session, "housing").disabled_at == clock()
        assert [d.id for d in departments.list_departments(session)] == [department.id]
        assert departments.describe(departments.get_department(session, "housing"))["status"] == (
            "disabled"
        )


def test_disabling_twice_is_refused(db: Any, vault: Vault) -> None:
    register(db, vault, housing_file(), client_id="housing")
    with db.tx() as session:
        departments.disable_department(session, vault, "housing")
    with pytest.raises(ConnectorError, match="'housing' is already disabled"), db.tx() as session:
        departments.disable_department(session, vault, "housing")
    assert db.scalar("SELECT COUNT(*) FROM ledger_entry") == 2


def test_disabling_an_unknown_department_is_refused(db: Any, vault: Vault) -> None:
    with pytest.raises(NotFound), db.tx() as session:
        departments.disable_department(session, vault, "nobody")


def test_purpose_lookup(db: Any, vault: Vault) -> None:
    department = register(db, vault, housing_file()).department
    found = departments.purpose(department, "emergency_housing")
    assert found is not None and found["data_points"][0] == "identity.name"
    assert departments.purpose(department, "something_else") is None


def test_describe_shows_what_was_registered(db: Any, vault: Vault, clock: Any) -> None:
    metadata = housing_file()
    department = register(db, vault, metadata, client_id="housing").department
    described = departments.describe(department)
    assert described == {
        "client_id": "housing",
        "status": "active",
        "created_at": clock().isoformat(),
        "disabled_at": None,
        **{key: value for key, value in metadata.items()},
    }


def test_registering_and_disabling_are_public_ledger_leaves_that_verify(
    db: Any, vault: Vault
) -> None:
    register(db, vault, housing_file(), client_id="housing")
    with db.tx() as session:
        departments.disable_department(session, vault, "housing")
        assert verify_ledger(session, vault).ok
    with db.engine.connect() as connection:
        leaves = [
            json.loads(bytes(leaf))
            for (leaf,) in connection.exec_driver_sql("SELECT leaf FROM ledger_entry ORDER BY idx")
        ]
    assert [leaf["kind"] for leaf in leaves] == ["department.registered", "department.disabled"]
    registered = leaves[0]
    assert registered["ref"] == {"table": "department", "id": "housing"}
    assert registered["accountable_role"] == "Head of Housing Options"
    assert registered["purposes"][0]["code"] == "emergency_housing"
    # The officer is answerable by role; their name and email stay out of a log that cannot forget.
    assert "Priya" not in json.dumps(registered) and "anytown.example" not in json.dumps(registered)


def test_a_department_changed_behind_the_ledger_is_caught(db: Any, vault: Vault) -> None:
    register(db, vault, housing_file(), client_id="housing")
    db.execute("UPDATE department SET purposes = '[]' WHERE id = 'housing'")
    with db.tx() as session:
        report = verify_ledger(session, vault)
    assert report.problems == ["The department row behind entry 0 has been changed."]


# --- Keys published at a jwks_uri -------------------------------------------------------------


class KeyServer:
    """A department's key endpoint on this machine, whose answer a test can change."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b""
        self.location: str | None = None
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                self.send_response(outer.status)
                if outer.location:
                    self.send_header("Location", outer.location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.uri = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def serve(self, document: Any) -> None:
        self.status, self.body = 200, json.dumps(document).encode()


@pytest.fixture
def key_server() -> Iterator[KeyServer]:
    server = KeyServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    server.thread.join()


@pytest.fixture(autouse=True)
def no_cached_keys() -> Iterator[None]:
    departments.forget_fetched_keys()
    yield
    departments.forget_fetched_keys()


def uri_department(db: Any, vault: Vault, uri: str) -> Any:
    metadata = housing_file(jwks_uri=uri)
    del metadata["jwks"]
    return register(db, vault, metadata).department


def test_keys_are_fetched_from_the_jwks_uri_and_cached_for_five_minutes(
    db: Any, vault: Vault, key_server: KeyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, rotated = {"keys": [ec_key("one")]}, {"keys": [ec_key("two")]}
    key_server.serve(first)
    department = uri_department(db, vault, key_server.uri)
    now = [1000.0]
    monkeypatch.setattr(departments, "_monotonic", lambda: now[0])
    assert departments.public_key_set(department) == first
    key_server.serve(rotated)
    now[0] += 299
    assert departments.public_key_set(department) == first
    assert key_server.requests == 1
    now[0] += 2
    assert departments.public_key_set(department) == rotated
    assert key_server.requests == 2


def test_changing_the_returned_keys_does_not_change_the_cache(
    db: Any, vault: Vault, key_server: KeyServer
) -> None:
    key_server.serve({"keys": [ec_key("one")]})
    department = uri_department(db, vault, key_server.uri)
    departments.public_key_set(department)["keys"].clear()
    assert departments.public_key_set(department)["keys"][0]["kid"] == "one"


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (lambda s: setattr(s, "status", 404), "it answered with HTTP status 404"),
        (lambda s: setattr(s, "body", b"<html>"), "the answer is not JSON"),
        (lambda s: setattr(s, "body", b"x" * 70_000), "the answer is too large"),
        (
            lambda s: s.serve({"keys": [ECKey.generate_key("P-256").as_dict(private=True)]}),
            "jwks_uri.keys[0]: must be a public key",
        ),
        (lambda s: s.serve({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}), "oct keys are"),
        (
            lambda s: (setattr(s, "status", 302), setattr(s, "location", "http://evil.example/")),
            "it answered with HTTP status 302",
        ),
    ],
    ids=["not found", "not JSON", "too large", "private key", "oct key", "redirect"],
)
def test_a_bad_key_endpoint_is_a_clear_client_error(
    db: Any,
    vault: Vault,
    key_server: KeyServer,
    answer: Callable[[KeyServer], Any],
    expected: str,
) -> None:
    key_server.serve({"keys": [ec_key()]})
    department = uri_department(db, vault, key_server.uri)
    answer(key_server)
    with pytest.raises(ConnectorError) as caught:
        departments.public_key_set(department)
    assert caught.value.error == "invalid_client"
    assert caught.value.message.startswith(
        "We could not fetch the department's public keys from its jwks_uri: "
    )
    assert expected in caught.value.message


def test_an_unreachable_key_endpoint_is_a_clear_client_error(db: Any, vault: Vault) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    department = uri_department(db, vault, f"http://127.0.0.1:{port}/jwks.json")
    with pytest.raises(ConnectorError, match="jwks_uri: it could not be reached"):
        departments.public_key_set(department)


def test_a_key_endpoint_that_never_answers_times_out(
    db: Any, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(departments, "KEY_FETCH_TIMEOUT_SECONDS", 0.2)
    with socket.socket() as silent:  # accepts connections (the backlog) and never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        department = uri_department(db, vault, f"http://127.0.0.1:{silent.getsockname()[1]}/")
        with pytest.raises(ConnectorError, match="jwks_uri: it could not be reached"):
            departments.public_key_set(department)


def test_a_failed_fetch_is_not_cached(db: Any, vault: Vault, key_server: KeyServer) -> None:
    key_server.status = 500
    department = uri_department(db, vault, key_server.uri)
    with pytest.raises(ConnectorError):
        departments.public_key_set(department)
    key_server.serve({"keys": [ec_key("back")]})
    assert departments.public_key_set(department)["keys"][0]["kid"] == "back"


def test_a_client_secret_department_has_no_key_set(db: Any, vault: Vault) -> None:
    department = register(db, vault, secret_file()).department
    with pytest.raises(ConnectorError, match="signs in with a client secret"):
        departments.public_key_set(department)
