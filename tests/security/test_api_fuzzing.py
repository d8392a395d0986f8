"""Schemathesis against the department API's own OpenAPI document, through WSGI.

Every operation in ``/api/v1/openapi.json`` gets generated requests, valid and invalid
(schemathesis' examples, coverage and fuzzing phases), with real credentials: a live token
and a fresh DPoP proof for each request. Every answer must be no server error, have the
documented shape, refuse invalid input, and need authentication. A second test follows the
links between operations (a decision, then its review; the open challenges, then an answer).

The fuzzing runs on SQLite only: it is about the HTTP layer, the same on both databases,
and its 10,000 cases already take about two minutes of one core (most of it schemathesis
generating them). What only PostgreSQL refuses, a NUL character in text, has its own tests
below, on both databases.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, reject, settings
from requests.exceptions import InvalidHeader
from requests.utils import check_header_validity
from schemathesis.checks import CheckFunction, not_a_server_error
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
)

from tests.security.fuzz_support import DPoPAuth, World, build_world, seed_challenges
from vault.db import make_engine
from vault.keys import LocalKeyFileProvider
from vault.services import Vault

CHECKS: list[CheckFunction] = [
    not_a_server_error,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]
MIN_CASES = 10_000
# Fuzzing examples per operation, on top of the examples and coverage phases. Generating a
# decision body costs several times more than a path and a header, so the cheap operations
# get more; every operation still gets hundreds.
EXAMPLES = {
    "GET /api/v1/data": 2_200,
    "POST /api/v1/decisions": 700,
    "POST /api/v1/decisions/{decision_id}/reviews": 900,
    "GET /api/v1/challenges": 1_000,
    "POST /api/v1/challenges/{challenge_id}/answer": 1_800,
    "POST /api/v1/grants/{grant_id}/deletion": 3_200,
}
WORKFLOWS = 30  # stateful scenarios, each up to STEPS calls
STEPS = 8


@dataclass
class Fuzzing:
    """The app under test, its seeded world (and a copy of it), credentials, what was sent."""

    app: Any
    world: World
    seeded: sqlite3.Connection
    auth: DPoPAuth
    sent: Counter[str]


def sendable(headers: dict[str, Any] | None) -> bool:
    """Whether every header can go on the wire: HTTP drops a value's leading whitespace.

    Schemathesis' boundary cases can start a header with spaces, which ``requests`` refuses
    to send: no server could ever receive them.
    """
    try:
        for name, value in (headers or {}).items():
            if isinstance(value, str):
                value.encode("latin-1")
                check_header_validity((name, value))
    except (InvalidHeader, UnicodeEncodeError):
        return False
    return True


def prove(fuzzing: Fuzzing, case: Any) -> bool:
    """Give the case a fresh DPoP proof for its final method and URL; False if unsendable.

    The proof is made just before sending (after links fill in path parameters), bound to
    the token the auth hook put in ``Authorization``.
    """
    if not sendable(case.headers):
        return False
    authorization = (case.headers or {}).get("Authorization")
    token = authorization.partition(" ")[2] if isinstance(authorization, str) else ""
    proof = fuzzing.auth.proof(case.method, case.formatted_path, token or None)
    case.headers = {**(case.headers or {}), "DPoP": proof}
    fuzzing.sent[case.operation.label] += 1
    return True


@pytest.fixture(scope="module")
def fuzzing(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path, key_file: Path
) -> Iterator[Fuzzing]:
    """The app on a fresh SQLite database, with a person, a department and open challenges."""
    from web import create_app

    folder = tmp_path_factory.mktemp("api-fuzz")
    shutil.copyfile(sqlite_template, folder / "fuzz.db")
    engine = make_engine(f"sqlite:///{folder / 'fuzz.db'}", synchronous="OFF")
    keys = LocalKeyFileProvider(key_file)
    app = create_app(
        {
            "TESTING": True,
            "ENGINE": engine,
            "KEY_PROVIDER": keys,
            "LEDGER_ORIGIN": "test.tellonce/ledger",
            "MAIL_DIR": str(folder / "mail"),
            "SECRET_KEY": "fuzz-secret-key",
            # Thousands of calls a minute from one address and one token: with the limits
            # on, most answers would be 429. The limits have tests of their own.
            "RATELIMIT_ENABLED": False,
        }
    )
    world = build_world(engine, Vault(keys=keys, ledger_origin="test.tellonce/ledger"))
    seed_challenges(world, 4)
    seeded = world.snapshot()
    yield Fuzzing(app, world, seeded, DPoPAuth(world, app.config["BASE_URL"]), Counter())
    seeded.close()
    engine.dispose()


def load_schema(fuzzing: Fuzzing) -> Any:
    """The API's OpenAPI document, served by the app, with our generation settings."""
    config = schemathesis.Config.from_dict(
        {
            "seed": 8,  # the same cases every run: a failure in CI reproduces locally
            "generation": {
                "deterministic": True,
                "database": "none",
                # The auth hook always sends real credentials; ignored_auth tries without.
                "with-security-parameters": False,
            },
            "phases": {"stateful": {"max-steps": STEPS}},
            "operations": [
                {"include-name": name, "generation": {"max-examples": count}}
                for name, count in EXAMPLES.items()
            ],
        }
    )
    loaded = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzzing.app, config=config)
    auth = fuzzing.auth

    @loaded.auth(refresh_interval=None)  # our hook decides when a token must be replaced
    class Credentials:
        """A live token for the operation: the grant's, or the department's for challenges."""

        def get(self, case: Any, ctx: Any) -> str:
            return auth.token_for(case.operation.path)

        def set(self, case: Any, data: str, ctx: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"DPoP {data}"}

    return loaded


@pytest.fixture(scope="module")
def api_schema(fuzzing: Fuzzing) -> Any:
    return load_schema(fuzzing)


@pytest.fixture
def at_least_ten_thousand(
    fuzzing: Fuzzing, record_property: Callable[[str, object], None]
) -> Iterator[None]:
    """After every operation has run, say how many cases were sent, and check the number."""
    before = sum(fuzzing.sent.values())
    yield
    sent = sum(fuzzing.sent.values()) - before
    print(f"\nschemathesis sent {sent:,} cases: {dict(fuzzing.sent)}")
    record_property("schemathesis_cases", sent)
    assert sent >= MIN_CASES, f"only {sent:,} generated cases were sent"


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # Schemathesis 4.32 renames the running test through ``node._nodeid``, which pytest 9.2
    # no longer has (it is ``_id`` now): give it the attribute it reads and writes.
    request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_contract(
    case: Any, fuzzing: Fuzzing, at_least_ten_thousand: None
) -> None:
    if prove(fuzzing, case):
        case.call_and_validate(checks=CHECKS)


def test_linked_calls_keep_their_contract(fuzzing: Fuzzing) -> None:
    """Decisions then their reviews, challenges then their answers, as links say."""
    loaded = load_schema(fuzzing)
    before = sum(fuzzing.sent.values())
    answered: Counter[tuple[str, int]] = Counter()

    class Workflow(loaded.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Every scenario starts from the same database: what a step's links find must
            # not depend on what earlier scenarios did, or Hypothesis cannot replay it.
            fuzzing.world.restore(fuzzing.seeded)
            fuzzing.auth.forget()

        def before_call(self, case: Any) -> None:
            if not prove(fuzzing, case):
                reject()  # no HTTP client could send it

        def after_call(self, response: Any, case: Any) -> None:
            super().after_call(response, case)
            answered[(case.operation.label, response.status_code)] += 1

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs or None)

    Workflow.run(
        settings=settings(
            max_examples=WORKFLOWS,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
    steps = sum(fuzzing.sent.values()) - before
    print(f"\nthe workflows made {steps:,} calls: {dict(answered)}")
    assert steps >= WORKFLOWS
    # The links were followed: a decision listed with a challenge was reviewed, and a
    # challenge listed was answered, with ids only an earlier answer gave.
    assert answered[("POST /api/v1/decisions/{decision_id}/reviews", 201)] > 0, answered
    assert answered[("POST /api/v1/challenges/{challenge_id}/answer", 200)] > 0, answered


NUL_CASES = {
    "a decision's algorithm": ("POST", "/api/v1/decisions", "algorithm.name"),
    "a decision's officer": ("POST", "/api/v1/decisions", "accountable_officer.name"),
    "who records a decision": ("POST", "/api/v1/decisions", "Acting-Officer"),
    "who fetches": ("GET", "/api/v1/data", "Acting-Officer"),
    "the case fetched for": ("GET", "/api/v1/data", "Case-Reference"),
    "a reviewer": ("POST", "/api/v1/decisions/{decision}/reviews", "reviewer.name"),
    "an answer's reasons": ("POST", "/api/v1/challenges/{challenge}/answer", "reasons"),
    "who answers": ("POST", "/api/v1/challenges/{challenge}/answer", "Acting-Officer"),
}
GOOD_BODIES: dict[str, dict[str, Any]] = {
    "/api/v1/decisions": {
        "case_reference": "HOU-2291",
        "title": "Emergency housing",
        "outcome": "Priority need accepted",
        "reasons": "No safe place to stay.",
        "automated": True,
        "algorithm": {"name": "Screener", "version": "1"},
        "accountable_officer": {"name": "Priya Shah", "role": "Head of Housing Options"},
        "data_points_used": [],
    },
    "/api/v1/decisions/{decision}/reviews": {
        "kind": "upheld",
        "reviewer": {"name": "A. Reviewer", "role": "Senior Housing Officer"},
        "reasons": "Looked again.",
    },
    "/api/v1/challenges/{challenge}/answer": {"outcome": "upheld", "reasons": "Checked."},
}


@pytest.mark.parametrize("case", sorted(NUL_CASES))
def test_a_nul_character_is_refused_plainly(app: Any, db: Any, vault: Vault, case: str) -> None:
    """PostgreSQL cannot store a NUL: text holding one is refused (422), not a 503."""
    method, template, name = NUL_CASES[case]
    world = build_world(db.engine, vault)
    seed_challenges(world, 1)
    auth = DPoPAuth(world, app.config["BASE_URL"])
    path = template.format(decision=world.decision_ids[0], challenge=world.challenge_ids[0])
    body: dict[str, Any] = json.loads(json.dumps(GOOD_BODIES.get(template, {})))
    headers = {"Acting-Officer": "A. Officer", "Case-Reference": "HOU-2291"}
    if name in headers:
        headers[name] = "A\x00B"
    else:
        parent, _, leaf = name.rpartition(".")
        (body[parent] if parent else body)[leaf] = "A\x00B"
    answer = fuzzing_call(app, auth, method, path, body if method == "POST" else None, headers)
    assert answer.status_code == 422, answer.get_data(as_text=True)
    assert "NUL" in answer.get_json()["message"]


def fuzzing_call(
    app: Any, auth: DPoPAuth, method: str, path: str, body: Any, headers: dict[str, str]
) -> Any:
    """One API call with live credentials."""
    return app.test_client().open(
        path, method=method, json=body, headers={**headers, **auth.headers(method, path)}
    )
