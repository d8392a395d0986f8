"""Shared pieces for the fuzzing and canary tests: a seeded world, API tokens and junk.

``build_world`` puts one person (with information and a story) and one registered department
into a database; ``seed_challenges`` adds decisions the person says are wrong. ``DPoPAuth``
calls the department API as the department's software would: DPoP-bound access tokens (a
grant's for ``/data`` and ``/decisions``, a client credentials one for ``/challenges``) and
a fresh proof for each request. Then junk (hypothesis strategies) for the parser tests, and
the atheris harness for the DPoP parser.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import sqlite3
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st
from joserfc.jwk import Key
from sqlalchemy.engine import Engine

from connectors.departments import register_department
from connectors.tokens import ACCESS_TOKEN_LIFETIME, new_secret, save_token
from consent.access import Served, fetch_for_department, served_versions
from consent.actors import citizen as citizen_actor
from consent.challenges import open_challenge
from consent.decisions import DecisionInput, record_decision
from consent.grants import MAX_FETCHES, GrantRequest, give_grant
from tests.connectors.dpop_client import make_proof, new_key, sign
from tests.oauth.harness import HOUSING_DETAILS, registration
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.db import session_scope
from vault.records import record_data_point, record_story_section
from vault.services import Vault

CASE = str(HOUSING_DETAILS["case_reference"])
PURPOSE = str(HOUSING_DETAILS["purpose"])
SHARED = ("identity.name", "contact.address", "money.income_monthly")
ADDRESS = {"lines": ["10 High Street"], "town": "Leeds", "postcode": "LS1 1AA"}
# A token is used until it has this little life left, or its grant this few fetches.
TOKEN_MARGIN = 60.0  # seconds
FETCH_MARGIN = 50
# What never belongs in an answer to junk: a Python traceback or the debugger's page.
STACK_TRACE = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+")


def decision_input(used: list[tuple[str, int]], **changes: Any) -> DecisionInput:
    """A decision by a person at the department, citing ``used``."""
    base = DecisionInput(
        case_reference=CASE,
        title="Emergency housing",
        outcome="You can stay at Elm House from tonight.",
        reasons="You told us you have nowhere safe to stay.",
        automated=False,
        algorithm_name=None,
        algorithm_version=None,
        officer_name="Ann Baker",
        officer_role="Housing officer",
        data_points_used=used,
        other_information_used=[],
    )
    return replace(base, **changes)


@dataclass
class World:
    """A seeded database: one person, one department and its DPoP key."""

    engine: Engine
    vault: Vault
    citizen_id: str
    account_id: str
    department_id: str
    dpop_key: Key = field(default_factory=lambda: new_key("ES256"))
    decision_ids: list[str] = field(default_factory=list)
    challenge_ids: list[str] = field(default_factory=list)

    @property
    def actor(self) -> Any:
        """The person, as the consent layer sees them acting for themselves."""
        return citizen_actor(self.account_id, self.citizen_id)

    def give_grant(self, max_fetches: int = MAX_FETCHES) -> str:
        """The person says yes to the department's housing request; return the grant id."""
        request = GrantRequest(
            department_id=self.department_id,
            purpose_code=PURPOSE,
            purpose_text="To find you somewhere safe to stay.",
            data_points=SHARED,
            story_topics=("housing",),
            case_reference=CASE,
            duration_days=30,
            data_life_days=90,
            max_fetches=max_fetches,
        )
        with session_scope(self.engine) as session:
            return give_grant(session, self.vault, self.actor, request).grant.id

    def token(self, grant_id: str | None, scope: str = "") -> str:
        """A DPoP-bound access token (for a grant, or department-wide with ``scope``)."""
        value = new_secret()
        with session_scope(self.engine) as session:
            save_token(
                session,
                access_token=value,
                refresh_token=None,
                department_id=self.department_id,
                grant_id=grant_id,
                code_id=None,
                scope=scope,
                jkt=self.dpop_key.thumbprint(),
                now=self.vault.clock(),
            )
        return value

    def decide(self, grant_id: str, **changes: Any) -> str:
        """The department fetches under the grant, then records a decision citing all of it."""
        with session_scope(self.engine) as session:
            served = fetch_for_department(
                session,
                self.vault,
                grant_id,
                self.department_id,
                acting_officer="A. Officer",
                case_reference=CASE,
            )
            assert isinstance(served, Served), served
        with session_scope(self.engine) as session:
            used = sorted(served_versions(session, grant_id))
            decision = record_decision(
                session,
                self.vault,
                self.department_id,
                grant_id,
                decision_input(used, **changes),
                acting_officer="A. Officer",
            )
            return decision.id

    def snapshot(self) -> sqlite3.Connection:
        """A copy (in memory) of the SQLite database as it is now, for ``restore``."""
        copy = sqlite3.connect(":memory:", check_same_thread=False)
        raw = self.engine.raw_connection()
        try:
            raw.driver_connection.backup(copy)  # type: ignore[union-attr]
        finally:
            raw.close()
        return copy

    def restore(self, copy: sqlite3.Connection) -> None:
        """Put the SQLite database back as it was when ``copy`` was taken."""
        raw = self.engine.raw_connection()
        try:
            copy.backup(raw.driver_connection)  # type: ignore[arg-type]
        finally:
            raw.close()

    def challenge(self, decision_id: str, reason: str, point: tuple[str, int] | None) -> str:
        """The person says a decision (or one piece of information it used) is wrong."""
        with session_scope(self.engine) as session:
            opened = open_challenge(
                session,
                self.vault,
                self.actor,
                decision_id=decision_id,
                reason=reason,
                data_point=point,
            )
            return opened.id


def build_world(engine: Engine, vault: Vault, *, name: str = "Sam Taylor") -> World:
    """Seed one person (information and a housing story) and one registered department."""
    by = "citizen:seed"
    with session_scope(engine) as session:
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, "sam@example.org", citizen_id=citizen.id)
        record_data_point(session, vault, citizen.id, "identity.name", name, recorded_by=by)
        record_data_point(session, vault, citizen.id, "contact.address", ADDRESS, recorded_by=by)
        record_data_point(
            session, vault, citizen.id, "money.income_monthly", 125_050, recorded_by=by
        )
        record_story_section(
            session, vault, citizen.id, "housing", "I sleep on a sofa.", recorded_by=by
        )
        department = register_department(session, vault, registration(new_key("ES256")))
        ids = (citizen.id, account.id, department.department.id)
    return World(engine, vault, *ids)


def seed_challenges(world: World, decisions: int) -> None:
    """Give the world ``decisions`` decisions, each challenged, for the department to answer.

    Each decision is challenged as a whole; the first is also challenged on every piece of
    information it used (a piece can be challenged only once at a time), so the department
    has both kinds waiting: one needs a corrected value, the other only a reason.
    """
    grant_id = world.give_grant(max_fetches=decisions + 1)
    for n in range(decisions):
        decision_id = world.decide(grant_id, title=f"Emergency housing {n}")
        world.decision_ids.append(decision_id)
        world.challenge_ids.append(world.challenge(decision_id, "This is not right.", None))
    for key in SHARED:
        point = (key, 1)
        world.challenge_ids.append(world.challenge(world.decision_ids[0], "It changed.", point))


@dataclass
class _Issued:
    token: str
    minted: float  # the app clock's time, in seconds
    uses: int = 0


class DPoPAuth:
    """Valid, fresh credentials for every API call, as a department's software makes them.

    A grant's token for the person's routes, a client credentials token (scope
    ``challenges``) for ``/challenges``. Tokens live five minutes and a grant allows a fixed
    number of fetches, so a new grant and token are minted before either runs out. Each
    request gets its own proof, for its own method and URL, dated by the app's clock.
    """

    def __init__(self, world: World, base_url: str) -> None:
        self.world = world
        self.base_url = base_url.rstrip("/")
        self._issued: dict[str, _Issued] = {}

    def forget(self) -> None:
        """Drop the tokens in hand (after the database was put back, they are unknown)."""
        self._issued.clear()

    def kind_for(self, path: str) -> str:
        """Which token a path needs: ``department`` for challenges, else ``grant``."""
        return "department" if path.startswith("/api/v1/challenges") else "grant"

    def token_for(self, path: str) -> str:
        """A token for this path with life (and fetches) left; mint a new one if not."""
        kind = self.kind_for(path)
        now = self.world.vault.clock().timestamp()
        issued = self._issued.get(kind)
        if (
            issued is None
            or now - issued.minted > ACCESS_TOKEN_LIFETIME.total_seconds() - TOKEN_MARGIN
            or issued.uses >= MAX_FETCHES - FETCH_MARGIN
        ):
            if kind == "department":
                value = self.world.token(None, "challenges")
            else:
                value = self.world.token(self.world.give_grant())
            issued = self._issued[kind] = _Issued(value, now)
        issued.uses += 1
        return issued.token

    def proof(self, method: str, path: str, token: str | None) -> str:
        """A fresh DPoP proof for one request (bound to ``token`` if there is one)."""
        iat = int(self.world.vault.clock().timestamp())
        return make_proof(
            self.world.dpop_key,
            method.upper(),
            self.base_url + path,
            access_token=token,
            iat=iat,
        )

    def headers(self, method: str, path: str) -> dict[str, str]:
        """``Authorization`` and ``DPoP`` headers for one request."""
        token = self.token_for(path)
        return {"Authorization": f"DPoP {token}", "DPoP": self.proof(method, path, token)}


# --- Junk for parsers and forms -------------------------------------------------------

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
)
JSON_JUNK = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
"""Any JSON-like value: nested lists and objects of odd scalars (NaN and huge numbers too)."""

ODD_TEXT = st.sampled_from(
    (
        "",
        " ",
        "0",
        "-1",
        "1e309",
        "99999999999999999999999",
        "2026-02-30",
        "on",
        "yes",
        "../../etc/passwd",
        "<script>alert(1)</script>",
        "'; DROP TABLE citizen; --",
        "{{7*7}}",
        "%00",
        "\x00",
        "a" * 5000,
        "contact.address",
    )
)
FIELD_TEXT = st.one_of(st.text(max_size=60), ODD_TEXT)
"""One form field's value: any text, odd numbers and dates, markup, NUL, very long."""


def junk_form(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A form with some of ``names`` (and made-up names) filled with junk, some repeated."""
    made_up = st.text(min_size=1, max_size=10)
    name = st.one_of(st.sampled_from(names), made_up) if names else made_up
    value = st.one_of(FIELD_TEXT, st.lists(FIELD_TEXT, min_size=2, max_size=3))
    return st.dictionaries(name, value, max_size=8)


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _json_b64(value: Any) -> str:
    return _b64url(json.dumps(value).encode("utf-8", "surrogatepass"))


def jws_junk(key: Key, header: dict[str, Any], claims: dict[str, Any]) -> st.SearchStrategy[str]:
    """Compact JWS junk around a real ``header`` and ``claims`` signed by ``key``.

    Raw text, three parts of junk, or a signed token (so the checks after the signature are
    reached) with any member of the header or claims replaced by junk, left out, or added.
    """

    def signed(changes: tuple[dict[str, Any], dict[str, Any]], drop: list[str]) -> str:
        head = {**header, **changes[0]}
        body = {**claims, **changes[1]}
        for name in drop:
            head.pop(name, None)
            body.pop(name, None)
        alg = head.get("alg") if head.get("alg") in ("ES256", "PS256", "EdDSA") else "ES256"
        try:
            return sign(head, body, key, signing_alg=str(alg))
        except (TypeError, ValueError, KeyError):
            return _json_b64(head) + "." + _json_b64(body) + "."

    names = sorted({*header, *claims, "typ", "kid", "crit", "b64", "x5c", "nonce", "exp"})
    change = st.dictionaries(
        st.one_of(st.sampled_from(names), st.text(max_size=8)), JSON_JUNK, max_size=3
    )
    return st.one_of(
        st.text(max_size=200),
        st.builds(
            lambda a, b, c: f"{a}.{b}.{c}",
            st.one_of(st.text(max_size=40), JSON_JUNK.map(_json_b64)),
            st.one_of(st.text(max_size=40), JSON_JUNK.map(_json_b64)),
            st.one_of(st.text(max_size=40), st.binary(max_size=64).map(_b64url)),
        ),
        st.builds(signed, st.tuples(change, change), st.lists(st.sampled_from(names), max_size=2)),
    )


def problem_in(response: Any) -> str | None:
    """Why an answer to junk is wrong (a server error or a stack trace), else None."""
    if response.status_code >= 500:
        return f"status {response.status_code}"
    body = response.get_data(as_text=True)
    if STACK_TRACE.search(body):
        return "a stack trace in the body"
    return None


# --- atheris: the DPoP parser under libFuzzer (run in a process of its own) -------------

ATHERIS_URL = "https://tellonce.example/api/v1/data"
_PROOF_MEMBERS = ("typ", "alg", "jwk", "kid", "crit", "jti", "htm", "htu", "iat", "ath", "nonce")


def atheris_dpop(argv: list[str], database: str) -> None:
    """Fuzz ``connectors.dpop.check_proof`` with atheris; libFuzzer options come in ``argv``.

    Each input is either raw proof text or a proof signed with a real key in which one header
    member or claim is replaced by the input (read as JSON if it is JSON). Only a plain
    refusal (InvalidDPoPProof) may come out; anything else is a crash libFuzzer reports.
    Call it after importing ``connectors.dpop`` under ``atheris.instrument_imports()``.
    """
    import sys

    import atheris  # installed with the test extras (pyproject.toml)

    from connectors.dpop import check_proof
    from connectors.errors import InvalidDPoPProof
    from tests.connectors.dpop_client import public_jwk
    from vault.db import make_engine
    from vault.migrate import upgrade

    engine = make_engine(f"sqlite:///{database}", synchronous="OFF")
    upgrade(engine)
    key = new_key("ES256")
    now = datetime.now(UTC)

    def one_input(data: bytes) -> None:
        provider = atheris.FuzzedDataProvider(data)
        if provider.ConsumeBool():
            proof = provider.ConsumeUnicodeNoSurrogates(400)
        else:
            header: dict[str, Any] = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(key)}
            claims: dict[str, Any] = {
                "jti": "fuzz",
                "htm": "GET",
                "htu": ATHERIS_URL,
                "iat": int(now.timestamp()),
            }
            name = provider.PickValueInList(list(_PROOF_MEMBERS))
            text = provider.ConsumeUnicodeNoSurrogates(200)
            try:
                value: Any = json.loads(text)
            except ValueError:
                value = text
            (header if name in ("typ", "alg", "jwk", "kid", "crit") else claims)[name] = value
            proof = sign(header, claims, key, signing_alg="ES256")
        with session_scope(engine) as session, contextlib.suppress(InvalidDPoPProof):
            check_proof(session, [proof], method="GET", url=ATHERIS_URL, now=now)

    atheris.Setup([sys.argv[0], *argv], one_input)
    atheris.Fuzz()
