"""Parsers under fuzzing: junk in, a plain refusal out, never a crash, a 500 or a trace.

Hypothesis feeds junk to every parser that reads what strangers send: DPoP proofs, client
assertions (through PAR and the token endpoint), authorization details, the ledger's proof
and entry queries, and every form a signed-in person (or anyone) can post. An atheris
harness fuzzes the DPoP parser too, in a process of its own (libFuzzer exits when done).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import select
from werkzeug.routing import Rule

from connectors import dpop
from connectors.errors import InvalidAuthorizationDetails, InvalidDPoPProof
from connectors.models import Department
from connectors.rar import parse_authorization_details, read_data_request
from consent.models import Grant
from tests.connectors.dpop_client import new_key, public_jwk
from tests.oauth.harness import ASSERTION_TYPE, HOUSING_DETAILS, DepartmentSide
from tests.security.fuzz_support import (
    FIELD_TEXT,
    JSON_JUNK,
    World,
    build_world,
    junk_form,
    jws_junk,
    problem_in,
    seed_challenges,
)
from tests.web.citizen.conftest import csrf_of, sign_in
from vault.clock import FrozenClock
from vault.models import Citizen
from vault.services import Vault

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
URL = "https://tellonce.example/api/v1/data"
TOKEN = "an-access-token"
PROOF_KEY = new_key("ES256")


@pytest.fixture
def clock() -> FrozenClock:
    """The real time, frozen: client assertions are checked against the real clock."""
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def fuzz_app(engine: Any, key_provider: Any, clock: FrozenClock, tmp_path: Path) -> Any:
    """The app without rate limits: junk must reach the parsers, not stop at a 429."""
    from web import create_app

    return create_app(
        {
            "TESTING": True,
            "ENGINE": engine,
            "KEY_PROVIDER": key_provider,
            "CLOCK": clock,
            "LEDGER_ORIGIN": "test.tellonce/ledger",
            "MAIL_DIR": str(tmp_path / "mail"),
            "SECRET_KEY": "test-secret-key",
            "RATELIMIT_ENABLED": False,
        }
    )


def no_crash(response: Any, what: str) -> None:
    """Junk gets a refusal (or, by luck, an answer): never a 500 or a stack trace."""
    problem = problem_in(response)
    assert problem is None, f"{what}: {problem}\n{response.get_data(as_text=True)[:500]}"


# --- DPoP proofs --------------------------------------------------------------------------


def proof_strategy(now: datetime) -> st.SearchStrategy[list[str]]:
    """Zero, one or two DPoP header values, mostly one, made of junk around a real proof."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": public_jwk(PROOF_KEY)}
    claims = {
        "jti": "a-unique-id",
        "htm": "GET",
        "htu": URL,
        "iat": int(now.timestamp()),
        "ath": dpop.access_token_hash(TOKEN),
    }
    one = jws_junk(PROOF_KEY, header, claims)
    return st.one_of(st.lists(one, min_size=1, max_size=1), st.lists(one, max_size=2))


def test_dpop_proofs_refuse_junk_plainly(db: Any, vault: Vault) -> None:
    now = vault.clock()

    @FUZZ
    @given(values=proof_strategy(now), bound=st.booleans())
    def check(values: list[str], bound: bool) -> None:
        with db.tx() as session:
            try:
                dpop.check_proof(
                    session,
                    values,
                    method="GET",
                    url=URL,
                    now=now,
                    access_token=TOKEN if bound else None,
                )
            except InvalidDPoPProof as refused:
                assert refused.message and "Traceback" not in refused.message

    check()


# --- Client assertions, through PAR and the token endpoint ----------------------------------


def assertion_strategy(side: DepartmentSide) -> st.SearchStrategy[str]:
    """Junk around a real client assertion signed with the department's registered key."""
    now = int(datetime.now(UTC).timestamp())
    header = {"alg": "ES256", "kid": side.key.thumbprint()}
    claims = {
        "iss": side.client_id,
        "sub": side.client_id,
        "aud": side.base_url,
        "jti": "assertion-id",
        "iat": now,
        "exp": now + 60,
    }
    return jws_junk(side.key, header, claims)


@pytest.fixture
def side(fuzz_app: Any, db: Any, vault: Vault) -> DepartmentSide:
    """A registered department's software, talking to the app without rate limits."""
    from tests.oauth.conftest import register

    return register(fuzz_app, db, vault)


def test_par_and_token_refuse_junk_client_assertions(side: DepartmentSide) -> None:
    @FUZZ
    @given(
        assertion=assertion_strategy(side),
        endpoint=st.sampled_from(["/oauth/par", "/oauth/token"]),
        assertion_type=st.one_of(st.just(ASSERTION_TYPE), FIELD_TEXT),
        client_id=st.one_of(st.just(side.client_id), FIELD_TEXT),
    )
    def check(assertion: str, endpoint: str, assertion_type: str, client_id: str) -> None:
        form = {
            "client_id": client_id,
            "client_assertion_type": assertion_type,
            "client_assertion": assertion,
        }
        if endpoint == "/oauth/par":
            form |= {
                "response_type": "code",
                "redirect_uri": "https://housing.anytown.example/callback",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
                "authorization_details": json.dumps([HOUSING_DETAILS]),
            }
        else:
            form |= {"grant_type": "client_credentials", "scope": "challenges"}
        proof = side.proof("POST", endpoint)
        answer = side.client.post(endpoint, data=form, headers={"DPoP": proof})
        no_crash(answer, f"POST {endpoint}")
        assert answer.status_code in (200, 201, 400, 401), answer.get_data(as_text=True)

    check()


# --- Authorization details ------------------------------------------------------------------

DETAILS_FIELDS = sorted(HOUSING_DETAILS)


def details_strategy() -> st.SearchStrategy[Any]:
    """Junk authorization details: text, any JSON, and the real object with fields spoilt."""
    spoilt = st.builds(
        lambda changes, drop: [
            {k: v for k, v in {**HOUSING_DETAILS, **changes}.items() if k not in drop}
        ],
        st.dictionaries(
            st.one_of(st.sampled_from(DETAILS_FIELDS), st.text(max_size=8)), JSON_JUNK, max_size=3
        ),
        st.lists(st.sampled_from(DETAILS_FIELDS), max_size=2),
    )
    as_json = st.one_of(JSON_JUNK, spoilt).map(lambda value: json.dumps(value))
    return st.one_of(st.none(), st.text(max_size=100), as_json, spoilt, JSON_JUNK)


HOUSING = Department(
    id="housing",
    name="Anytown housing",
    client_metadata={},
    purposes=[
        {
            "code": "emergency_housing",
            "description": "To find you somewhere safe to stay.",
            "data_points": ["identity.name", "contact.address", "money.income_monthly"],
            "story_topics": ["housing"],
        }
    ],
    officer={},
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)


@FUZZ
@given(raw=details_strategy())
def test_authorization_details_refuse_junk_plainly(raw: Any) -> None:
    try:
        parsed = parse_authorization_details(raw)
        read_data_request(parsed, HOUSING)
    except InvalidAuthorizationDetails as refused:
        assert refused.message and "Traceback" not in refused.message


def test_par_refuses_junk_authorization_details(side: DepartmentSide) -> None:
    @settings(FUZZ, max_examples=100)
    @given(raw=details_strategy())
    def check(raw: Any) -> None:
        details = raw if isinstance(raw, str) else json.dumps(raw)
        answer = side.par(authorization_details=details)
        no_crash(answer, "POST /oauth/par")
        assert answer.status_code in (201, 400), answer.get_data(as_text=True)

    check()


# --- The ledger's queries -------------------------------------------------------------------

NUMBER_TEXT = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.integers(min_value=0, max_value=12).map(str),
    FIELD_TEXT,
)
LEDGER_QUERIES = {
    "/ledger/entries": ["start", "end"],
    "/ledger/proof/inclusion": ["index", "tree_size"],
    "/ledger/proof/consistency": ["from", "to"],
}


def test_ledger_queries_refuse_junk_plainly(fuzz_app: Any, db: Any, vault: Vault) -> None:
    build_world(db.engine, vault)  # a few leaves, so real sizes and indexes exist
    client = fuzz_app.test_client()

    @FUZZ
    @given(data=st.data(), path=st.sampled_from(sorted(LEDGER_QUERIES)))
    def check(data: st.DataObject, path: str) -> None:
        names = LEDGER_QUERIES[path]
        query = data.draw(
            st.lists(
                st.tuples(st.one_of(st.sampled_from(names), st.text(max_size=6)), NUMBER_TEXT),
                max_size=4,
            )
        )
        answer = client.get(path, query_string=query)
        no_crash(answer, f"GET {path}")
        assert answer.status_code in (200, 400, 404), answer.get_data(as_text=True)
        assert answer.is_json

    check()


# --- Every form -----------------------------------------------------------------------------

INPUT_NAME = re.compile(r'<(?:input|textarea|select|button)[^>]*\sname="([^"]+)"')
SESSION_ENDERS = {"auth.sign_out_page", "citizen.delete_account"}


@dataclass
class FormFuzzer:
    """One browser (signed in as a person, or anonymous) posting junk to every POST route."""

    app: Any
    db: Any
    vault: Vault
    signed_in: bool
    client: Any = None
    world: World | None = None
    csrf: str = ""
    stale: bool = True
    names: dict[str, list[str]] = field(default_factory=dict)

    def ready(self) -> None:
        """Signed in (as a person who still exists) with a fresh CSRF token, if needed."""
        if not self.stale:
            return
        self.client = self.client or self.app.test_client()
        if self.signed_in:
            if self.world is None or erased(self.db, self.world.citizen_id):
                self.world = build_world(self.db.engine, self.vault)
                seed_challenges(self.world, 1)
            sign_in(self.client, self.db, self.vault, self.world.account_id)
            page = self.client.get("/story/housing/write")
        else:
            page = self.client.get("/sign-in")
        self.csrf = csrf_of(page.get_data(as_text=True))
        self.stale = False

    def values(self) -> dict[str, str]:
        """Real values for the routes' path parameters, where the world has one."""
        world = self.world
        real = {"key": "contact.address", "topic": "housing", "code": "cy"}
        if world is not None and world.decision_ids:
            real |= {"decision_id": world.decision_ids[0], "challenge_id": world.challenge_ids[0]}
            with self.db.tx() as session:
                grant = session.exec(
                    select(Grant).where(Grant.citizen_id == world.citizen_id)
                ).first()
            if grant is not None:
                real["grant_id"] = grant.id
        return real

    def field_names(self, rule: Rule, path: str) -> list[str]:
        """The names of the fields the route's page shows (read once), for junk to fill."""
        if rule.rule not in self.names:
            found: set[str] = set()
            if "GET" in (rule.methods or ()):
                page = self.client.get(path)
                found = set(INPUT_NAME.findall(page.get_data(as_text=True)))
            self.names[rule.rule] = sorted(found - {"csrf_token"}) or ["value"]
        return self.names[rule.rule]

    def post(self, rule: Rule, values: dict[str, str], form: dict[str, Any] | None) -> None:
        """Post junk (with a valid CSRF token) to one route; check the answer."""
        self.ready()
        path = fill(rule, values)
        junk = form if form is not None else dict.fromkeys(self.field_names(rule, path), "<b>")
        answer = self.client.post(path, data={"csrf_token": self.csrf, **junk})
        no_crash(answer, f"POST {path} as {'a person' if self.signed_in else 'anyone'}")
        if rule.endpoint in SESSION_ENDERS or answer.status_code == 400:
            self.stale = True  # signed out, erased, or the token refused: start again


def erased(db: Any, citizen_id: str) -> bool:
    """Whether a person's account was deleted (by junk that ticked the box)."""
    with db.tx() as session:
        citizen = session.get(Citizen, citizen_id)
        return citizen is None or citizen.status == "erased"


def post_rules(app: Any) -> list[Rule]:
    """Every route that takes a POST, from the URL map: a new one is fuzzed without a list."""
    rules = [rule for rule in app.url_map.iter_rules() if "POST" in (rule.methods or ())]
    return sorted(rules, key=lambda rule: rule.rule)


def fill(rule: Rule, values: dict[str, str]) -> str:
    """The rule's path with each argument from ``values`` (or a made-up id)."""
    path = rule.rule
    for name in rule.arguments:
        value = values.get(name, "not-a-real-id")
        path = re.sub(rf"<(?:[a-z]+:)?{name}>", quote(value, safe=""), path)
    return path


@pytest.mark.parametrize("signed_in", [True, False], ids=["a person", "anyone"])
def test_every_form_refuses_junk_plainly(
    fuzz_app: Any, db: Any, vault: Vault, signed_in: bool
) -> None:
    fuzzer = FormFuzzer(fuzz_app, db, vault, signed_in)
    fuzzer.ready()
    rules = post_rules(fuzz_app)
    assert len(rules) > 30  # the map was really read
    for rule in rules:  # every route at least once, with its own fields filled
        fuzzer.post(rule, fuzzer.values(), None)

    @settings(FUZZ, max_examples=300 if signed_in else 150)
    @given(data=st.data(), rule=st.sampled_from(rules))
    def check(data: st.DataObject, rule: Rule) -> None:
        fuzzer.ready()
        real = fuzzer.values()
        values = {
            name: data.draw(st.one_of(st.sampled_from([real.get(name, "x")]), FIELD_TEXT))
            for name in rule.arguments
        }
        names = fuzzer.field_names(rule, fill(rule, real))
        fuzzer.post(rule, values, data.draw(junk_form(names)))

    check()


@pytest.mark.parametrize(
    "path",
    ["/decisions/%00/wrong", "/challenges/%00", "/sharing/%00/stop", "/information/%00/change"],
)
def test_a_nul_in_a_path_is_not_found(fuzz_app: Any, db: Any, vault: Vault, path: str) -> None:
    """PostgreSQL cannot even look up an id holding a NUL: "not found", not a 503."""
    world = build_world(db.engine, vault)
    browser = fuzz_app.test_client()
    sign_in(browser, db, vault, world.account_id)
    answer = browser.get(path)
    assert answer.status_code == 404, answer.get_data(as_text=True)[:300]


# --- atheris --------------------------------------------------------------------------------


ATHERIS_MAIN = """
import sys
import atheris
with atheris.instrument_imports(include=["connectors"]):
    import connectors.dpop
from tests.security.fuzz_support import atheris_dpop
atheris_dpop(sys.argv[1:-1], sys.argv[-1])
"""


def test_atheris_finds_no_crash_in_the_dpop_parser(tmp_path: Path) -> None:
    """libFuzzer, coverage-guided, over the DPoP parser for a fixed number of runs."""
    pytest.importorskip("atheris")
    ran = subprocess.run(
        [
            sys.executable,
            "-c",
            ATHERIS_MAIN,
            "-runs=10000",
            "-max_len=600",
            "-seed=8",
            str(tmp_path / "atheris.db"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    assert "Done 10000 runs" in ran.stderr, ran.stderr[-3000:]
