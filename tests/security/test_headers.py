"""Headers and cookies (issue 8, part 3): every answer, on every route, for every visitor.

The app is served at an https base URL here, as in production, so HSTS and the ``__Host-``
cookies apply. The sweep walks ``app.url_map``: a route added later is swept without anyone
listing it (and fails until its URL arguments have a value below).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask, g, url_for
from flask.testing import FlaskClient
from playwright.sync_api import Page
from sqlmodel import select

from connectors.departments import register_department
from consent.challenges import open_challenge
from consent.delegations import give_delegation
from tests.connectors.dpop_client import new_key
from tests.e2e.conftest import CHROMIUM, LiveServer
from tests.e2e.conftest import base_url as base_url
from tests.e2e.conftest import browser_context_args as browser_context_args
from tests.e2e.conftest import browser_type_launch_args as browser_type_launch_args
from tests.e2e.conftest import live_server as live_server
from tests.e2e.conftest import make_citizen as make_citizen
from tests.e2e.conftest import signed_in_page as signed_in_page
from tests.oauth.harness import REDIRECT_URI, DepartmentSide, open_consent, registration
from tests.security.header_checks import BASE_URL, directives, header_problems, inline_problems
from tests.web.auth.conftest import CSRF, DATA_CSRF, LINK
from tests.web.citizen.conftest import Person, grant_for
from tests.web.citizen.conftest import person as person
from tests.web.citizen.decision_helpers import make_decision
from vault.accounts import create_account
from vault.clock import FrozenClock
from vault.services import Vault
from vault.sessions import start_session
from vault.signin_models import Passkey, WebSession
from web import create_app
from web.errors import JSON_PATHS
from web.mail import read_outbox
from web.security_headers import allow_form_target

DEPARTMENT_ORIGIN = "{0.scheme}://{0.netloc}".format(urlsplit(REDIRECT_URI))
# What the browser sends as Referer under our strict-origin policy: our origin, no path.
OUR_REFERER = {"Referer": BASE_URL + "/"}
FILES = {"static": "app.css", "assets.govuk_asset": "images/favicon.svg"}


class HttpsClient(FlaskClient):
    """A test client that always speaks to the app at the https base URL."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("base_url", BASE_URL)
        return super().open(*args, **kwargs)


@pytest.fixture
def clock() -> FrozenClock:
    # Client assertions are checked against real time, so the clock starts at it.
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def https_app(engine: Any, key_provider: Any, clock: FrozenClock, tmp_path: Path) -> Flask:
    """The app at an https base URL, with two test-only routes that fail (page and JSON)."""
    app = create_app(
        {
            "TESTING": True,
            "ENGINE": engine,
            "KEY_PROVIDER": key_provider,
            "CLOCK": clock,
            "LEDGER_ORIGIN": "test.tellonce/ledger",
            "MAIL_DIR": str(tmp_path / "mail"),
            "SECRET_KEY": "test-secret-key",
            "BASE_URL": BASE_URL,
        }
    )
    app.test_client_class = HttpsClient

    def fails() -> str:
        raise RuntimeError("a bug")

    app.add_url_rule("/test-only/fails", "test_only_page_fails", fails)
    app.add_url_rule("/api/v1/test-only/fails", "test_only_api_fails", fails)
    return app


def signed_in(app: Flask, db: Any, vault: Vault, account_id: str, acting_for: str = "") -> Any:
    """A browser signed in over https (its session cookie is ``__Host-tellonce``)."""
    with db.tx() as session:
        token = start_session(session, vault, account_id)
        if acting_for:
            session.flush()
            found = session.exec(select(WebSession).where(WebSession.account_id == account_id))
            row = found.one()
            row.acting_for = acting_for
            session.add(row)
    client = app.test_client()
    client.set_cookie("__Host-tellonce", token, domain="tellonce.example", secure=True)
    return client


@dataclass
class World:
    """Sam's browser, a helper's browser, a stranger's, and values for every URL argument."""

    citizen: Any
    worker: Any
    anonymous: Any
    values: dict[str, str]


@pytest.fixture
def world(https_app: Flask, db: Any, vault: Vault, clock: FrozenClock, person: Person) -> World:
    """Sam shares, is decided about, challenges, has a helper and a passkey, and is asked."""
    grant_id = grant_for(db, vault, person)
    decision_id = make_decision(db, vault, person)
    with db.tx() as session:
        reason = "You did not ask me where I can stay."
        challenge = open_challenge(
            session, vault, person.actor, decision_id=decision_id, reason=reason
        )
        worker = create_account(session, vault, "jo@example.org")
        ends = vault.clock() + timedelta(days=30)
        scopes = ("view", "answer_requests")
        delegation = give_delegation(session, vault, person.actor, worker.id, scopes, ends)
        passkey = Passkey(
            account_id=person.account_id,
            credential_id=b"header-sweep",
            public_key=b"not-used",
            created_at=vault.clock(),
        )
        session.add(passkey)
        ids = (challenge.id, worker.id, delegation.id, passkey.id)
    challenge_id, worker_id, delegation_id, passkey_id = ids
    citizen = signed_in(https_app, db, vault, person.account_id)
    key = new_key("ES256")
    with db.tx() as session:
        department_id = register_department(session, vault, registration(key)).department.id
    side = DepartmentSide(https_app.test_client(), BASE_URL, department_id, key, clock=clock)
    pushed = side.par()
    assert pushed.status_code == 201, pushed.get_json()
    consent = open_consent(citizen, side, pushed.get_json()["request_uri"])
    assert consent.status_code == 200
    values = {
        "challenge_id": challenge_id,
        "decision_id": decision_id,
        "grant_id": grant_id,
        "delegation_id": delegation_id,
        "invitation_id": "no-such-invitation",
        "passkey_id": passkey_id,
        "pushed_id": consent.request.path.rsplit("/", 1)[-1],
        "key": "identity.name",
        "topic": "housing",
        "code": "en",
    }
    worker_client = signed_in(https_app, db, vault, worker_id, acting_for=person.citizen_id)
    return World(citizen, worker_client, https_app.test_client(), values)


def every_route(app: Flask, values: dict[str, str]) -> Iterator[tuple[str, str]]:
    """Each (method, path) of the URL map, arguments filled in; signing out comes last."""
    routes = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            given = dict(values)
            if rule.endpoint in FILES:
                given["filename"] = FILES[rule.endpoint]
            missing = [name for name in rule.arguments if name not in given]
            assert not missing, f"give {rule.rule} a value for {missing} in the sweep"
            path = url_for(rule.endpoint, **{name: given[name] for name in rule.arguments})
            routes += [(m, path) for m in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})]
    return iter(sorted(routes, key=lambda route: (route[1] == "/sign-out", route)))


def cookie_problems(response: Any) -> list[str]:
    """Cookies set over https without ``__Host-``, Secure, HttpOnly or SameSite, or that
    break the rules of ``__Host-`` (Path=/, no Domain)."""
    problems = []
    for cookie in response.headers.getlist("Set-Cookie"):
        parts = [part.strip().lower() for part in cookie.split(";")]
        name = cookie.split("=", 1)[0]
        if not {"secure", "httponly"} <= set(parts):
            problems.append(f"cookie {name} lacks Secure or HttpOnly")
        if "samesite=lax" not in parts and "samesite=strict" not in parts:
            problems.append(f"cookie {name} lacks SameSite=Lax or Strict")
        has_domain = any(part.startswith("domain=") for part in parts)
        if not name.startswith("__Host-"):
            problems.append(f"cookie {name} lacks the __Host- prefix")
        elif "path=/" not in parts or has_domain:
            problems.append(f"cookie {name} breaks the __Host- rules")
    return problems


def test_every_route_answers_with_the_protective_headers(https_app: Flask, world: World) -> None:
    problems: list[str] = []
    nonces: list[str] = []
    for method, path in every_route(https_app, world.values):
        visitors = [("anonymous", world.anonymous)]
        if method == "GET" and not path.startswith(JSON_PATHS):
            visitors += [("citizen", world.citizen), ("helper", world.worker)]
        for who, client in visitors:
            response = client.open(path, method=method)
            where = f"{who} {method} {path} ({response.status_code})"
            found = header_problems(path, response) + cookie_problems(response)
            if response.status_code >= 500 and "/test-only/" not in path:
                found.append("a server error")
            if response.mimetype == "text/html":
                found += inline_problems(response)
                policy = directives(response.headers["Content-Security-Policy"])
                nonces.append(policy["script-src"])
                targets = policy["form-action"].split()[1:]
                asked = path.startswith("/oauth/consent/") and response.status_code == 200
                if targets != ([DEPARTMENT_ORIGIN] if asked else []):
                    found.append(f"form-action also allows {targets}")
            problems += [f"{where}: {problem}" for problem in found]
            response.close()  # files are streamed: let them go
    assert not problems, "\n".join(problems)
    assert len(nonces) > 100 and len(set(nonces)) == len(nonces), "a nonce was used twice"


@pytest.mark.parametrize(
    ("method", "path", "status", "mimetype"),
    [
        ("GET", "/no-such-page", 404, "text/html"),
        ("GET", "/api/v1/no-such-thing", 404, "application/json"),
        ("GET", "/people/stop", 405, "text/html"),
        ("GET", "/oauth/token", 405, "application/json"),
        ("GET", "/test-only/fails", 500, "text/html"),
        ("GET", "/api/v1/test-only/fails", 500, "application/json"),
    ],
)
def test_errors_carry_the_headers_too(
    https_app: Flask, method: str, path: str, status: int, mimetype: str
) -> None:
    response = https_app.test_client().open(path, method=method)
    assert (response.status_code, response.mimetype) == (status, mimetype)
    assert header_problems(path, response) == []


def first(pattern: Any, text: str) -> str:
    """The first group of ``pattern`` in ``text`` (which must be there)."""
    found = pattern.search(text)
    assert found, f"{pattern.pattern} is not there"
    return str(found.group(1) if found.groups() else found.group(0))


def _until_limited(send: Any) -> Any:
    for _ in range(200):
        response = send()
        if response.status_code == 429:
            return response
    raise AssertionError("200 tries and no 429")


def test_too_many_tries_carry_the_headers_too(https_app: Flask) -> None:
    client = https_app.test_client()
    html = client.get("/sign-in").get_data(as_text=True)
    form = {"email": "sam@example.org", "csrf_token": first(CSRF, html)}
    page = _until_limited(lambda: client.post("/sign-in", data=form, headers=OUR_REFERER))
    headers = {**OUR_REFERER, "X-CSRFToken": first(DATA_CSRF, html)}
    api = _until_limited(lambda: client.post("/sign-in/passkey/options", json={}, headers=headers))
    assert (page.mimetype, api.mimetype) == ("text/html", "application/json")
    assert header_problems("/sign-in", page) == [] and inline_problems(page) == []
    assert header_problems("/sign-in/passkey/options", api) == []


def _set_cookie(response: Any, name: str) -> str:
    found = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(name + "=")]
    assert found, f"no {name} cookie in {response.headers.getlist('Set-Cookie')}"
    return str(found[0])


def test_over_https_both_cookies_are_host_only_secure_httponly_and_lax(https_app: Flask) -> None:
    client = https_app.test_client()
    sign_in_page = client.get("/sign-in")  # its form's CSRF token lives in Flask's cookie
    assert cookie_problems(sign_in_page) == []
    assert _set_cookie(sign_in_page, "__Host-session")
    form = {"email": "new@example.org", "csrf_token": first(CSRF, sign_in_page.text)}
    asked = client.post("/sign-in", data=form, headers=OUR_REFERER)
    assert asked.status_code in (302, 303)
    link = first(LINK, read_outbox(https_app.config["MAIL_DIR"])[-1].get_content())
    token = parse_qs(urlsplit(link).query)["token"][0]
    link_page = client.get(f"/sign-in/link?token={token}")
    # The token is in this page's address: strict-origin keeps it out of every Referer,
    # while the form below still says where it came from (Flask-WTF checks that over https).
    assert link_page.headers["Referrer-Policy"] == "strict-origin"
    form = {"token": token, "csrf_token": first(CSRF, link_page.text)}
    signed_in_now = client.post("/sign-in/link", data=form, headers=OUR_REFERER)
    assert signed_in_now.status_code == 303
    assert _set_cookie(signed_in_now, "__Host-tellonce")
    assert cookie_problems(signed_in_now) == []
    assert client.get("/information").status_code == 200


def test_over_https_the_language_and_passkey_cookies_are_host_only_too(https_app: Flask) -> None:
    client = https_app.test_client()
    chosen = client.get("/language/cy?next=/sign-in")
    assert _set_cookie(chosen, "__Host-lang")
    assert cookie_problems(chosen) == []
    page = client.get("/sign-in")
    assert '<html lang="cy"' in page.text  # the browser's choice is read back
    options = client.post(
        "/sign-in/passkey/options",
        json={},
        headers={**OUR_REFERER, "X-CSRFToken": first(CSRF, page.text)},
    )
    assert options.status_code == 200, options.text
    assert _set_cookie(options, "__Host-tellonce_webauthn")
    assert cookie_problems(options) == []


def test_in_development_over_http_cookies_drop_the_https_only_parts(client: Any) -> None:
    response = client.get("/sign-in")
    flask_cookie = _set_cookie(response, "session")
    assert "HttpOnly" in flask_cookie and "SameSite=Lax" in flask_cookie
    assert "Secure" not in flask_cookie  # a plain-http browser would drop a Secure cookie
    assert "Strict-Transport-Security" not in response.headers
    assert "'nonce-" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://housing.example/callback?x=1", ["https://housing.example"]),
        ("http://localhost:8000/back", ["http://localhost:8000"]),
        ("https://evil.example; script-src *", []),
        ("https://evil.example 'unsafe-inline'/x", []),
        ("javascript:alert(1)", []),
        ("//no-scheme.example/x", []),
    ],
)
def test_only_a_plain_origin_can_join_form_action(url: str, allowed: list[str]) -> None:
    app = Flask(__name__)
    with app.test_request_context():
        allow_form_target(url)
        assert g.get("form_targets", []) == allowed


# --- In a real browser -------------------------------------------------------------------

WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is missing")
def test_a_page_with_every_script_runs_in_chromium_without_a_policy_violation(
    live_server: LiveServer, make_citizen: Any, signed_in_page: Any
) -> None:
    sam = make_citizen()
    page: Page = signed_in_page(sam.account_id)
    complaints: list[str] = []
    page.on("console", lambda message: complaints.append(f"{message.type}: {message.text}"))
    page.add_init_script(WATCH_VIOLATIONS)
    page.goto("/passkeys")  # GOV.UK's inline script, app.js, GOV.UK Frontend and passkeys.js
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__violations") == []
    assert [c for c in complaints if c.startswith("error") or "Refused" in c] == []
    assert page.evaluate("document.body.classList.contains('govuk-frontend-supported')")
    # The watcher works: an injected inline script and style attribute are refused.
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__ran = true";
          document.body.append(script);
          document.body.setAttribute("style", "color: red");
        }"""
    )
    page.wait_for_function("window.__violations.length >= 2")
    assert page.evaluate("window.__ran") is None
    assert {v.split()[0] for v in page.evaluate("window.__violations")} == {
        "script-src-elem",
        "style-src-attr",
    }
