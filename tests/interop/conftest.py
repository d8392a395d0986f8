"""Fixtures for the interoperability test: the app on a real port, a department whose private
key the node client holds, and a signed-in person whose browser the test plays.

The app runs with the real clock: openid-client stamps its client assertions and DPoP proofs
with the time of the machine, so the server must agree with it.
"""

from __future__ import annotations

import http.client
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from flask import Flask
from sqlalchemy.engine import Engine
from werkzeug.serving import BaseWSGIServer, make_server

from connectors.departments import register_department
from tests.connectors.dpop_client import new_key
from tests.oauth.harness import registration
from tests.web.citizen.conftest import CANARY
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.db import make_engine, session_scope
from vault.keys import LocalKeyFileProvider
from vault.records import record_data_point, record_story_section
from vault.services import Vault
from vault.sessions import start_session

HOUSING_STORY = "I sleep on a friend's sofa and have to leave by the end of the month."
SAMS_INCOME = 125_050  # pence a month: asked for as optional, and unticked in the test
SIGN_IN_COOKIE = "tellonce"  # the session cookie's name when BASE_URL is plain http


@dataclass
class LiveApp:
    """The app serving real HTTP on localhost, and what sits behind it."""

    url: str
    app: Flask
    engine: Engine
    vault: Vault


@pytest.fixture
def live_app(tmp_path: Path, sqlite_template: Path, key_file: Path) -> Iterator[LiveApp]:
    """A fresh SQLite database and the app on http://localhost:PORT, in a background thread."""
    from web import create_app
    from web.state import services

    path = tmp_path / "interop.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}", synchronous="OFF")
    # The port is only known once the socket is open, and BASE_URL (our issuer) needs it,
    # so the server starts with a stand-in that calls the app built just after.
    holder: dict[str, Any] = {}

    def app_proxy(environ: Any, start_response: Any) -> Any:
        return holder["app"](environ, start_response)

    server: BaseWSGIServer = make_server("localhost", 0, app_proxy, threaded=True)
    url = f"http://localhost:{server.server_port}"
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    app = create_app(
        {
            "TESTING": True,
            "ENGINE": engine,
            "KEY_PROVIDER": LocalKeyFileProvider(key_file),
            "LEDGER_ORIGIN": "test.tellonce/ledger",
            "MAIL_DIR": str(mail_dir),
            "SECRET_KEY": "interop-secret-key",
            "BASE_URL": url,
        }
    )
    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveApp(url, app, engine, services(app).vault)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        engine.dispose()


@dataclass(frozen=True)
class RegisteredDepartment:
    """A department as its own software knows itself: its client id and its private key."""

    client_id: str
    private_jwk: dict[str, Any]
    registration: dict[str, Any]


@pytest.fixture
def department(live_app: LiveApp) -> RegisteredDepartment:
    """Anytown housing, registered with the public half of a fresh EC P-256 key."""
    key = new_key("ES256")
    metadata = registration(key)
    with session_scope(live_app.engine) as session:
        registered = register_department(session, live_app.vault, metadata)
        client_id = registered.department.id
    private = dict(key.as_dict(private=True))
    private["kid"] = key.thumbprint()  # the kid the registration gave the public half
    return RegisteredDepartment(client_id, private, metadata)


@dataclass(frozen=True)
class Citizen:
    """Ids of the person made for the test."""

    citizen_id: str
    account_id: str


@pytest.fixture
def sam(live_app: LiveApp) -> Citizen:
    """Sam: a name, an address, an income and a housing story."""
    vault = live_app.vault
    with session_scope(live_app.engine) as session:
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, "sam@example.org", citizen_id=citizen.id)
        by = f"citizen:{account.id}"
        facts: dict[str, Any] = {
            "identity.name": CANARY,
            "contact.address": {
                "lines": ["10 High Street"],
                "town": "Leeds",
                "postcode": "LS1 1AA",
            },
            "money.income_monthly": SAMS_INCOME,
        }
        for key, value in facts.items():
            record_data_point(session, vault, citizen.id, key, value, recorded_by=by)
        record_story_section(session, vault, citizen.id, "housing", HOUSING_STORY, recorded_by=by)
        return Citizen(citizen.id, account.id)


@dataclass(frozen=True)
class Page:
    """One HTTP answer as a browser sees it (redirects are not followed)."""

    url: str
    status: int
    location: str | None
    text: str


@dataclass
class Browser:
    """A person's browser cut down to what a consent needs: cookies, GET, form POST.

    It speaks real HTTP to the live server, and only to it.
    """

    base_url: str
    cookies: dict[str, str] = field(default_factory=dict)

    def get(self, url: str) -> Page:
        """Open a page (absolute URL on the live server, or a path)."""
        return self._send("GET", url, None)

    def post(self, url: str, form: dict[str, Any]) -> Page:
        """Submit a form; list values are sent as repeated fields."""
        return self._send("POST", url, urlencode(form, doseq=True))

    def _send(self, method: str, url: str, body: str | None) -> Page:
        absolute = url if "://" in url else self.base_url + url
        parts = urlsplit(absolute)
        ours = urlsplit(self.base_url)
        assert (parts.scheme, parts.netloc) == (ours.scheme, ours.netloc), absolute
        headers = {"Host": parts.netloc}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8")
            for cookie in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(cookie).items():
                    if morsel.value and morsel["max-age"] != "0":
                        self.cookies[name] = morsel.value
                    else:  # the server deleted it
                        self.cookies.pop(name, None)
            return Page(absolute, response.status, response.getheader("Location"), text)
        finally:
            connection.close()


@pytest.fixture
def sams_browser(live_app: LiveApp, sam: Citizen) -> Browser:
    """Sam's browser, signed in through a real server-side session."""
    with session_scope(live_app.engine) as session:
        token = start_session(session, live_app.vault, sam.account_id)
    return Browser(live_app.url, {SIGN_IN_COOKIE: token})
