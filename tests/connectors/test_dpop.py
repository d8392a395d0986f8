"""DPoP proofs (RFC 9449 §4.3): a department proves, on every call, that it holds its key."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import Key, KeySet, RSAKey

from connectors.dpop import (
    DPoPProof,
    access_token_hash,
    check_proof,
    normalise_htu,
    thumbprint,
)
from connectors.errors import InvalidDPoPProof
from connectors.jose_algs import InvalidJWS, verify_compact
from tests.connectors.dpop_client import (
    OMIT,
    make_proof,
    new_key,
    public_jwk,
    sign,
    unsigned_token,
)
from vault.clock import FrozenClock

TOKEN_URL = "https://x/oauth/token"
TOKEN = "an-access-token-0123456789"

# RFC 7638 §3.1: the example key and the thumbprint the RFC gives for it.
RFC7638_KEY = {
    "kty": "RSA",
    "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
    "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW"
    "2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQ"
    "Fh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
    "e": "AQAB",
    "alg": "RS256",
    "kid": "2011-04-29",
}
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

Check = Callable[..., DPoPProof]


def rfc7638(jwk: dict[str, Any]) -> str:
    """The thumbprint worked out by hand, as RFC 7638 §3 describes, to compare against."""
    required = {
        "EC": ("crv", "kty", "x", "y"),
        "RSA": ("e", "kty", "n"),
        "OKP": ("crv", "kty", "x"),
    }
    members = {name: jwk[name] for name in required[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


@pytest.fixture(scope="module")
def key() -> Key:
    return new_key("ES256")


@pytest.fixture(scope="module")
def other_key() -> Key:
    return new_key("ES256")


@pytest.fixture
def check(db: Any, clock: FrozenClock) -> Check:
    """Check proofs as the token endpoint would: POST to TOKEN_URL, now, one transaction."""

    def run(
        values: str | Sequence[str],
        *,
        method: str = "POST",
        url: str = TOKEN_URL,
        access_token: str | None = None,
    ) -> DPoPProof:
        with db.tx() as session:
            return check_proof(
                session,
                [values] if isinstance(values, str) else values,
                method=method,
                url=url,
                now=clock(),
                access_token=access_token,
            )

    return run


@pytest.fixture
def prove(key: Key, clock: FrozenClock) -> Callable[..., str]:
    """Make a proof for POST TOKEN_URL at the test clock's time, with anything changed."""

    def make(**changes: Any) -> str:
        options: dict[str, Any] = {"key": key, "method": "POST", "url": TOKEN_URL, "iat": clock()}
        options.update(changes)
        return make_proof(options.pop("key"), options.pop("method"), options.pop("url"), **options)

    return make


# --- Good proofs --------------------------------------------------------------------------


def test_a_good_proof_returns_the_keys_thumbprint(
    check: Check, prove: Any, key: Key, clock: FrozenClock
) -> None:
    proof = check(prove(jti="one", access_token=TOKEN), access_token=TOKEN)
    assert proof.jkt == rfc7638(public_jwk(key))
    assert (proof.jti, proof.public_jwk) == ("one", public_jwk(key))
    assert proof.issued_at == clock().replace(microsecond=0)


def test_the_thumbprint_matches_rfc_7638s_example(key: Key) -> None:
    assert thumbprint(RFC7638_KEY) == rfc7638(RFC7638_KEY) == RFC7638_THUMBPRINT
    assert thumbprint(key.as_dict(private=True)) == thumbprint(public_jwk(key))


@pytest.mark.parametrize("alg", ["PS256", "EdDSA", "Ed25519"])
def test_other_allowed_algorithms_verify(check: Check, prove: Any, alg: str) -> None:
    # EdDSA makes joserfc warn; warnings are errors here, so this also shows it is silenced.
    signer = new_key(alg)
    assert check(prove(key=signer, alg=alg)).jkt == rfc7638(public_jwk(signer))


@pytest.mark.parametrize(
    ("claimed", "called"),
    [
        (TOKEN_URL + "?a=1#top", TOKEN_URL + "?b=2"),  # the query string is ignored
        ("HTTPS://X:443/oauth/token", TOKEN_URL),  # compared after normalising
    ],
)
def test_htu_matches_the_url_called(check: Check, prove: Any, claimed: str, called: str) -> None:
    assert check(prove(url=claimed), url=called).jkt


@pytest.mark.parametrize("age", [timedelta(seconds=60), timedelta(seconds=-5)])
def test_iat_at_the_edges_of_the_window_is_accepted(
    check: Check, prove: Any, clock: FrozenClock, age: timedelta
) -> None:
    assert check(prove(iat=clock() - age)).jkt


def test_the_same_jti_from_another_key_is_a_different_proof(
    check: Check, prove: Any, other_key: Key
) -> None:
    check(prove(jti="shared"))
    assert check(prove(key=other_key, jti="shared")).jkt == rfc7638(public_jwk(other_key))


# --- The header and the signature -------------------------------------------------------


def test_no_dpop_header_is_refused(check: Check) -> None:
    with pytest.raises(InvalidDPoPProof, match="proof is required") as refused:
        check([])
    assert refused.value.error == "invalid_dpop_proof"
    assert refused.value.status == 400


def test_two_dpop_headers_are_refused(check: Check, prove: Any) -> None:
    with pytest.raises(InvalidDPoPProof, match="exactly one DPoP header"):
        check([prove(), prove()])


@pytest.mark.parametrize("junk", ["", "abc", "a.b", "a.b.c.d", "a.b.c", "é.é.é"])
def test_something_that_is_not_a_jws_is_refused(check: Check, junk: str) -> None:
    with pytest.raises(InvalidDPoPProof, match="refused"):
        check(junk)


@pytest.mark.parametrize("typ", [None, "jwt", "DPOP+JWT", "at+jwt"])
def test_a_wrong_or_missing_typ_is_refused(check: Check, prove: Any, typ: str | None) -> None:
    with pytest.raises(InvalidDPoPProof, match="typ"):
        check(prove(typ=typ))


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(check: Check, key: Key, clock: FrozenClock, alg: str) -> None:
    header = {"typ": "dpop+jwt", "alg": alg, "jwk": public_jwk(key)}
    claims = {"jti": "x", "htm": "POST", "htu": TOKEN_URL, "iat": int(clock().timestamp())}
    with pytest.raises(InvalidDPoPProof, match="must be signed with ES256"):
        check(unsigned_token(header, claims))


@pytest.mark.parametrize(
    ("signer", "alg"),
    [
        pytest.param("HS256", "HS256", id="hs256-keyed-with-the-public-key"),
        pytest.param("PS256", "RS256", id="rs256"),
        pytest.param("ES256", "ES384", id="es384"),
    ],
)
def test_an_algorithm_we_do_not_accept_is_refused(
    check: Check, prove: Any, key: Key, signer: str, alg: str
) -> None:
    proof = prove(key=new_key(signer), alg=alg, extra_headers={"jwk": public_jwk(key)})
    with pytest.raises(
        InvalidDPoPProof, match="must be signed with ES256, PS256, EdDSA or Ed25519"
    ):
        check(proof)


def _without_y(key: Key) -> dict[str, Any]:
    return {name: value for name, value in public_jwk(key).items() if name != "y"}


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        pytest.param(lambda key: OMIT, "carry its public key as jwk", id="missing"),
        pytest.param(lambda key: "a key", "header has the wrong type", id="not-an-object"),
        pytest.param(lambda key: key.as_dict(private=True), "not a private one", id="private"),
        pytest.param(lambda key: {"kty": "oct"}, "EC, RSA or OKP public key", id="symmetric"),
        pytest.param(_without_y, "missing a member", id="member-missing"),
        pytest.param(
            lambda key: public_jwk(key) | {"y": public_jwk(key)["x"]},
            "not a valid public key",
            id="point-off-the-curve",
        ),
    ],
)
def test_an_unusable_jwk_is_refused(
    check: Check, prove: Any, key: Key, spoil: Callable[[Key], Any], message: str
) -> None:
    with pytest.raises(InvalidDPoPProof, match=message):
        check(prove(extra_headers={"jwk": spoil(key)}))


def test_a_short_rsa_key_is_refused(check: Check, prove: Any) -> None:
    with pytest.warns(SecurityWarning):
        weak = RSAKey.generate_key(1024)
    with pytest.raises(InvalidDPoPProof, match="at least 2048 bits"):
        check(prove(key=weak, alg="PS256"))


def test_a_signature_by_another_key_is_refused(check: Check, prove: Any, other_key: Key) -> None:
    with pytest.raises(InvalidDPoPProof, match="signature does not verify"):
        check(prove(extra_headers={"jwk": public_jwk(other_key)}))


def test_a_key_of_the_wrong_type_for_the_algorithm_is_refused(check: Check, prove: Any) -> None:
    with pytest.raises(InvalidDPoPProof, match="key does not fit"):
        check(prove(extra_headers={"jwk": public_jwk(new_key("Ed25519"))}))


def test_a_header_demanding_an_extension_is_refused(check: Check, prove: Any) -> None:
    with pytest.raises(InvalidDPoPProof, match="extension"):
        check(prove(extra_headers={"crit": ["exp"], "exp": 1}))


# --- The claims -----------------------------------------------------------------------------


@pytest.mark.parametrize("htm", ["GET", "post", "PUT"])
def test_a_wrong_htm_is_refused(check: Check, prove: Any, htm: str) -> None:
    with pytest.raises(InvalidDPoPProof, match="htm"):
        check(prove(method=htm))


@pytest.mark.parametrize(
    "htu",
    [
        "https://y/oauth/token",  # another host
        "https://x/oauth/par",  # another path
        "https://x/oauth/token/",  # a trailing slash
        "http://x/oauth/token",  # http instead of https
        "https://x:8443/oauth/token",  # another port
    ],
)
def test_a_wrong_htu_is_refused(check: Check, prove: Any, htu: str) -> None:
    with pytest.raises(InvalidDPoPProof, match="htu claim does not match"):
        check(prove(url=htu))


@pytest.mark.parametrize("htu", ["/oauth/token", "x/oauth/token", "ftp://x/oauth/token", 42])
def test_an_htu_that_is_not_an_http_url_is_refused(check: Check, prove: Any, htu: Any) -> None:
    with pytest.raises(InvalidDPoPProof, match="htu"):
        check(prove(claims_override={"htu": htu}))


@pytest.mark.parametrize(("seconds", "message"), [(-61, "too old"), (6, "in the future")])
def test_an_iat_outside_the_window_is_refused(
    check: Check, prove: Any, clock: FrozenClock, seconds: int, message: str
) -> None:
    with pytest.raises(InvalidDPoPProof, match=message):
        check(prove(iat=clock() + timedelta(seconds=seconds)))


@pytest.mark.parametrize("iat", ["now", "1767258000", 1767258000.5, True, None, OMIT, 10**400])
def test_an_iat_that_is_not_a_whole_number_is_refused(check: Check, prove: Any, iat: Any) -> None:
    with pytest.raises(InvalidDPoPProof, match="iat"):
        check(prove(claims_override={"iat": iat}))


@pytest.mark.parametrize("jti", [OMIT, "", 7, "j" * 201])
def test_a_missing_or_unusable_jti_is_refused(check: Check, prove: Any, jti: Any) -> None:
    with pytest.raises(InvalidDPoPProof, match="jti"):
        check(prove(claims_override={"jti": jti}))


@pytest.mark.parametrize(
    ("ath", "message"),
    [
        pytest.param(OMIT, "needs an ath claim", id="missing"),
        pytest.param(access_token_hash("another-token"), "does not match", id="another-token"),
        pytest.param("é", "does not match", id="not-ascii"),
        pytest.param(7, "needs an ath claim", id="not-a-string"),
    ],
)
def test_a_proof_not_bound_to_the_presented_token_is_refused(
    check: Check, prove: Any, ath: Any, message: str
) -> None:
    with pytest.raises(InvalidDPoPProof, match=f"ath claim {message}|{message}"):
        check(prove(claims_override={"ath": ath}), access_token=TOKEN)


# --- Replays --------------------------------------------------------------------------------


def test_a_replayed_proof_is_refused(check: Check, prove: Any) -> None:
    proof = prove()
    check(proof)
    with pytest.raises(InvalidDPoPProof, match="used before"):
        check(proof)


def test_a_replay_inside_one_transaction_is_refused(
    db: Any, prove: Any, clock: FrozenClock
) -> None:
    proof = prove()
    with db.tx() as session:
        check_proof(session, [proof], method="POST", url=TOKEN_URL, now=clock())
        with pytest.raises(InvalidDPoPProof, match="used before"):
            check_proof(session, [proof], method="POST", url=TOKEN_URL, now=clock())


def test_a_replay_to_another_worker_is_refused(db: Any, prove: Any, clock: FrozenClock) -> None:
    proof = prove()
    with db.tx() as first_worker:
        check_proof(first_worker, [proof], method="POST", url=TOKEN_URL, now=clock())
    with db.tx() as second_worker, pytest.raises(InvalidDPoPProof, match="used before"):
        check_proof(second_worker, [proof], method="POST", url=TOKEN_URL, now=clock())


def test_a_replay_later_in_the_window_is_refused(
    check: Check, prove: Any, clock: FrozenClock
) -> None:
    proof = prove()
    check(proof)
    clock.advance(seconds=59)
    with pytest.raises(InvalidDPoPProof, match="used before"):
        check(proof)


def test_a_refused_proof_does_not_use_up_its_jti(check: Check, prove: Any) -> None:
    with pytest.raises(InvalidDPoPProof):
        check(prove(jti="j1", access_token="another-token"), access_token=TOKEN)
    assert check(prove(jti="j1", access_token=TOKEN), access_token=TOKEN).jti == "j1"


# --- Small functions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://x/oauth/token", "https://x/oauth/token"),
        ("HTTPS://Tellonce.EXAMPLE/a", "https://tellonce.example/a"),
        ("https://x:443/a", "https://x/a"),
        ("http://x:80/a", "http://x/a"),
        ("http://x:443/a", "http://x:443/a"),
        ("https://x", "https://x/"),
        ("https://x/a?b=c#d", "https://x/a"),
        ("https://x/a%2fb", "https://x/a%2Fb"),
        ("https://[::1]:8443/a", "https://[::1]:8443/a"),
    ],
)
def test_normalise_htu(url: str, normal: str) -> None:
    assert normalise_htu(url) == normal


@pytest.mark.parametrize(
    "url", ["", "/a", "ftp://x/a", "https:///a", "https://u@x/a", "https://x:99999/a"]
)
def test_normalise_htu_refuses_what_is_not_an_http_url(url: str) -> None:
    with pytest.raises(ValueError):
        normalise_htu(url)


def test_access_token_hash_matches_rfc_9449s_example() -> None:
    # RFC 9449 §7.1: this access token and the ath of its proof.
    assert access_token_hash("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU") == (
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    )


def test_a_proof_made_by_joserfcs_own_serializer_verifies(
    check: Check, key: Key, clock: FrozenClock
) -> None:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(key)}
    claims = {"jti": "x", "htm": "POST", "htu": TOKEN_URL, "iat": int(clock().timestamp())}
    proof = jws.serialize_compact(header, json.dumps(claims), key, algorithms=["ES256"])
    assert check(proof).jti == "x"


def test_verify_compact_picks_a_registered_key_by_kid(key: Key, other_key: Key) -> None:
    keys = KeySet.import_key_set(
        {"keys": [public_jwk(key) | {"kid": "a"}, public_jwk(other_key) | {"kid": "b"}]}
    )
    assert verify_compact(sign({"alg": "ES256", "kid": "a"}, {"n": 1}, key), keys)[1] == {"n": 1}
    with pytest.raises(InvalidJWS, match="no registered key matches"):
        verify_compact(sign({"alg": "ES256", "kid": "c"}, {"n": 1}, key), keys)
    with pytest.raises(InvalidJWS, match="signature does not verify"):
        verify_compact(sign({"alg": "ES256", "kid": "b"}, {"n": 1}, key), keys)


def test_verify_compact_never_accepts_hmac_or_none_even_if_asked() -> None:
    secret = new_key("HS256")
    with pytest.raises(ValueError, match="acceptable algorithm"):
        verify_compact(sign({"alg": "HS256"}, {}, secret), secret, algorithms=["HS256", "none"])


# --- Anything at all ------------------------------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_claim_names = st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nonce"]) | st.text(max_size=5)
_junk_settings = settings(
    max_examples=200,
    deadline=None,
    # The database fixture is shared by the examples on purpose: junk must not need a clean one.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def _b64_json(value: Any) -> str:
    raw = json.dumps(value).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _refused_or_accepted(check: Check, values: Sequence[str], **options: Any) -> None:
    try:
        check(values, **options)
    except InvalidDPoPProof as refused:
        assert refused.message and "Traceback" not in refused.message


@_junk_settings
@given(values=st.lists(st.text(max_size=300), max_size=3))
def test_junk_headers_are_only_ever_refused(check: Check, values: list[str]) -> None:
    _refused_or_accepted(check, values)


@_junk_settings
@given(header=_json_values, claims=_json_values, signature=st.text("abcXYZ-_019", max_size=90))
def test_junk_tokens_are_only_ever_refused(
    check: Check, header: Any, claims: Any, signature: str
) -> None:
    _refused_or_accepted(check, [f"{_b64_json(header)}.{_b64_json(claims)}.{signature}"])


@_junk_settings
@given(
    extra_headers=st.dictionaries(st.sampled_from(["typ", "alg", "jwk", "kid", "x"]), _json_values),
    claims=st.dictionaries(_claim_names, _json_values | st.integers(1767257900, 1767258100)),
    access_token=st.none() | st.text(max_size=30),
)
def test_signed_proofs_with_junk_claims_are_only_ever_refused(
    check: Check,
    prove: Any,
    extra_headers: dict[str, Any],
    claims: dict[str, Any],
    access_token: str | None,
) -> None:
    # Properly signed, and good but for the junk, so the later checks and the replay cache
    # see junk too.
    proof = prove(extra_headers=extra_headers, claims_override=claims)
    _refused_or_accepted(check, [proof], access_token=access_token)
