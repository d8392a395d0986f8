"""Make DPoP proofs (RFC 9449) as a department's software would, for tests and the benchmark.

    key = new_key("ES256")
    proof = make_proof(key, "GET", "https://tellonce.example/api/v1/data", access_token=token)
    client.get("/api/v1/data", headers={"DPoP": proof, "Authorization": f"DPoP {token}"})

Every argument that a test may want wrong can be set: ``typ``, ``alg``, ``jti``, ``iat``, any
header (``extra_headers``) or claim (``claims_override``); give the value ``OMIT`` to leave a
member out altogether.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from joserfc import jws
from joserfc.jwk import ECKey, JWKRegistry, Key, OctKey, OKPKey, RSAKey

OMIT: Final = object()
"""Give this as a header or claim value to leave that member out of the proof."""

_PUBLIC_MEMBERS = ("kty", "crv", "x", "y", "n", "e")


def new_key(alg: str = "ES256") -> Key:
    """Generate a private key for a signing algorithm: ES256, PS256, EdDSA, Ed25519 or HS256."""
    if alg == "ES256":
        return ECKey.generate_key("P-256")
    if alg == "PS256":
        return RSAKey.generate_key(2048)
    if alg in ("EdDSA", "Ed25519"):
        return OKPKey.generate_key("Ed25519")
    if alg == "HS256":
        return OctKey.generate_key(256)
    raise ValueError(f"no test key for {alg}")


def import_private_key(jwk: Mapping[str, Any]) -> Key:
    """Load a key pair from a JWK dict (for fixed keys such as the RFC 7638 example)."""
    return JWKRegistry.import_key(dict(jwk))


def public_jwk(key: Key) -> dict[str, Any]:
    """The public half of a key as a JWK dict, with only the members a DPoP ``jwk`` needs."""
    members = key.as_dict(private=False)
    return {name: members[name] for name in _PUBLIC_MEMBERS if name in members}


def default_alg(key: Key) -> str:
    """The algorithm a proof made with this key uses unless told otherwise."""
    return {"EC": "ES256", "RSA": "PS256", "OKP": "Ed25519", "oct": "HS256"}[key.key_type]


def access_token_hash(token: str) -> str:
    """The ``ath`` claim for an access token, computed here independently of the server."""
    return _b64(hashlib.sha256(token.encode("ascii")).digest())


def _apply(members: dict[str, Any], changes: Mapping[str, Any] | None) -> dict[str, Any]:
    for name, value in (changes or {}).items():
        if value is OMIT:
            members.pop(name, None)
        else:
            members[name] = value
    return members


def make_proof(
    key: Key,
    method: str,
    url: str,
    *,
    access_token: str | None = None,
    jti: str | None = None,
    iat: int | float | datetime | None = None,
    typ: str | None = "dpop+jwt",
    alg: str | None = None,
    extra_headers: Mapping[str, Any] | None = None,
    claims_override: Mapping[str, Any] | None = None,
) -> str:
    """Sign a DPoP proof for one request and return it (the value of the ``DPoP`` header).

    ``jti`` defaults to a fresh random id, ``iat`` to now (a datetime from a test clock is
    fine), ``alg`` to the key's usual algorithm; ``typ=None`` leaves ``typ`` out. With an
    ``access_token`` the proof carries its ``ath``. ``extra_headers`` and ``claims_override``
    are applied last, so they can replace or (with ``OMIT``) remove anything; the signature
    is always made with ``alg``, even if ``extra_headers`` puts another ``alg`` in the header.
    """
    alg = alg or default_alg(key)
    if isinstance(iat, datetime):
        iat = int(iat.timestamp())
    header: dict[str, Any] = {"alg": alg, "jwk": public_jwk(key)}
    if typ is not None:
        header["typ"] = typ
    claims: dict[str, Any] = {
        "jti": jti if jti is not None else secrets.token_urlsafe(16),
        "htm": method,
        "htu": url,
        "iat": int(time.time()) if iat is None else iat,
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    _apply(header, extra_headers)
    _apply(claims, claims_override)
    return sign(header, claims, key, signing_alg=alg)


def sign(
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    key: Key,
    *,
    signing_alg: str | None = None,
) -> str:
    """Sign any header and claims as a compact JWS, no questions asked.

    The signature uses ``signing_alg``, or else the header's ``alg``: they differ only when a
    test makes the header lie. joserfc's own serializer checks the header; tests need to send
    headers it would refuse (a ``jwk`` that is not an object, unknown members), so the JWS is
    put together here.
    """
    signing_input = f"{_b64_json(header)}.{_b64_json(claims)}".encode("ascii")
    algorithm = jws.JWSRegistry.algorithms[signing_alg or header["alg"]]
    return f"{signing_input.decode('ascii')}.{_b64(algorithm.sign(signing_input, key))}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64_json(value: Mapping[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def unsigned_token(header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
    """Build a token with an empty signature by hand (for ``alg: none`` attacks)."""
    return f"{_b64_json(header)}.{_b64_json(claims)}."
