"""The one place that says which JWS algorithms we accept from departments, and how we verify.

FAPI 2.0 allows ES256, PS256 and EdDSA. RFC 9864 renamed EdDSA-with-Ed25519 to ``Ed25519``;
we accept both names. ``none`` and the HMAC family are never accepted, whatever a caller asks.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Collection, Mapping
from functools import lru_cache
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import Key, KeySet

ALLOWED_ALGORITHMS: tuple[str, ...] = ("ES256", "PS256", "EdDSA", "Ed25519")

# joserfc 1.8 warns on every use of "EdDSA"; we accept the old name on purpose (RFC 9864 keeps
# it valid, and deployed clients still send it), so exactly that warning is silenced.
_EDDSA_WARNING = "EdDSA is deprecated via RFC 9864"

# An RSA key in a DPoP header does not fit joserfc's default 512-byte header limit; 2 KiB holds
# a 4096-bit key with room to spare and still bounds the work an attacker can ask of us.
_MAX_HEADER_BYTES = 2048

KeyResolver = Callable[[Mapping[str, Any]], Key]
"""Given a token's protected header, return the key that must have signed it (or raise)."""


class InvalidJWS(ValueError):
    """A signed token is malformed, uses an algorithm we refuse, or its signature is wrong.

    ``reason`` is a plain-English clause ("its signature does not verify") that callers can put
    after their own subject ("The DPoP proof is refused: …"); it never repeats a token value.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"The signed token is refused: {reason}.")
        self.reason = reason


def is_forbidden_algorithm(alg: object) -> bool:
    """Say whether an ``alg`` value is one we refuse whatever the caller allows."""
    return not isinstance(alg, str) or alg.lower() == "none" or alg.upper().startswith("HS")


@lru_cache(maxsize=16)
def _acceptable(algorithms: tuple[str, ...]) -> tuple[str, ...]:
    # A caller's list is filtered, not trusted: none and HS* never get through.
    allowed = tuple(alg for alg in algorithms if not is_forbidden_algorithm(alg))
    if not allowed:
        raise ValueError("verify_compact needs at least one acceptable algorithm")
    return allowed


@lru_cache(maxsize=16)
def _registry(algorithms: tuple[str, ...]) -> jws.JWSRegistry:
    # Built once per list of algorithms: registries are immutable in use and cost a few µs.
    registry = jws.JWSRegistry(algorithms=algorithms, strict_check_header=False)
    registry.max_header_length = _MAX_HEADER_BYTES
    return registry


def _describe(algorithms: Collection[str]) -> str:
    names = list(algorithms)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _validate_silencing_eddsa_warning(
    signed: jws.CompactSignature, key: Any, registry: jws.JWSRegistry
) -> bool:
    # Only this call pays for catch_warnings (it copies the global filter list).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_EDDSA_WARNING, category=SecurityWarning)
        return jws.validate_compact(signed, key, registry=registry)


def verify_compact(
    token: str,
    key: Key | KeySet | KeyResolver,
    *,
    algorithms: Collection[str] = ALLOWED_ALGORITHMS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a compact JWS and return its (header, claims); raise InvalidJWS if it fails.

    ``key`` is a public key, a key set (picked by ``kid``), or a function given the header that
    returns the key (how DPoP takes the key from the proof itself). Errors the function raises
    pass through unchanged, so it can raise its own, more precise, error.
    """
    allowed = _acceptable(tuple(algorithms))
    if not isinstance(token, str) or token.count(".") != 2:
        raise InvalidJWS("it is not a compact JWS (three parts separated by dots)")
    registry = _registry(allowed)
    try:
        signed = jws.extract_compact(token.encode("ascii"), registry=registry)
    except (JoseError, ValueError, TypeError, RecursionError):
        # ValueError covers bad base64, bad UTF-8 and bad JSON; deep nesting is RecursionError.
        raise InvalidJWS("its header or payload cannot be decoded") from None
    header = signed.headers()
    if not isinstance(header, dict):
        raise InvalidJWS("its header is not a JSON object")
    alg = header.get("alg")
    if is_forbidden_algorithm(alg) or alg not in allowed:
        raise InvalidJWS(f"it must be signed with {_describe(allowed)}")
    if "crit" in header or "b64" in header:
        # We implement no JWS extensions, so one that must be understood is refused (RFC 7515).
        raise InvalidJWS("its header asks for an extension we do not support")
    try:
        registry.check_header(header)
    except (JoseError, ValueError, TypeError):
        raise InvalidJWS("a field in its header has the wrong type or form") from None
    # Called out here, not inside joserfc, so the resolver's own errors reach the caller as-is.
    resolved: Any = key(header) if callable(key) else key
    try:
        if alg == "EdDSA":
            valid = _validate_silencing_eddsa_warning(signed, resolved, registry)
        else:
            valid = jws.validate_compact(signed, resolved, registry=registry)
    except (JoseError, ValueError, TypeError):
        if isinstance(resolved, KeySet):
            raise InvalidJWS("no registered key matches its kid and algorithm") from None
        raise InvalidJWS("its key does not fit its algorithm") from None
    if not valid:
        raise InvalidJWS("its signature does not verify")
    try:
        claims = json.loads(signed.payload.decode("utf-8"))
    except (UnicodeError, ValueError, RecursionError):
        raise InvalidJWS("its payload is not JSON") from None
    if not isinstance(claims, dict):
        raise InvalidJWS("its payload is not a JSON object")
    return header, claims
