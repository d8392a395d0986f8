"""DPoP (RFC 9449): proof that the caller holds the private key a token is bound to.

Every call to the token endpoint and the department API carries a fresh proof: a JWT signed
with the department's DPoP key, naming the HTTP method and URL, with a one-time ``jti``. We
check it as RFC 9449 §4.3 lists, and remember each ``jti`` in the database so a proof replayed
to any worker is refused. Server nonces (§8) are not used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key
from joserfc.util import urlsafe_b64decode
from sqlmodel import Session

from connectors.errors import InvalidDPoPProof
from connectors.jose_algs import InvalidJWS, verify_compact
from connectors.replay import remember_jti

PROOF_WINDOW = timedelta(seconds=60)  # how old a proof's iat may be
CLOCK_SKEW = timedelta(seconds=5)  # how far ahead of our clock a client's iat may be
# A replay entry outlives the window a little, so clock rounding cannot reopen it.
REPLAY_MARGIN = timedelta(seconds=5)
MAX_JTI_LENGTH = 200
MIN_RSA_BITS = 2048
PROOF_TYPE = "dpop+jwt"

# The members RFC 7638 hashes for each key type: also all a public key needs to be used.
_PUBLIC_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
}
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


@dataclass(frozen=True)
class DPoPProof:
    """A proof that passed every check, and the key it was made with."""

    jkt: str  # RFC 7638 SHA-256 thumbprint (base64url, no padding) of the proof's public key
    jti: str
    issued_at: datetime
    public_jwk: dict[str, Any]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def access_token_hash(token: str) -> str:
    """Return the ``ath`` value for an access token: base64url(SHA-256(token)), no padding."""
    # Our tokens are ASCII, for which UTF-8 is the same bytes; any other text still hashes.
    return _b64url(hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest())


def normalise_htu(url: str) -> str:
    """Return a URL in the form ``htu`` values are compared in (RFC 9449 §4.3, RFC 3986 §6).

    Scheme and host lower-case, the default port dropped, percent-escapes upper-case, an empty
    path made "/", no query or fragment. Raise ValueError if it is not an http(s) URL.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname  # lower-cased, IPv6 brackets removed
    if scheme not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        raise ValueError("not an http(s) URL with a host and no user name")
    port = parts.port  # raises ValueError for a port that is not a number in range
    if ":" in host:
        host = f"[{host}]"
    authority = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _PERCENT_ESCAPE.sub(lambda match: match.group(0).upper(), parts.path) or "/"
    return f"{scheme}://{authority}{path}"


def _public_members(jwk: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The key's RFC 7638 members, in order, after checking it is a usable public key."""
    if _PRIVATE_MEMBERS.intersection(jwk):
        raise InvalidDPoPProof("The DPoP proof's jwk must be a public key, not a private one.")
    kty = jwk.get("kty")
    names = _PUBLIC_MEMBERS.get(kty) if isinstance(kty, str) else None
    if names is None:
        raise InvalidDPoPProof("The DPoP proof's jwk must be an EC, RSA or OKP public key.")
    if not all(isinstance(jwk.get(name), str) for name in names):
        raise InvalidDPoPProof("The DPoP proof's jwk is missing a member its key type needs.")
    members = tuple((name, str(jwk[name])) for name in names)
    if jwk["kty"] == "RSA" and _rsa_bits(jwk["n"]) < MIN_RSA_BITS:
        raise InvalidDPoPProof("The DPoP proof's RSA key must be at least 2048 bits long.")
    return members


def _rsa_bits(modulus: str) -> int:
    try:
        return int.from_bytes(urlsafe_b64decode(modulus.encode("ascii")), "big").bit_length()
    except (UnicodeError, ValueError):
        return 0


@lru_cache(maxsize=2048)
def _import_public_key(members: tuple[tuple[str, str], ...]) -> tuple[Key, str]:
    # A department reuses one DPoP key for many calls: importing it (point validation) and
    # hashing it once saves work on every request. Failed imports raise and are not cached.
    key = JWKRegistry.import_key(dict(members))
    return key, key.thumbprint()


def _load_public_key(jwk: Mapping[str, Any]) -> tuple[Key, str, tuple[tuple[str, str], ...]]:
    members = _public_members(jwk)
    try:
        key, jkt = _import_public_key(members)
    except (JoseError, ValueError, TypeError):
        raise InvalidDPoPProof("The DPoP proof's jwk is not a valid public key.") from None
    return key, jkt, members


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """Return the RFC 7638 SHA-256 thumbprint of a JWK (base64url, no padding).

    Private members, if any, are ignored, so a key pair and its public half give the same value.
    Raise InvalidDPoPProof if it is not a usable EC, RSA or OKP key.
    """
    public = {name: value for name, value in jwk.items() if name not in _PRIVATE_MEMBERS}
    return _load_public_key(public)[1]


def check_proof(
    session: Session,
    headers_values: Sequence[str],
    *,
    method: str,
    url: str,
    now: datetime,
    access_token: str | None = None,
) -> DPoPProof:
    """Check the request's DPoP proof (RFC 9449 §4.3) and use up its ``jti``; return the proof.

    ``headers_values`` is every value of the request's ``DPoP`` header; ``url`` is the URL the
    client called (as it sees it). Raise InvalidDPoPProof, naming what is wrong, if it fails.
    """
    proof = verify_proof(headers_values, method=method, url=url, now=now, access_token=access_token)
    spend_proof(session, proof)
    return proof


def spend_proof(session: Session, proof: DPoPProof) -> None:
    """Use up a checked proof's ``jti`` in the caller's transaction; raise if it was used."""
    if not remember_jti(
        session,
        f"dpop:{proof.jkt}:{proof.jti}",
        expires_at=proof.issued_at + PROOF_WINDOW + REPLAY_MARGIN,
    ):
        raise InvalidDPoPProof("This DPoP proof has been used before.")


def verify_proof(
    headers_values: Sequence[str],
    *,
    method: str,
    url: str,
    now: datetime,
    access_token: str | None = None,
) -> DPoPProof:
    """Everything ``check_proof`` checks but the replay cache: no database, nothing used up."""
    if not headers_values:
        raise InvalidDPoPProof("A DPoP proof is required: send one in the DPoP header.")
    if len(headers_values) > 1:
        raise InvalidDPoPProof("Send exactly one DPoP header; this request has more than one.")

    loaded: dict[str, Any] = {}

    def key_from_header(header: Mapping[str, Any]) -> Key:
        if header.get("typ") != PROOF_TYPE:
            raise InvalidDPoPProof(f'The DPoP proof\'s header must have typ "{PROOF_TYPE}".')
        jwk = header.get("jwk")
        if not isinstance(jwk, Mapping):
            raise InvalidDPoPProof("The DPoP proof's header must carry its public key as jwk.")
        key, loaded["jkt"], loaded["members"] = _load_public_key(jwk)
        return key

    try:
        _header, claims = verify_compact(headers_values[0], key_from_header)
    except InvalidJWS as error:
        raise InvalidDPoPProof(f"The DPoP proof is refused: {error.reason}.") from None

    jti = _check_claims(claims, method=method, url=url)
    issued_at = _check_issued_at(claims.get("iat"), now)
    if access_token is not None:
        _check_access_token_hash(claims.get("ath"), access_token)

    jkt: str = loaded["jkt"]
    return DPoPProof(jkt=jkt, jti=jti, issued_at=issued_at, public_jwk=dict(loaded["members"]))


def _check_claims(claims: Mapping[str, Any], *, method: str, url: str) -> str:
    """Check jti, htm and htu; return the jti."""
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= MAX_JTI_LENGTH:
        raise InvalidDPoPProof(
            f"The DPoP proof needs a jti claim: a unique string of 1 to {MAX_JTI_LENGTH} "
            "characters."
        )
    if claims.get("htm") != method:
        raise InvalidDPoPProof("The DPoP proof's htm claim does not match the request method.")
    htu = claims.get("htu")
    if not isinstance(htu, str):
        raise InvalidDPoPProof("The DPoP proof needs an htu claim: the URL it is sent to.")
    try:
        claimed = normalise_htu(htu)
    except ValueError:
        raise InvalidDPoPProof("The DPoP proof's htu claim is not an http(s) URL.") from None
    if claimed != normalise_htu(url):
        raise InvalidDPoPProof("The DPoP proof's htu claim does not match the request URL.")
    return jti


def _check_issued_at(iat: object, now: datetime) -> datetime:
    """Check iat is a whole number of seconds within the proof window; return it as a time."""
    # bool is an int in Python, but true is not a time.
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise InvalidDPoPProof("The DPoP proof needs an iat claim: a whole number of seconds.")
    # Compare as numbers first: a huge iat would overflow datetime.
    now_seconds = now.timestamp()
    if iat < now_seconds - PROOF_WINDOW.total_seconds():
        raise InvalidDPoPProof(
            "The DPoP proof is too old: make a new proof, with the current time, for each request."
        )
    if iat > now_seconds + CLOCK_SKEW.total_seconds():
        raise InvalidDPoPProof("The DPoP proof's iat is in the future: check the client's clock.")
    return datetime.fromtimestamp(iat, UTC)


def _check_access_token_hash(ath: object, access_token: str) -> None:
    """Check the proof is bound to this access token."""
    if not isinstance(ath, str):
        raise InvalidDPoPProof("The DPoP proof needs an ath claim: the hash of the access token.")
    expected = access_token_hash(access_token).encode("ascii")
    if not hmac.compare_digest(ath.encode("utf-8", "surrogatepass"), expected):
        raise InvalidDPoPProof("The DPoP proof's ath claim does not match the access token.")
