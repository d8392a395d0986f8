"""Brute force and abuse: a thousand wrong tries get one same answer, then a short back-off.

Each test makes 1,000 wrong attempts from one address, as an attacker would, and checks that
the wrong answers are all the same (nothing to learn from them) until the limit; that every
try after it gets 429 with a Retry-After; that once those seconds pass (and not a second
before) the right credentials work again from the same address, so it is a back-off and
never a lock-out; and that another address, or another department, is not held back.

Limits count time with ``time.time()`` in the ``limits`` library's memory storage (and
Retry-After is worked out in ``web.limits``); ``LimiterTime`` stands in for both.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import limits.storage.memory
import pytest
from limits import parse_many
from sqlalchemy.engine import Engine

import web.limits
from tests.connectors.dpop_client import new_key
from tests.oauth.conftest import clock as clock
from tests.oauth.conftest import department as department
from tests.oauth.conftest import other_department as other_department
from tests.oauth.conftest import sam as sam
from tests.oauth.harness import DepartmentSide, get_code, whole_flow
from tests.web.auth.conftest import Auth, csrf_token
from tests.web.auth.softauthn import SoftPasskey
from tests.web.citizen.conftest import Person, sign_in
from tests.web.citizen.conftest import person as person
from vault.db import make_engine
from web import create_app
from web.mail import read_outbox

ATTEMPTS = 1_000
DAY = 24 * 3600
ATTACKER, NEIGHBOUR = "203.0.113.66", "198.51.100.7"
# What differs between two renderings of one page: form tokens and the CSP nonce.
PER_RENDERING = re.compile(r'((?:csrf_token"[^>]*?value|data-csrf|nonce)=")[^"]*"')


class LimiterTime:
    """A clock for the rate limits only, moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def limiter_time(monkeypatch: pytest.MonkeyPatch) -> LimiterTime:
    fake = LimiterTime()
    monkeypatch.setattr(limits.storage.memory, "time", fake)
    monkeypatch.setattr(web.limits, "time", fake)
    return fake


@dataclass(frozen=True)
class Answer:
    """What a caller can see of one answer."""

    status: int
    body: str
    location: str | None
    retry_after: str | None


def seen(response: Any) -> Answer:
    body = PER_RENDERING.sub(r'\1"', response.get_data(as_text=True))
    headers = response.headers
    return Answer(response.status_code, body, headers.get("Location"), headers.get("Retry-After"))


def at(app: Any, address: str) -> Any:
    """A test client whose requests come from ``address``."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def allowance(rule: str) -> int:
    """How many tries a rule lets through in one burst (its smallest count)."""
    return min(item.amount for item in parse_many(rule))


def backs_off(answers: list[Answer], allowed: int, wrong_status: int, frozen: bool = True) -> int:
    """Check the burst's shape; return the last Retry-After in seconds.

    With the limits' clock ``frozen`` (memory storage) the wait only ever grows; with Redis
    real time passes, so the wait counts down between tries.
    """
    wrong, limited = answers[:allowed], answers[allowed:]
    assert {a.status for a in wrong} == {wrong_status}, wrong[0]
    assert len(set(wrong)) == 1, "every wrong try gets the very same answer"
    assert {a.status for a in limited} == {429}
    assert len({(a.body, a.location) for a in limited}) == 1, "and so does every limited one"
    waits = [int(a.retry_after or 0) for a in limited]
    assert waits == sorted(waits) or not frozen, "hammering never shortens the wait"
    assert 0 < waits[-1] <= DAY, "a back-off, not a lock-out"
    return waits[-1]


def wait_out(limiter_time: LimiterTime, seconds: int, right: Any, works: int) -> None:
    """One second short of Retry-After the right credentials are still held; then they work."""
    limiter_time.advance(seconds - 1)
    assert right().status_code == 429
    limiter_time.advance(1)
    answer = right()
    assert answer.status_code == works, answer.get_data(as_text=True)


def link_guesser(client: Any) -> Callable[..., Any]:
    """Post made-up link tokens from this client (with its form token, as a browser would)."""
    csrf = csrf_token(client, "/sign-in")

    def guess(**headers: str) -> Any:
        form = {"token": secrets.token_urlsafe(32), "csrf_token": csrf}
        return client.post("/sign-in/link", data=form, headers=headers)

    return guess


# --- People: asking for links, using links, passkeys --------------------------------------------


def _ask_many(app: Any, address: str, email: str) -> tuple[Any, list[Answer]]:
    client = at(app, address)
    token = csrf_token(client, "/sign-in")
    form = {"email": email, "csrf_token": token}
    return client, [seen(client.post("/sign-in", data=form)) for _ in range(ATTEMPTS)]


def test_asking_for_links_says_nothing_about_who_has_an_account(
    app: Any, person: Person, limiter_time: LimiterTime
) -> None:
    known_client, known = _ask_many(app, ATTACKER, "sam@example.org")
    unknown_client, unknown = _ask_many(app, NEIGHBOUR, "nobody@example.org")

    assert known == unknown, "the same answers, the same limits, for both addresses"
    allowed = allowance(web.limits.PER_EMAIL_LIMITS)
    wait = backs_off(known, allowed, 303)  # links sent (to the inbox only), then 429s
    next_page = [seen(c.get(known[0].location or "")) for c in (known_client, unknown_client)]
    assert next_page[0] == next_page[1] and next_page[0].status == 200
    assert len(read_outbox(app.config["MAIL_DIR"])) == 2 * allowed, "no email for a 429"

    form = {"email": "sam@example.org", "csrf_token": csrf_token(known_client, "/sign-in")}
    wait_out(limiter_time, wait, lambda: known_client.post("/sign-in", data=form), 303)
    assert len(read_outbox(app.config["MAIL_DIR"])) == 2 * allowed + 1


def test_a_thousand_guessed_link_tokens(
    app: Any, person: Person, limiter_time: LimiterTime
) -> None:
    owner = Auth(app, at(app, NEIGHBOUR))
    owner.ask("sam@example.org")
    first = owner.token_of(owner.last_link())
    owner.ask("sam@example.org")
    second = owner.token_of(owner.last_link())
    attacker = Auth(app, at(app, ATTACKER))
    guess = link_guesser(attacker.client)

    answers = [seen(guess()) for _ in range(ATTEMPTS)]

    wait = backs_off(answers, allowance(web.limits.LINK_LIMITS), 400)
    assert owner.use(first).status_code == 303, "another address is not held back"
    wait_out(limiter_time, wait, lambda: attacker.use(second), 303)


def _add_passkey(app: Any, db: Any, vault: Any, person: Person) -> SoftPasskey:
    browser = app.test_client()
    sign_in(browser, db, vault, person.account_id)
    passkey = SoftPasskey(origin=app.config["BASE_URL"])
    headers = {"X-CSRFToken": csrf_token(browser, "/passkeys")}
    options = browser.post("/passkeys/options", json={}, headers=headers).get_json()
    added = browser.post("/passkeys/verify", json=passkey.create(options), headers=headers)
    assert added.status_code == 200, added.get_json()
    return passkey


def _passkey_sign_in(client: Any, passkey: SoftPasskey) -> Any:
    """Sign in with a passkey as the browser does: options, then the signed answer."""
    headers = {"X-CSRFToken": csrf_token(client, "/sign-in")}
    options = client.post("/sign-in/passkey/options", json={}, headers=headers)
    if options.status_code != 200:
        return options
    return client.post(
        "/sign-in/passkey/verify", json=passkey.get(options.get_json()), headers=headers
    )


def test_a_thousand_wrong_passkeys(
    app: Any, db: Any, vault: Any, person: Person, limiter_time: LimiterTime
) -> None:
    passkey = _add_passkey(app, db, vault, person)
    attacker = at(app, ATTACKER)
    headers = {"X-CSRFToken": csrf_token(attacker, "/sign-in")}
    options = attacker.post("/sign-in/passkey/options", json={}, headers=headers).get_json()
    forged = SoftPasskey(origin=app.config["BASE_URL"])  # a key nobody registered

    answers = [
        seen(attacker.post("/sign-in/passkey/verify", json=forged.get(options), headers=headers))
        for _ in range(ATTEMPTS)
    ]

    wait = backs_off(answers, allowance(web.limits.PASSKEY_LIMITS), 400)
    assert json.loads(answers[-1].body)["error"] == "too_many_requests"
    assert _passkey_sign_in(at(app, NEIGHBOUR), passkey).status_code == 200
    wait_out(limiter_time, wait, lambda: _passkey_sign_in(attacker, passkey), 200)


# --- Departments: pushed requests, tokens, the API -----------------------------------------------


def _json(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def test_a_thousand_pushed_requests_with_a_forged_assertion(
    app: Any, department: DepartmentSide, limiter_time: LimiterTime
) -> None:
    attacker = replace(department, client=at(app, ATTACKER))
    wrong_key = new_key("ES256")  # a key no department registered

    answers = [
        seen(attacker.par(client_assertion=attacker.assertion(key=wrong_key)))
        for _ in range(ATTEMPTS)
    ]

    wait = backs_off(answers, allowance(web.limits.OAUTH_REFUSED_PER_IP), 401)
    limited = _json(attacker.par(client_assertion=attacker.assertion(key=wrong_key)))
    assert limited["error"] == "too_many_requests" and limited["error_description"]
    # Assertions sent in the department's name did not use up the department's allowance.
    assert department.par().status_code == 201
    wait_out(limiter_time, wait, lambda: attacker.par(), 201)


NESTED = base64.urlsafe_b64encode(b"[" * 5_000).decode().rstrip("=")


@pytest.mark.parametrize(
    "assertion",
    [f"e30.{NESTED}.x", "e30.not base64!.x", "e30." + "A" * 20_000 + ".x", "e30.e30.x", "x"],
    ids=["nested", "not-base64", "huge", "no-subject", "not-a-jwt"],
)
def test_an_assertion_read_for_its_client_id_cannot_break_the_count(
    department: DepartmentSide, assertion: str
) -> None:
    # With no client_id field, the limit reads the (unchecked) assertion for one.
    answer = department.par(client_id=None, client_assertion=assertion)
    assert answer.status_code == 401, answer.get_data(as_text=True)


def test_a_thousand_token_requests_with_wrong_codes(
    app: Any,
    department: DepartmentSide,
    other_department: DepartmentSide,
    sam: Any,
    limiter_time: LimiterTime,
) -> None:
    code = get_code(sam, department)
    attacker = replace(department, client=at(app, ATTACKER))
    neighbour = replace(other_department, client=attacker.client)  # the same address
    allowed = allowance(web.limits.OAUTH_PER_CLIENT["oauth.token"])
    answers = []
    for n in range(ATTEMPTS):
        answers.append(seen(attacker.token(secrets.token_urlsafe(32))))
        if n == allowed:  # the first refused try: another department there is not held back
            assert neighbour.client_credentials().status_code == 200

    wait = backs_off(answers, allowed, 400)
    assert _json(attacker.token(code))["error"] == "too_many_requests", "held, not used up"
    assert department.client_credentials().status_code == 200, "nor is another address"
    wait_out(limiter_time, wait, lambda: attacker.token(code), 200)


def test_a_thousand_api_calls_with_made_up_tokens(
    app: Any, department: DepartmentSide, sam: Any, limiter_time: LimiterTime
) -> None:
    token = whole_flow(sam, department)["access_token"]
    attacker = replace(department, client=at(app, ATTACKER))

    answers = [seen(attacker.fetch(secrets.token_urlsafe(32))) for _ in range(ATTEMPTS)]

    wait = backs_off(answers, allowance(web.limits.API_REFUSED_PER_IP), 401)
    limited = json.loads(answers[-1].body)
    assert limited["error"] == "too_many_requests" and limited["message"]
    assert department.fetch(token).status_code == 200, "another address is not held back"
    wait_out(limiter_time, wait, lambda: attacker.fetch(token), 200)


# --- Where the counts live, and whose address counts -------------------------------------------


@pytest.fixture
def sqlite_only(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    """A database for tests about the limits' storage, not the database (run once, not per DB)."""
    path = tmp_path / "limits.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}", synchronous="OFF")
    yield engine
    engine.dispose()


def _settings(engine: Engine, key_provider: Any, tmp_path: Path, **more: Any) -> dict[str, Any]:
    return {
        "TESTING": True,
        "ENGINE": engine,
        "KEY_PROVIDER": key_provider,
        "MAIL_DIR": str(tmp_path / "mail"),
        "SECRET_KEY": "x",
        **more,
    }


def test_two_workers_share_one_count_in_redis(
    sqlite_only: Engine, key_provider: Any, tmp_path: Path
) -> None:
    redis = pytest.importorskip("redis", reason="the redis package is not installed")
    store = redis.Redis(host="127.0.0.1", port=6379, db=15, socket_connect_timeout=1)
    try:
        store.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("Redis is not reachable at 127.0.0.1:6379, so the shared count is untested")
    prefix = f"tellonce-test-{uuid.uuid4().hex}"  # its own keys, so parallel runs never mix
    settings = _settings(
        sqlite_only,
        key_provider,
        tmp_path,
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/15",
        RATELIMIT_KEY_PREFIX=prefix,
    )
    workers = [create_app(settings), create_app(settings)]
    guesses = [link_guesser(at(worker, ATTACKER)) for worker in workers]
    try:
        answers = [seen(guesses[n % 2]()) for n in range(ATTEMPTS)]
        # Taking turns between the two workers, the limit comes at the same try as with one.
        backs_off(answers, allowance(web.limits.LINK_LIMITS), 400, frozen=False)
        elsewhere = link_guesser(at(workers[1], NEIGHBOUR))
        assert elsewhere().status_code == 400, "another address is not held back"
        stored = [key.decode() for key in store.scan_iter(f"*{prefix}*")]
        assert stored, "the counts are in Redis"
        assert not [key for key in stored if ATTACKER in key], "only HMACs, never an address"
    finally:
        for key in store.scan_iter(f"*{prefix}*"):
            store.delete(key)


def test_without_redis_the_limits_stay_on_in_memory(
    sqlite_only: Engine, key_provider: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    nobody_listens = "redis://user:hunter2@127.0.0.1:1/0"
    app = create_app(
        _settings(sqlite_only, key_provider, tmp_path, RATELIMIT_STORAGE_URI=nobody_listens)
    )
    warned = [r.getMessage() for r in caplog.records if r.name == "tellonce"]
    assert any("cannot be reached" in message for message in warned), warned
    assert not any("hunter2" in message for message in warned), "no password in the logs"
    guess = link_guesser(at(app, ATTACKER))
    allowed = allowance(web.limits.LINK_LIMITS)
    statuses = [guess().status_code for _ in range(allowed + 1)]
    assert statuses == [400] * allowed + [429]


def test_a_made_up_forwarded_for_does_not_escape_the_limits(
    sqlite_only: Engine, key_provider: Any, tmp_path: Path
) -> None:
    guess = link_guesser(at(create_app(_settings(sqlite_only, key_provider, tmp_path)), ATTACKER))
    allowed = allowance(web.limits.LINK_LIMITS)
    statuses = [guess(**{"X-Forwarded-For": f"10.0.0.{n}"}).status_code for n in range(allowed + 1)]
    assert statuses == [400] * allowed + [429]


def test_behind_a_trusted_proxy_each_caller_has_its_own_count(
    sqlite_only: Engine, key_provider: Any, tmp_path: Path
) -> None:
    settings = _settings(sqlite_only, key_provider, tmp_path, TRUSTED_PROXIES="1")
    guess = link_guesser(at(create_app(settings), "10.0.0.1"))  # all arrive from the proxy
    allowed = allowance(web.limits.LINK_LIMITS)
    hammering = [guess(**{"X-Forwarded-For": ATTACKER}).status_code for _ in range(allowed + 1)]
    assert hammering == [400] * allowed + [429]
    assert guess(**{"X-Forwarded-For": NEIGHBOUR}).status_code == 400


@pytest.mark.parametrize("name", ["API_RATE_LIMIT", "TRUSTED_PROXIES"])
def test_a_setting_that_is_not_understood_stops_the_start(
    sqlite_only: Engine, key_provider: Any, tmp_path: Path, name: str
) -> None:
    with pytest.raises(RuntimeError, match=f"TELLONCE_{name}"):
        create_app(_settings(sqlite_only, key_provider, tmp_path, **{name: "lots"}))
