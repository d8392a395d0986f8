"""The app as production runs it, for the many-workers and crash tests (and scripts/soak).

``Server`` runs ``web:create_app`` under gunicorn with sync workers, in a process group of its
own, so it can be killed outright (SIGKILL to the master and every worker) and started again.
``HttpClient`` is just enough of Flask's test client, over real HTTP, for
``tests.oauth.harness.DepartmentSide`` to drive PAR, token, data and revoke against it.
``Deployment`` is a database and key file of the test's own, with people and a department in it.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from sqlalchemy.engine import Engine

import connectors.events  # noqa: F401  (declare every event kind, as the app does)
import consent.events  # noqa: F401
import vault.events  # noqa: F401
from connectors.departments import register_department
from tests.connectors.dpop_client import new_key
from tests.interop.conftest import SIGN_IN_COOKIE, Browser
from tests.oauth.harness import HOUSING_DETAILS, REDIRECT_URI, DepartmentSide, registration
from tests.web.citizen.conftest import csrf_of
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.db import session_scope
from vault.keys import LocalKeyFileProvider
from vault.records import record_data_point, record_story_section
from vault.services import Vault
from vault.sessions import start_session

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "scale.tellonce/ledger"
GUNICORN = Path(sys.executable).with_name("gunicorn")
START_TIMEOUT = 60.0  # seconds for gunicorn to answer /healthz (a loaded 2-core machine)
REQUEST_TIMEOUT = 20.0
FACTS: dict[str, Any] = {
    "identity.name": "Sam Taylor",
    "contact.address": {"lines": ["10 High Street"], "town": "Leeds", "postcode": "LS1 1AA"},
    "money.income_monthly": 125_000,  # pence
}
_CODE = re.compile(r"[?&]code=([^&]+)")


def free_port() -> int:
    """A TCP port nobody is listening on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Answer:
    """One HTTP answer, shaped like a Flask test response where DepartmentSide reads it."""

    status_code: int
    headers: dict[str, str]
    body: bytes
    sent_at: float  # time.monotonic() just before the request went out
    received_at: float  # time.monotonic() once the whole answer was read

    def get_json(self) -> Any:
        """The body as JSON (None if it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class HttpClient:
    """GET and form POST to one server, a new connection each time (as a load balancer sees).

    A connection the server drops (it was killed) raises ``OSError``: callers decide.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        """GET a path (query string included)."""
        return self.send("GET", path, None, headers)

    def post(
        self, path: str, data: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Answer:
        """POST a form; list values are sent as repeated fields."""
        return self.send("POST", path, urlencode(data or {}, doseq=True), headers)

    def send(
        self, method: str, path: str, body: str | None, headers: dict[str, str] | None
    ) -> Answer:
        """Send one request and read the whole answer."""
        sending = {"Host": f"{self.host}:{self.port}", **(headers or {})}
        if body is not None:
            sending["Content-Type"] = "application/x-www-form-urlencoded"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)
        try:
            sent_at = time.monotonic()
            connection.request(method, path, body=body, headers=sending)
            response = connection.getresponse()
            data = response.read()
            received_at = time.monotonic()
            found = {name.lower(): value for name, value in response.getheaders()}
            return Answer(response.status, found, data, sent_at, received_at)
        finally:
            connection.close()


class Server:
    """``web:create_app`` under gunicorn (sync workers) on a port of its own; killable."""

    def __init__(
        self, env: dict[str, str], port: int, log: Path, *, workers: int = 4, app: str = ""
    ) -> None:
        self.env, self.port, self.log, self.workers = env, port, log, workers
        self.app = app or "web:create_app()"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start gunicorn and wait until /healthz answers 200."""
        command = [str(GUNICORN), *_own_control_socket(), "-w", str(self.workers)]
        command += ["-b", f"127.0.0.1:{self.port}", "--timeout", "60", self.app]
        with self.log.open("a") as log_file:
            log_file.write(f"\n--- start {self.starts + 1} ---\n")
            log_file.flush()
            # Its own session (process group): a kill reaches the master and every worker.
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log_file, stderr=log_file,
                start_new_session=True,
            )  # fmt: skip
        self.starts += 1
        self.wait_until_up()

    def wait_until_up(self) -> None:
        """Return once /healthz answers 200; fail with the log if gunicorn dies or never does."""
        assert self.process is not None
        client = HttpClient(self.url)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gunicorn stopped while starting:\n{self.tail()}")
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"gunicorn did not answer within {START_TIMEOUT} s:\n{self.tail()}")

    def kill(self) -> None:
        """SIGKILL the master and every worker at once: no clean-up runs anywhere."""
        self._signal_group(signal.SIGKILL)

    def stop(self) -> None:
        """Stop gunicorn (gracefully if it listens, else by force)."""
        self._signal_group(signal.SIGTERM, wait=15.0)

    def _signal_group(self, number: int, wait: float = 10.0) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        with contextlib.suppress(ProcessLookupError):  # it had already gone
            os.killpg(process.pid, number)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        # Workers may outlive a killed master by a moment; wait until the port is free.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _listening(self.port):
            time.sleep(0.05)

    def tail(self, chars: int = 3000) -> str:
        """The end of gunicorn's log."""
        return self.log.read_text(errors="replace")[-chars:]


@functools.cache
def _own_control_socket() -> tuple[str, ...]:
    # gunicorn 24+ opens a control socket at one fixed path: two servers would share it.
    help_text = subprocess.run([GUNICORN, "--help"], capture_output=True, text=True).stdout
    return ("--no-control-socket",) if "--no-control-socket" in help_text else ()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Person:
    """Someone with a vault, signed in: the cookie their browser holds."""

    citizen_id: str
    account_id: str
    session_token: str


@dataclass
class Deployment:
    """A database and a key file of the test's own, with people and one department."""

    database_url: str
    engine: Engine
    key_file: Path
    folder: Path
    port: int = field(default_factory=free_port)
    department_key: Any = field(default_factory=lambda: new_key("ES256"))
    client_id: str = ""
    people: list[Person] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def vault(self) -> Vault:
        """The vault as the app sees it (same keys, same ledger origin, the real clock)."""
        return Vault(keys=LocalKeyFileProvider(self.key_file), ledger_origin=ORIGIN)

    def env(self, **extra: str) -> dict[str, str]:
        """The app's settings, as environment variables for gunicorn."""
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "TELLONCE_KEY_FILE": str(self.key_file),
            "TELLONCE_MAIL_DIR": str(self.folder / "mail"),
            "TELLONCE_LEDGER_ORIGIN": ORIGIN,
            "BASE_URL": self.base_url,
            "SECRET_KEY": "scale-test-secret",
            **extra,
        }

    def populate(self, people: int) -> None:
        """Register the department and add people, each with facts, a story and a session."""
        vault = self.vault()
        with session_scope(self.engine) as session:
            metadata = registration(self.department_key)
            metadata["redirect_uris"] = [REDIRECT_URI]
            self.client_id = register_department(session, vault, metadata).department.id
        for n in range(people):
            with session_scope(self.engine) as session:
                citizen = create_citizen(session, vault)
                account = create_account(
                    session, vault, f"person{n}@example.org", citizen_id=citizen.id
                )
                by = f"citizen:{account.id}"
                for key, value in FACTS.items():
                    record_data_point(session, vault, citizen.id, key, value, recorded_by=by)
                record_story_section(
                    session, vault, citizen.id, "housing", "I sleep on a sofa.", recorded_by=by
                )
                token = start_session(session, vault, account.id)
                self.people.append(Person(citizen.id, account.id, token))

    def department(self) -> DepartmentSide:
        """The department's software, speaking HTTP to the server (one per client thread)."""
        return DepartmentSide(
            HttpClient(self.base_url), self.base_url, self.client_id, self.department_key
        )

    def browser(self, person: Person) -> Browser:
        """The person's browser, signed in."""
        return Browser(self.base_url, {SIGN_IN_COOKIE: person.session_token})


def details(case_reference: str, max_fetches: int = 1000) -> dict[str, Any]:
    """What the department asks for, under a case reference that names this one consent."""
    return {**HOUSING_DETAILS, "case_reference": case_reference, "max_fetches": max_fetches}


def say_yes(browser: Browser, side: DepartmentSide, request_uri: str) -> str:
    """The person opens the consent page and presses Share; return the code (the answer).

    Raises AssertionError on any answer a working server would not give.
    """
    query = urlencode({"client_id": side.client_id, "request_uri": request_uri})
    opened = browser.get(f"/oauth/authorize?{query}")
    assert opened.status == 303 and opened.location, (opened.status, opened.text[:500])
    page = browser.get(opened.location)
    assert page.status == 200, (page.status, page.text[:500])
    form: dict[str, Any] = {"csrf_token": csrf_of(page.text), "share": "Share"}
    form["keep"] = HOUSING_DETAILS["optional"]  # keep the optional items ticked
    answered = browser.post(opened.location, form)
    assert answered.status == 303 and answered.location, (answered.status, answered.text[:500])
    assert answered.location.startswith(REDIRECT_URI), answered.location
    found = _CODE.search(answered.location)
    assert found, answered.location
    return found.group(1)


def stop_sharing(browser: Browser, grant_id: str) -> float:
    """The person stops sharing a grant; return when the answer came back (monotonic)."""
    page = browser.get(f"/sharing/{grant_id}/stop")
    assert page.status == 200, (page.status, page.text[:500])
    done = browser.post(f"/sharing/{grant_id}/stop", {"csrf_token": csrf_of(page.text)})
    acknowledged = time.monotonic()
    assert done.status in (302, 303), (done.status, done.text[:500])
    return acknowledged
