"""Browser tests: the real app served on localhost, driven by Debian's Chromium.

Every test gets a fresh SQLite database (a copy of the migrated template), a real clock and
its own mail folder, so tests never see each other's people. These tests never use the
`engine` fixture, so they run once, not once per database.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, Page
from sqlalchemy.engine import Engine
from werkzeug.serving import BaseWSGIServer, make_server

from consent.actors import citizen as citizen_actor
from consent.delegations import give_delegation
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.db import make_engine, session_scope
from vault.keys import LocalKeyFileProvider
from vault.records import record_data_point, record_story_section
from vault.services import Vault
from vault.sessions import start_session
from vault.signin_models import Passkey, WebSession

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 375, "height": 667}, "is_mobile": True, "has_touch": True}
VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip browser tests, with a reason, on a machine without Debian's Chromium."""
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(
        reason="/usr/bin/chromium is missing: run scripts/test (it installs Debian's chromium)"
    )
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.path)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Use Debian's Chromium, kept quiet: no background calls to the internet."""
    return {
        **browser_type_launch_args,
        "executable_path": str(CHROMIUM),
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--no-first-run",
            "--disable-extensions",
            "--metrics-recording-only",
            "--disable-features=Translate,OptimizationHints,MediaRouter",
        ],
    }


@dataclass
class LiveServer:
    """The app serving real HTTP on localhost, and the pieces behind it."""

    url: str
    app: Flask
    engine: Engine
    vault: Vault
    mail_dir: Path


@pytest.fixture
def live_server(tmp_path: Path, sqlite_template: Path, key_file: Path) -> Iterator[LiveServer]:
    """A fresh database and the app on http://localhost:PORT, in a background thread."""
    from web import create_app
    from web.state import services

    path = tmp_path / "e2e.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}", synchronous="OFF")
    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    # The socket comes first: the port it gets is part of BASE_URL, which the passkey
    # relying-party id depends on, so the app is built only once the port is known.
    holder: dict[str, Any] = {}

    def app_proxy(environ: Any, start_response: Any) -> Any:
        return holder["app"](environ, start_response)

    server: BaseWSGIServer = make_server("localhost", 0, app_proxy, threaded=True)
    url = f"http://localhost:{server.server_port}"
    app = create_app(
        {
            "TESTING": True,
            "ENGINE": engine,
            "KEY_PROVIDER": LocalKeyFileProvider(key_file),
            "LEDGER_ORIGIN": "test.tellonce/ledger",
            "MAIL_DIR": str(mail_dir),
            "SECRET_KEY": "e2e-secret-key",
            "BASE_URL": url,
            # Browser journeys sign in many times in a row; limits are tested elsewhere.
            "RATELIMIT_ENABLED": False,
        }
    )
    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveServer(url, app, engine, services(app).vault, mail_dir)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        engine.dispose()


@pytest.fixture
def base_url(live_server: LiveServer) -> str:
    """Where the app is served; page.goto("/path") is relative to it."""
    return live_server.url


@pytest.fixture
def browser_context_args(base_url: str) -> dict[str, Any]:
    """Every browser context opens relative URLs on the live server."""
    # Replaces pytest-playwright's session-wide version: our base URL changes per test.
    return {"base_url": base_url, **DESKTOP}


@dataclass
class Citizen:
    """Ids of a person made for a test."""

    citizen_id: str
    account_id: str


MakeCitizen = Callable[..., Citizen]

HOUSING_STORY = (
    "I lost my flat in March. Since then I have stayed with friends. "
    "I need somewhere to stay for more than a few weeks."
)


@pytest.fixture
def make_citizen(live_server: LiveServer) -> MakeCitizen:
    """Make a citizen with an account, a few facts and a housing story; return their ids."""

    def make(email: str = "sam@example.org", name: str = "Sam Taylor") -> Citizen:
        vault = live_server.vault
        with session_scope(live_server.engine) as session:
            person = create_citizen(session, vault)
            account = create_account(session, vault, email, citizen_id=person.id)
            by = f"citizen:{account.id}"
            facts: dict[str, Any] = {
                "identity.name": name,
                "identity.date_of_birth": "1988-03-14",
                "contact.email": email,
                "housing.status": "staying_with_friends",
            }
            for key, value in facts.items():
                record_data_point(session, vault, person.id, key, value, recorded_by=by)
            record_story_section(
                session, vault, person.id, "housing", HOUSING_STORY, recorded_by=by
            )
            return Citizen(person.id, account.id)

    return make


@pytest.fixture
def make_worker(live_server: LiveServer) -> Callable[..., str]:
    """Make a support worker's account, invited by a citizen; return the worker's account id."""

    def make(
        helped: Citizen,
        email: str = "jo@example.org",
        scopes: tuple[str, ...] = ("view", "answer_requests"),
    ) -> str:
        vault = live_server.vault
        with session_scope(live_server.engine) as session:
            worker = create_account(session, vault, email)
            actor = citizen_actor(helped.account_id, helped.citizen_id)
            ends = datetime.now(UTC) + timedelta(days=90)
            give_delegation(session, vault, actor, worker.id, scopes, ends)
            return worker.id

    return make


@pytest.fixture
def signed_in_page(live_server: LiveServer, request: pytest.FixtureRequest) -> Callable[..., Page]:
    """A page whose browser is signed in as an account (no test-only routes in the app)."""

    def open_page(
        account_id: str, context: BrowserContext | None = None, acting_for: str | None = None
    ) -> Page:
        if context is None:
            context = request.getfixturevalue("context")
        with session_scope(live_server.engine) as session:
            token = start_session(session, live_server.vault, account_id)
            if acting_for is not None:
                # A worker who has already chosen whom to act for. (Sessions are kept
                # under the SHA-256 of their token.)
                session.flush()
                found = session.get(WebSession, hashlib.sha256(token.encode()).hexdigest())
                assert found is not None
                found.acting_for = acting_for
                session.add(found)
        context.add_cookies(
            [{"name": "tellonce", "value": token, "domain": "localhost", "path": "/"}]
        )
        return context.new_page()

    return open_page


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core with the WCAG 2.0/2.1/2.2 A and AA rules; return the violations."""
    from axe_playwright_python.sync_playwright import Axe

    # resultTypes keeps axe from sending back every rule that passed, which is slow.
    options = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations"]}
    results = Axe().run(page, options=options)
    return list(results.response.get("violations", []))


def describe_violations(violations: list[dict[str, Any]]) -> str:
    """Each violation's id, help and the nodes it was found on, one block each."""
    lines = []
    for violation in violations:
        lines.append(f"- {violation['id']}: {violation['help']} ({violation.get('impact')})")
        for node in violation.get("nodes", []):
            lines.append(f"    at {node.get('target')}: {node.get('failureSummary', '')[:300]}")
    return "\n".join(lines)


@pytest.fixture
def axe_check() -> Callable[[Page], None]:
    """Assert axe finds no WCAG A/AA violations on the page, listing them if it does."""

    def check(page: Page) -> None:
        violations = axe_violations(page)
        report = describe_violations(violations)
        if violations:
            print(f"axe violations on {page.url}:\n{report}")
        assert len(violations) == 0, f"axe violations on {page.url}:\n{report}"

    return check


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """Save a full-page screenshot to test-artifacts/screenshots/ (git ignores it)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


# --- Every page of the app, for the accessibility and reading-age checks -----------------

# Rules under these prefixes are not pages people read: files, JSON, the public ledger,
# health checks, or links that change state when followed (language, sign out).
NOT_PAGES = (
    "/assets/",
    "/static/",
    "/govuk/",
    "/ledger/",
    "/healthz",
    "/language/",
    "/sign-out",
    "/api/",
    "/oauth/",
    "/.well-known/",
)
DEPARTMENT = "dept-housing"
OTHER_DEPARTMENT = "dept-benefits"
CASE = "HOU-2291"


@dataclass
class World:
    """A citizen with facts, a story, a grant, access events and a helper; URL values."""

    sam: Citizen
    worker_account_id: str
    values: dict[str, str]


@pytest.fixture
def world(live_server: LiveServer, make_citizen: MakeCitizen, make_worker: Any) -> World:
    """Sam (with a grant that a department used, and was once refused) and Jo, who helps Sam."""
    from consent.access import fetch_for_department
    from consent.delegations import delegations_for_citizen
    from consent.grants import GrantRequest, give_grant

    sam = make_citizen()
    worker_id = make_worker(sam)
    vault = live_server.vault
    with session_scope(live_server.engine) as session:
        actor = citizen_actor(sam.account_id, sam.citizen_id)
        request = GrantRequest(
            department_id=DEPARTMENT,
            purpose_code="emergency_housing",
            purpose_text="To find you somewhere safe to stay tonight.",
            data_points=("identity.name", "housing.status"),
            case_reference=CASE,
            duration_days=30,
            data_life_days=90,
            max_fetches=10,
            story_topics=("housing",),
        )
        grant_id = give_grant(session, vault, actor, request).grant.id
        # A second department may fetch once only, so its second try is refused.
        once = replace(request, department_id=OTHER_DEPARTMENT, max_fetches=1)
        once_id = give_grant(session, vault, actor, once).grant.id
        delegation_id = delegations_for_citizen(session, sam.citizen_id)[0].id
        # A passkey row (its key is never used here: pages only list and remove it).
        passkey = Passkey(
            account_id=sam.account_id,
            credential_id=b"e2e-credential",
            public_key=b"e2e-public-key",
            name="My phone",
            created_at=datetime.now(UTC),
        )
        session.add(passkey)
        passkey_id = passkey.id
    for grant, department in ((grant_id, DEPARTMENT), (once_id, OTHER_DEPARTMENT)):
        for _ in range(2):
            with session_scope(live_server.engine) as session:
                fetch_for_department(
                    session,
                    vault,
                    grant,
                    department,
                    acting_officer="A. Officer",
                    case_reference=CASE,
                )
    decision_id, challenge_id = _decision_and_challenge(live_server, sam, grant_id)
    values = {
        "decision_id": decision_id,
        "challenge_id": challenge_id,
        "topic": "housing",
        "key": "identity.name",
        "version": "1",
        "grant_id": grant_id,
        "delegation_id": delegation_id,
        "citizen_id": sam.citizen_id,
        "person_id": sam.citizen_id,
        "token": "not-a-real-token",
        "passkey_id": passkey_id,
    }
    return World(sam, worker_id, values)


def _decision_and_challenge(
    live_server: LiveServer, sam: Citizen, grant_id: str
) -> tuple[str, str]:
    """The department decides using what it was given, and Sam says the decision is wrong."""
    from consent.challenges import open_challenge
    from consent.decisions import DecisionInput, record_decision

    vault = live_server.vault
    decided = DecisionInput(
        case_reference=CASE,
        title="Emergency housing",
        outcome="You can stay at Elm House from tonight.",
        reasons="You told us you have nowhere safe to stay.",
        automated=True,
        algorithm_name="Housing triage",
        algorithm_version="2.1",
        officer_name="Priya Shah",
        officer_role="Housing manager",
        data_points_used=[("identity.name", 1), ("housing.status", 1)],
        other_information_used=[{"description": "Night shelter places", "source": "The council"}],
    )
    with session_scope(live_server.engine) as session:
        decision_id = record_decision(
            session, vault, DEPARTMENT, grant_id, decided, acting_officer="A. Officer"
        ).id
    with session_scope(live_server.engine) as session:
        actor = citizen_actor(sam.account_id, sam.citizen_id)
        words = "You did not ask me where I can stay."
        challenge_id = open_challenge(
            session, vault, actor, decision_id=decision_id, reason=words
        ).id
    return decision_id, challenge_id


def page_paths(app: Flask, values: dict[str, str]) -> tuple[list[str], list[str]]:
    """Every GET page of the app (arguments filled from ``values``), and rules we cannot fill.

    Built from the URL map, so a page added later is checked without anyone listing it.
    """
    paths: set[str] = set()
    unfilled: list[str] = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in (rule.methods or ()) or rule.rule.startswith(NOT_PAGES):
                continue
            if any(name not in values for name in rule.arguments):
                unfilled.append(rule.rule)
                continue
            from flask import url_for

            paths.add(url_for(rule.endpoint, **{n: values[n] for n in rule.arguments}))
    return sorted(paths), sorted(unfilled)


def visit_pages(context: BrowserContext, paths: list[str]) -> Iterator[tuple[str, int, Page]]:
    """Open each page that answers with HTML, once: pages that redirect to one seen are skipped.

    Yields the path asked for, the HTTP status and the browser page showing it.
    """
    page = context.new_page()
    seen: set[str] = set()
    for path in paths:
        # Ask first without the page: downloads (the JSON copy) would break page.goto, and
        # pages that redirect to one already seen need not be opened twice.
        answer = context.request.get(path)
        disposition = answer.headers.get("content-disposition", "")
        is_html = "text/html" in answer.headers.get("content-type", "")
        landed = answer.url.split("#")[0]
        answer.dispose()
        if not is_html or "attachment" in disposition or landed in seen:
            continue
        seen.add(landed)
        response = page.goto(path)
        assert response is not None, path
        yield path, response.status, page
    page.close()
