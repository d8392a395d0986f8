"""Crash safety under load: clients give consents and fetch while the app (or its PostgreSQL)
is killed at random moments; afterwards every acknowledged write must be there, whole.

Used by tests/scale/test_crash_safety.py (a small count) and scripts/soak/crash.py (1,000
consents and 20 kills). A consent is acknowledged when the person's browser gets the consent
page's answer (303 back to the department, with a code); an access is served when the
department gets 200 with a receipt. Anything else (a dropped connection, a 503 while the
database is down) is not acknowledged, and the client simply starts a new consent.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.scale.checks import leaf_indexes, ledger_problems
from tests.scale.live import Deployment, Server, details, say_yes
from vault.services import Vault

PG_BIN = Path("/usr/lib/postgresql/15/bin")
NO_LIMITS_APP = 'web:create_app({"RATELIMIT_ENABLED": False})'  # one client, 1,000 consents
Outage = Callable[[], str]  # does one outage and recovers from it; says what it did


@dataclass
class Tally:
    """What the clients were told, and what went wrong on the way."""

    consents: dict[str, str] = field(default_factory=dict)  # case reference -> "" or grant id
    served: dict[str, int] = field(default_factory=dict)  # access id -> ledger index
    abandoned: Counter[str] = field(default_factory=Counter)  # why a consent was given up
    outages: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def one_consent(deployment: Deployment, tally: Tally, person: int, case: str) -> None:
    """PAR, the consent page (Share), the token and a fetch; record each acknowledgement."""
    side = deployment.department()
    browser = deployment.browser(deployment.people[person])
    pushed = side.par(details(case))
    assert pushed.status_code == 201, f"PAR {pushed.status_code}"
    code = say_yes(browser, side, pushed.get_json()["request_uri"])
    with tally.lock:
        tally.consents[case] = ""
    tokens = side.token(code)
    assert tokens.status_code == 200, f"token {tokens.status_code}"
    with tally.lock:
        tally.consents[case] = tokens.get_json()["grant_id"]
    fetched = side.fetch(tokens.get_json()["access_token"], case_reference=case)
    assert fetched.status_code == 200, f"data {fetched.status_code}"
    receipt = fetched.get_json()["receipt"]
    with tally.lock:
        tally.served[receipt["access_id"]] = int(receipt["ledger_index"])


def _reason(error: BaseException) -> str:
    if isinstance(error, AssertionError):
        return str(error.args[0] if error.args else error)[:60]
    return type(error).__name__


def run_load(
    deployment: Deployment,
    consents: int,
    outages: list[Outage],
    *,
    clients: int = 3,
    deadline: float = 600.0,
) -> Tally:
    """Clients give ``consents`` acknowledged consents; an outage strikes at random points."""
    tally = Tally()
    started = time.monotonic()
    finished = threading.Event()
    counter = iter(range(10**9))
    counter_lock = threading.Lock()

    def client(person: int) -> None:
        while not finished.is_set() and time.monotonic() - started < deadline:
            with tally.lock:
                if len(tally.consents) >= consents:
                    return
            with counter_lock:
                case = f"CR-{next(counter):06d}"
            try:
                one_consent(deployment, tally, person, case)
            except (OSError, AssertionError, http.client.HTTPException, ValueError) as error:
                with tally.lock:
                    tally.abandoned[_reason(error)] += 1
                time.sleep(0.05)  # the server is down or restarting: try a new consent soon

    # Outages strike when a random number of consents is acknowledged, then a random moment
    # later (up to 50 ms): somewhere inside some request, never at a quiet point.
    points = sorted(random.sample(range(1, consents), len(outages)))

    def striker() -> None:
        for point, outage in zip(points, outages, strict=True):
            while not finished.is_set() and len(tally.consents) < point:
                time.sleep(0.005)
            if finished.is_set():
                return
            time.sleep(random.uniform(0, 0.05))
            tally.outages.append(outage())

    threads = [threading.Thread(target=client, args=(n % len(deployment.people),)) for n in
               range(clients)]  # fmt: skip
    strike = threading.Thread(target=striker)
    for thread in [*threads, strike]:
        thread.start()
    for thread in threads:
        thread.join()
    finished.set()
    strike.join()
    return tally


def crash_problems(engine: Engine, vault: Vault, tally: Tally, consents: int) -> list[str]:
    """Every acknowledged consent and served access is stored whole, with its leaf."""
    problems = []
    if len(tally.consents) < consents:
        problems.append(f"only {len(tally.consents)} of {consents} consents were acknowledged")
    with engine.connect() as connection:
        grants = {
            str(case): str(grant_id)
            for case, grant_id in connection.execute(text('SELECT case_reference, id FROM "grant"'))
        }
        access = {
            str(access_id): str(result)
            for access_id, result in connection.execute(text("SELECT id, result FROM access_event"))
        }
        unlogged = connection.execute(
            text(
                'SELECT (SELECT count(*) FROM "grant" g WHERE NOT EXISTS (SELECT 1 FROM'
                " ledger_entry e WHERE e.row_table = 'grant' AND e.row_id = g.id)),"
                " (SELECT count(*) FROM access_event a WHERE NOT EXISTS (SELECT 1 FROM"
                " ledger_entry e WHERE e.row_table = 'access_event' AND e.row_id = a.id))"
            )
        ).one()
    lost = [case for case in tally.consents if case not in grants]
    if lost:
        problems.append(f"{len(lost)} acknowledged consents are missing, e.g. {lost[:3]}")
    wrong = [c for c, g in tally.consents.items() if g and grants.get(c) not in (None, g)]
    if wrong:
        problems.append(f"{len(wrong)} consents name another grant than the token said")
    given = leaf_indexes(engine, "grant", "grant.given", [grants[c] for c in tally.consents
                                                           if c in grants])  # fmt: skip
    unleafed = [c for c in tally.consents if c in grants and grants[c] not in given]
    if unleafed:
        problems.append(f"{len(unleafed)} acknowledged consents have no grant.given leaf")
    missing = [a for a in tally.served if access.get(a) != "served"]
    if missing:
        problems.append(f"{len(missing)} served accesses are missing, e.g. {missing[:3]}")
    leaves = leaf_indexes(engine, "access_event", "access.served", tally.served)
    misplaced = [a for a, idx in tally.served.items() if leaves.get(a) != idx]
    if misplaced:
        problems.append(f"{len(misplaced)} served accesses are not at their receipt's index")
    if any(unlogged):
        problems.append(f"rows without a leaf: {unlogged[0]} grants, {unlogged[1]} accesses")
    return problems + ledger_problems(engine, vault)


class ThrowawayPostgres:
    """A PostgreSQL 15 cluster of the test's own (initdb in a temp folder, its own port).

    Only this cluster is ever stopped: the shared server at 5432 is never touched.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.folder = Path(tempfile.mkdtemp(prefix="tellonce-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "postgres.log"

    @staticmethod
    def missing() -> str | None:
        """Why a throwaway cluster cannot be made here (None if it can)."""
        if not (PG_BIN / "initdb").exists():
            return f"{PG_BIN}/initdb is not installed (Debian: postgresql-15)"
        if os.geteuid() == 0 and shutil.which("runuser") is None:
            return "running as root without runuser: initdb refuses root"
        return None

    def _run(self, *args: str) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb and postgres refuse root: run them as postgres
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def create(self) -> None:
        """initdb (trust auth) and start; fsync and synchronous_commit stay on (defaults)."""
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")
        self.start()

    def start(self) -> None:
        """Start (after a crash this replays the WAL first) and wait until it accepts."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "start")  # fmt: skip

    def crash(self) -> str:
        """Stop as a power cut would leave it (immediate: no checkpoint), then start again."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        self.start()
        return "postgres stop -m immediate"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        """Stop it and delete its folder."""
        with contextlib.suppress(subprocess.CalledProcessError):  # it was not running
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


def kill_app(server: Server) -> Outage:
    """An outage: SIGKILL gunicorn (master and workers), then start it again."""

    def outage() -> str:
        server.kill()
        server.start()
        return "app SIGKILL"

    return outage
