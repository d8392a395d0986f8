"""The department registration file: RFC 7591 client metadata plus a ``tellonce`` object.

Every problem is reported as ``field.path[index]: what is wrong`` in plain words, so an
operator can find it in the file. Messages never repeat the values given (a file could hold a
private key pasted by mistake), only where they are and what is wrong with them.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from connectors.errors import InvalidMetadata
from vault import catalogue
from vault.errors import InvalidValue, UnknownKey

PRIVATE_KEY_JWT = "private_key_jwt"
CLIENT_SECRET_BASIC = "client_secret_basic"  # noqa: S105  (a method's name, not a secret)
AUTH_METHODS = (PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC)
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
PURPOSE_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
CLIENT_ID = re.compile(r"^[a-z0-9_-]{3,64}$")
MAX_URL_CHARS = 500  # the width of the columns that keep redirect and webhook URLs
MAX_KEYS = 10
MIN_RSA_BITS = 2048
# Members that only a private or symmetric key has (RFC 7518 section 6).
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
# The JWT algorithms the server accepts, and the key type each needs.
ALGORITHM_KEY_TYPE = {"ES256": "EC", "PS256": "RSA", "EdDSA": "OKP"}
_SHOWN_NAME = re.compile(r"^[A-Za-z0-9_.$-]{1,64}$")
_MARKUP = re.compile(r"<\s*[A-Za-z/!?]")

# marshmallow's own type for error messages (a plain dict[str, str] does not fit it).
_Messages = dict[str, str | list[Any] | dict[Any, Any]]
_TEXT_ERRORS: _Messages = {
    "invalid": "must be text",
    "required": "is required",
    "null": "is required",
}
_LIST_ERRORS: _Messages = {
    "invalid": "must be a list",
    "required": "is required",
    "null": "is required",
}
_OBJECT_ERRORS: _Messages = {
    "type": "must be an object",
    "required": "is required",
    "null": "is required",
}


class _Strict(Schema):
    """A schema that refuses fields it does not know, in the same plain words everywhere."""

    error_messages = {
        "unknown": "is not a field we know (check the spelling, or remove it)",
        "type": "must be an object",
    }


class _PlainText(fields.String):
    """One line of plain text, 1 to ``max_chars`` characters, stripped and NFC-normalised."""

    def __init__(self, max_chars: int, *, no_markup: bool = False, **kwargs: Any) -> None:
        super().__init__(error_messages=_TEXT_ERRORS, **kwargs)
        self.max_chars = max_chars
        self.no_markup = no_markup

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = unicodedata.normalize("NFC", super()._deserialize(value, attr, data, **kwargs))
        text = text.strip()
        if any(unicodedata.category(char).startswith("C") for char in text):
            raise ValidationError("must be plain text on one line, with no control characters")
        if not 1 <= len(text) <= self.max_chars:
            raise ValidationError(f"must be 1 to {self.max_chars} characters")
        if self.no_markup and _MARKUP.search(text):
            raise ValidationError("must be plain text, not HTML")
        return text


def check_url(value: object) -> str:
    """Check an https URL (http only on a loopback host); return it exactly as given."""
    if not isinstance(value, str):
        raise ValidationError("must be text")
    if len(value) > MAX_URL_CHARS:
        raise ValidationError(f"must be {MAX_URL_CHARS} characters or fewer")
    if any(char.isspace() or not char.isprintable() for char in value):
        raise ValidationError("must not contain spaces or control characters")
    if "*" in value:
        raise ValidationError("must not contain a wildcard (*): give each URL in full")
    if "#" in value:
        raise ValidationError("must be an https URL with no fragment (nothing after #)")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (reading it checks the port is a number in range)
    except ValueError:
        raise ValidationError("must be an absolute https URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError("must be an absolute https URL, like https://service.example/")
    if parts.username is not None or parts.password is not None:
        raise ValidationError("must not hold a user name or password")
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValidationError(
            "must be an https URL (http is allowed only on localhost, 127.0.0.1 or [::1])"
        )
    return value


class _Url(fields.String):
    """An https URL (http on loopback hosts), kept exactly as given."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(error_messages=_TEXT_ERRORS, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return check_url(super()._deserialize(value, attr, data, **kwargs))


class _DataPointKey(fields.String):
    """A data point key from the catalogue."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(error_messages=_TEXT_ERRORS, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        key = super()._deserialize(value, attr, data, **kwargs)
        try:
            catalogue.entry(key)
        except UnknownKey:
            raise ValidationError(
                "is not a data point key in the catalogue (see docs/departments.md)"
            ) from None
        return key


class _StoryTopic(fields.String):
    """A story topic from the catalogue."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(error_messages=_TEXT_ERRORS, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        topic = super()._deserialize(value, attr, data, **kwargs)
        try:
            return catalogue.validate_topic(topic)
        except InvalidValue:
            topics = ", ".join(catalogue.STORY_TOPICS)
            raise ValidationError(f"must be one of the story topics: {topics}") from None


def _modulus_bits(n: object) -> int:
    """The size in bits of an RSA modulus given as base64url (0 when it is not that)."""
    if not isinstance(n, str) or not n or len(n) > 2048:
        return 0
    try:
        raw = base64.urlsafe_b64decode(n + "=" * (-len(n) % 4))
    except ValueError:
        return 0
    return int.from_bytes(raw, "big").bit_length()


def _check_public_key(jwk: Any) -> None:
    """Refuse anything but a public EC P-256, RSA (2048 bits or more) or Ed25519 key."""
    if not isinstance(jwk, Mapping):
        raise ValidationError("must be a JSON Web Key (an object)")
    private = [member for member in PRIVATE_MEMBERS if member in jwk]
    kty = jwk.get("kty")
    if kty == "oct":
        raise ValidationError(
            {"kty": ["oct keys are shared secrets: give a public EC, RSA or OKP key instead"]}
        )
    if private:
        raise ValidationError(
            f"must be a public key: remove the private part ({', '.join(private)}) "
            "and keep it secret"
        )
    try:
        if kty == "EC":
            if jwk.get("crv") != "P-256":
                raise ValidationError({"crv": ["EC keys must use the P-256 curve"]})
            ECKey.import_key(dict(jwk))
        elif kty == "RSA":
            # Measured before importing: joserfc only warns about a short key, and imports it.
            if _modulus_bits(jwk.get("n")) < MIN_RSA_BITS:
                raise ValidationError(f"RSA keys must be at least {MIN_RSA_BITS} bits long")
            RSAKey.import_key(dict(jwk))
        elif kty == "OKP":
            if jwk.get("crv") != "Ed25519":
                raise ValidationError({"crv": ["OKP keys must use the Ed25519 curve"]})
            OKPKey.import_key(dict(jwk))
        else:
            raise ValidationError({"kty": ["must be EC (P-256), RSA or OKP (Ed25519)"]})
    except (JoseError, ValueError, TypeError, KeyError, AttributeError):
        # joserfc's own messages can quote the key material: say only that it does not parse.
        raise ValidationError(f"is not a valid {kty} public key") from None
    if "use" in jwk and jwk["use"] != "sig":
        raise ValidationError({"use": ["must be sig: these keys sign client assertions"]})
    algorithm = jwk.get("alg")
    if "alg" in jwk and ALGORITHM_KEY_TYPE.get(str(algorithm)) != kty:
        allowed = [alg for alg, key_type in ALGORITHM_KEY_TYPE.items() if key_type == kty]
        raise ValidationError({"alg": [f"must be {' or '.join(allowed)} for an {kty} key"]})
    if "kid" in jwk and (not isinstance(jwk["kid"], str) or not 1 <= len(jwk["kid"]) <= 200):
        raise ValidationError({"kid": ["must be text of 1 to 200 characters"]})


def check_key_set(value: Any) -> dict[str, Any]:
    """Check a JWK Set of public signing keys; raise ValidationError naming the key."""
    if not isinstance(value, Mapping) or set(value) != {"keys"}:
        raise ValidationError('must be a JWK Set: an object with just "keys", a list of keys')
    keys = value["keys"]
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_KEYS:
        raise ValidationError({"keys": [f"must be a list of 1 to {MAX_KEYS} public keys"]})
    problems: dict[int, Any] = {}
    seen_kids: set[str] = set()
    for index, jwk in enumerate(keys):
        try:
            _check_public_key(jwk)
        except ValidationError as error:
            problems[index] = error.messages
            continue
        kid = jwk.get("kid")
        if kid is None and len(keys) > 1:
            problems[index] = {"kid": ["is required when the set holds more than one key"]}
        elif kid is not None and kid in seen_kids:
            problems[index] = {"kid": ["is used by an earlier key: each kid must be unique"]}
        if kid is not None:
            seen_kids.add(kid)
    if problems:
        raise ValidationError({"keys": problems})
    return {"keys": [dict(jwk) for jwk in keys]}


class _KeySet(fields.Field):
    """A JWK Set of public keys, checked by ``check_key_set``."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        return check_key_set(value)


class OfficerSchema(_Strict):
    """The person answerable for what the department does with people's data."""

    name = _PlainText(200, required=True)
    role = _PlainText(200, required=True)
    email = fields.String(
        required=True,
        error_messages=_TEXT_ERRORS,
        validate=validate.Email(error="must be an email address, like name@council.gov.uk"),
    )


class PurposeSchema(_Strict):
    """One thing the department may ask for, and why."""

    code = fields.String(
        required=True,
        error_messages=_TEXT_ERRORS,
        validate=validate.Regexp(
            PURPOSE_CODE,
            error="must start with a lower-case letter, then up to 63 lower-case letters, "
            "digits or _",
        ),
    )
    description = _PlainText(500, no_markup=True, required=True)
    data_points = fields.List(_DataPointKey(), load_default=list, error_messages=_LIST_ERRORS)
    story_topics = fields.List(_StoryTopic(), load_default=list, error_messages=_LIST_ERRORS)

    @validates_schema
    def _asks_for_something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data["data_points"] and not data["story_topics"]:
            raise ValidationError("must ask for at least one data point or story topic")
        for name in ("data_points", "story_topics"):
            repeats = {
                index: ["is listed twice"]
                for index, item in enumerate(data[name])
                if item in data[name][:index]
            }
            if repeats:
                raise ValidationError({name: repeats})


class TellOnceSchema(_Strict):
    """What Tell Once adds to RFC 7591: purposes, the accountable officer, the webhook."""

    purposes = fields.List(
        fields.Nested(PurposeSchema, error_messages=_OBJECT_ERRORS),
        required=True,
        error_messages=_LIST_ERRORS,
        validate=validate.Length(min=1, max=20, error="must list 1 to 20 purposes"),
    )
    accountable_officer = fields.Nested(OfficerSchema, required=True, error_messages=_OBJECT_ERRORS)
    webhook_url = _Url(load_default=None)

    @validates_schema
    def _codes_are_unique(self, data: dict[str, Any], **kwargs: Any) -> None:
        codes = [purpose["code"] for purpose in data["purposes"]]
        repeats = {
            index: {"code": ["is used by an earlier purpose: each code must be unique"]}
            for index, code in enumerate(codes)
            if code in codes[:index]
        }
        if repeats:
            raise ValidationError({"purposes": repeats})


class DepartmentMetadataSchema(_Strict):
    """The whole registration file."""

    client_name = _PlainText(200, required=True)
    redirect_uris = fields.List(
        _Url(),
        required=True,
        error_messages=_LIST_ERRORS,
        validate=validate.Length(min=1, max=10, error="must list 1 to 10 URLs"),
    )
    token_endpoint_auth_method = fields.String(
        load_default=PRIVATE_KEY_JWT,
        error_messages=_TEXT_ERRORS,
        validate=validate.OneOf(
            AUTH_METHODS,
            error="must be private_key_jwt or client_secret_basic; other methods are not allowed",
        ),
    )
    jwks = _KeySet(load_default=None, error_messages={"null": "is required"})
    jwks_uri = _Url(load_default=None)
    grant_types = fields.List(
        fields.String(
            error_messages=_TEXT_ERRORS,
            validate=validate.OneOf(
                GRANT_TYPES,
                error="must be authorization_code, refresh_token or client_credentials",
            ),
        ),
        load_default=lambda: list(GRANT_TYPES),
        error_messages=_LIST_ERRORS,
        validate=validate.Length(min=1, error="must list at least one grant type"),
    )
    tellonce = fields.Nested(TellOnceSchema, required=True, error_messages=_OBJECT_ERRORS)

    @validates_schema
    def _keys_fit_the_method(self, data: dict[str, Any], **kwargs: Any) -> None:
        has_jwks, has_uri = data["jwks"] is not None, data["jwks_uri"] is not None
        if data["token_endpoint_auth_method"] == CLIENT_SECRET_BASIC:
            for name, present in (("jwks", has_jwks), ("jwks_uri", has_uri)):
                if present:
                    raise ValidationError({name: ["is only used with private_key_jwt: remove it"]})
        elif has_jwks and has_uri:
            raise ValidationError({"jwks_uri": ["give jwks or jwks_uri, not both"]})
        elif not has_jwks and not has_uri:
            raise ValidationError(
                {"jwks": ["is required for private_key_jwt (or give jwks_uri instead)"]}
            )

    @validates_schema
    def _no_repeats(self, data: dict[str, Any], **kwargs: Any) -> None:
        for name in ("redirect_uris", "grant_types"):
            repeats = {
                index: ["is listed twice"]
                for index, item in enumerate(data[name])
                if item in data[name][:index]
            }
            if repeats:
                raise ValidationError({name: repeats})


def _shown(name: object) -> str:
    """A field name as it may be repeated: only short, plain names (they come from the file)."""
    text = str(name)
    return text if _SHOWN_NAME.match(text) else "?"


def _flatten(messages: Any, path: str = "") -> list[str]:
    """Turn marshmallow's nested messages into ``path: message`` lines, in file order."""
    if isinstance(messages, Mapping):
        lines = []
        for name, inner in messages.items():
            if isinstance(name, int):
                step = f"{path}[{name}]"
            elif name == "_schema":
                step = path
            else:
                step = f"{path}.{_shown(name)}" if path else _shown(name)
            lines.extend(_flatten(inner, step))
        return lines
    if isinstance(messages, list):
        return [line for message in messages for line in _flatten(message, path)]
    return [f"{path}: {messages}" if path else str(messages)]


def load_metadata(metadata: Any) -> dict[str, Any]:
    """Check a registration file's content; return it tidied, or raise InvalidMetadata."""
    if not isinstance(metadata, Mapping):
        raise InvalidMetadata("The registration file must hold a JSON object.")
    try:
        loaded: dict[str, Any] = DepartmentMetadataSchema().load(dict(metadata))
    except ValidationError as error:
        # `from None`: marshmallow's error keeps the raw input, which must not travel on.
        raise InvalidMetadata("; ".join(_flatten(error.messages))) from None
    return loaded


def load_key_set(value: Any, where: str) -> dict[str, Any]:
    """Check a fetched JWK Set; raise InvalidMetadata naming ``where`` it came from."""
    try:
        return check_key_set(value)
    except ValidationError as error:
        raise InvalidMetadata("; ".join(_flatten(error.messages, where))) from None
