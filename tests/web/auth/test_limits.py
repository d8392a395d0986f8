"""Rate limits on signing in: plain words, status 429, the same for every address."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.web.auth.conftest import Auth, csrf_token
from web import create_app

TOO_MANY = "Too many tries. Wait a few minutes and try again."
NONCE = re.compile(r'nonce="[^"]*"')


def test_the_eleventh_try_in_a_minute_is_refused_plainly(auth: Auth) -> None:
    token = csrf_token(auth.client, "/sign-in")
    for n in range(10):
        # Different addresses, so only the per-IP limit counts.
        answer = auth.client.post(
            "/sign-in", data={"email": f"p{n}@example.org", "csrf_token": token}
        )
        assert answer.status_code == 303
    refused = auth.client.post("/sign-in", data={"email": "sam@example.org", "csrf_token": token})
    assert refused.status_code == 429
    assert TOO_MANY in refused.get_data(as_text=True)
    assert refused.headers["Content-Type"].startswith("text/html")
    assert len(auth.outbox()) == 10, "no email for the refused try"
    assert auth.client.get("/sign-in").status_code == 200, "the page itself still opens"


def test_the_limited_answer_is_the_same_for_known_and_unknown_addresses(auth: Auth) -> None:
    auth.sign_up_or_in("known@example.org")
    auth.client.get("/sign-out")
    token = csrf_token(auth.client, "/sign-in")
    answers = []
    for email in ("known@example.org", "nobody@example.org"):
        for _ in range(5):
            auth.client.post("/sign-in", data={"email": email, "csrf_token": token})
        refused = auth.client.post("/sign-in", data={"email": email, "csrf_token": token})
        page = refused.get_data(as_text=True).replace(email, "X")
        # Every page has a fresh script nonce; what the person sees must be the same.
        answers.append((refused.status_code, NONCE.sub('nonce=""', page)))
    assert answers[0][0] == 429
    assert answers[0] == answers[1]


def test_one_address_cannot_be_sent_endless_emails(auth: Auth) -> None:
    for _ in range(5):
        assert auth.ask("sam@example.org").status_code == 303
    assert auth.ask("sam@example.org").status_code == 429
    assert auth.ask("someone.else@example.org").status_code == 303


def test_using_links_is_limited_too(auth: Auth) -> None:
    token = csrf_token(auth.client, "/sign-in")
    statuses = [
        auth.client.post("/sign-in/link", data={"token": "guess", "csrf_token": token}).status_code
        for _ in range(21)
    ]
    assert statuses[:20] == [400] * 20 and statuses[20] == 429


def test_passkey_checks_are_limited_with_a_json_answer(auth: Auth) -> None:
    token = csrf_token(auth.client, "/sign-in")
    headers = {"X-CSRFToken": token}
    for _ in range(20):
        auth.client.post("/sign-in/passkey/verify", json={}, headers=headers)
    refused = auth.client.post("/sign-in/passkey/verify", json={}, headers=headers)
    assert refused.status_code == 429
    assert refused.get_json()["message"] == TOO_MANY


def test_limits_can_be_turned_off(engine: Any, key_provider: Any, tmp_path: Any) -> None:
    app = create_app(
        {
            "TESTING": True,
            "ENGINE": engine,
            "KEY_PROVIDER": key_provider,
            "MAIL_DIR": str(tmp_path / "mail"),
            "SECRET_KEY": "x",
            "RATELIMIT_ENABLED": False,
        }
    )
    auth = Auth(app, app.test_client())
    assert [auth.ask(f"p{n}@example.org").status_code for n in range(12)] == [303] * 12


def test_limits_can_live_in_redis(engine: Any, key_provider: Any, tmp_path: Any) -> None:
    redis = pytest.importorskip("redis", reason="the redis package is not installed")
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    prefix = f"tellonce-test-{uuid.uuid4().hex}"  # unique, so parallel runs never share counts
    app = create_app(
        {
            "TESTING": True,
            "ENGINE": engine,
            "KEY_PROVIDER": key_provider,
            "MAIL_DIR": str(tmp_path / "mail"),
            "SECRET_KEY": "x",
            "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/15",
            "RATELIMIT_KEY_PREFIX": prefix,
        }
    )
    auth = Auth(app, app.test_client())
    client = redis.Redis(host="127.0.0.1", port=6379, db=15)
    try:
        statuses = [auth.ask("sam@example.org").status_code for _ in range(6)]
        assert statuses == [303] * 5 + [429]
        assert any(True for _ in client.scan_iter(f"*{prefix}*")), "the counts are in Redis"
    finally:
        for key in client.scan_iter(f"*{prefix}*"):
            client.delete(key)
