"""Benchmark GET /api/v1/data under gunicorn, beside a bare Flask endpoint served the same way.

    .venv/bin/python scripts/bench/data_api.py [--seconds 20] [--connections 32] [--workers 4]

Builds a scratch SQLite database (in a temporary folder, deleted afterwards) with one citizen
(three data points and a housing story), a registered department and, before each measured
run, fresh grants (10,000 fetches each, as many as the run needs) with DPoP-bound access
tokens. It pre-signs one fresh DPoP proof per request it expects and splits them into one file
per wrk thread, so no proof is sent twice. Then it starts both apps under gunicorn (sync
workers): ours (``web:create_app()``, SQLite synchronous=FULL, so every fetch waits for its
durable access event and ledger entry) and ``scripts/bench/bare_flask.py``; it runs wrk against
each in turn (bare, ours, bare, ours, ...) and prints the medians of requests/s and p99, the
ratio ours/bare and PASS/MISS for the goals of issue 5 (ratio >= 0.5, p99 <= 20 ms).

It exits 0 whether the goals are met or not (it is a measurement), and 1 if any request
failed, a proof was missing, or the database does not hold one served access per answer.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402
from sqlmodel import col  # noqa: E402

import connectors.events  # noqa: E402, F401  (declare every event kind, as the app does)
import consent.events  # noqa: E402, F401
import vault.events  # noqa: E402, F401
from connectors.departments import register_department  # noqa: E402
from connectors.tokens import new_secret, save_token  # noqa: E402
from consent.actors import citizen as citizen_actor  # noqa: E402
from consent.grants import MAX_FETCHES, GrantRequest, give_grant  # noqa: E402
from consent.models import AccessEvent  # noqa: E402
from tests.connectors.dpop_client import make_proof, new_key  # noqa: E402
from vault.accounts import create_account  # noqa: E402
from vault.citizens import create_citizen  # noqa: E402
from vault.db import make_engine, session_scope  # noqa: E402
from vault.keys import LocalKeyFileProvider, init_key_file  # noqa: E402
from vault.migrate import upgrade  # noqa: E402
from vault.records import record_data_point, record_story_section  # noqa: E402
from vault.services import Vault  # noqa: E402

ORIGIN = "bench.tellonce/ledger"
PATH = "/api/v1/data"
CASE = "HOU-2291"
OFFICER = "Bench Officer"
PURPOSE = "emergency_housing"
DATA_POINTS = {
    "identity.name": "Sam Taylor",
    "contact.address": {"lines": ["10 High Street"], "town": "Leeds", "postcode": "LS1 1AA"},
    "money.income_monthly": 125_000,  # pence
}
LUA = Path(__file__).with_name("wrk_dpop.lua")
GOAL_RATIO = 0.5  # on SQLite (issue 5)
GOAL_RATIO_POSTGRESQL = 0.4  # issue 7
GOAL_P99_MS = 20.0
MIN_PROOFS = 20_000
# A proof's iat may be at most 60 s old when it arrives (connectors.dpop.PROOF_WINDOW); the
# proofs are signed just before a run, so a run (plus signing them) must fit inside that.
MAX_SECONDS = 45


@dataclass
class Scenario:
    """The scratch database and who is in it."""

    engine: Engine
    vault: Vault
    account_id: str
    citizen_id: str
    department_id: str
    dpop_key: Any  # the department's DPoP key (joserfc ECKey)


@dataclass
class Run:
    """What wrk measured in one run."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: dict[str, int]  # wrk's counts: connect, read, write, timeout, status (>= 400)
    out_of_proofs: int

    @property
    def failed(self) -> int:
        """Requests that got no answer, or an error status."""
        return sum(self.errors.values())

    def failures(self) -> str:
        """The non-zero error counts, in words."""
        return ", ".join(f"{n} {kind}" for kind, n in self.errors.items() if n)


def registration(key: Any) -> dict[str, Any]:
    """RFC 7591 metadata for a housing department allowed to ask for the benchmark's data."""
    public = key.as_dict(private=False)
    public["kid"] = key.thumbprint()
    return {
        "client_name": "Bench housing department",
        "redirect_uris": ["https://housing.bench.example/callback"],
        "jwks": {"keys": [public]},
        "token_endpoint_auth_method": "private_key_jwt",
        "tellonce": {
            "purposes": [
                {
                    "code": PURPOSE,
                    "description": "To find you somewhere safe to stay.",
                    "data_points": list(DATA_POINTS),
                    "story_topics": ["housing"],
                }
            ],
            "accountable_officer": {
                "name": "Bench Officer",
                "role": "Head of Housing Options",
                "email": "officer@housing.bench.example",
            },
        },
    }


def build(folder: Path, database_url: str | None = None) -> Scenario:
    """Migrate the scratch database and add the citizen, her data and the department.

    The key file goes in ``folder``; so does the database, unless ``database_url`` names an
    empty one elsewhere (other benchmarks use this for PostgreSQL).
    """
    key_file = folder / "keys.json"
    init_key_file(key_file)
    engine = make_engine(database_url or f"sqlite:///{folder}/bench.db", synchronous="FULL")
    upgrade(engine)
    vault = Vault(keys=LocalKeyFileProvider(key_file), ledger_origin=ORIGIN)
    with session_scope(engine) as session:
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, "sam@example.org", citizen_id=citizen.id)
        by = f"citizen:{account.id}"
        for key, value in DATA_POINTS.items():
            record_data_point(session, vault, citizen.id, key, value, recorded_by=by)
        record_story_section(
            session, vault, citizen.id, "housing", "I sleep on a friend's sofa.", recorded_by=by
        )
        department = register_department(session, vault, registration(new_key("ES256")))
        ids = (account.id, citizen.id, department.department.id)
    return Scenario(engine, vault, *ids, dpop_key=new_key("ES256"))


def mint_tokens(scenario: Scenario, fetches: int) -> list[str]:
    """Give enough real grants for ``fetches`` fetches and one DPoP-bound token for each."""
    tokens = []
    actor = citizen_actor(scenario.account_id, scenario.citizen_id)
    with session_scope(scenario.engine) as session:
        for _ in range(math.ceil(fetches / MAX_FETCHES)):
            request = GrantRequest(
                department_id=scenario.department_id,
                purpose_code=PURPOSE,
                purpose_text="To find you somewhere safe to stay.",
                data_points=tuple(DATA_POINTS),
                case_reference=CASE,
                duration_days=30,
                data_life_days=90,
                max_fetches=MAX_FETCHES,
                story_topics=("housing",),
            )
            grant = give_grant(session, scenario.vault, actor, request).grant
            token = new_secret()
            save_token(
                session,
                access_token=token,
                refresh_token=None,
                department_id=scenario.department_id,
                grant_id=grant.id,
                code_id=None,
                scope="",
                jkt=scenario.dpop_key.thumbprint(),
                now=scenario.vault.clock(),
            )
            tokens.append(token)
    return tokens


def write_proofs(scenario: Scenario, base_url: str, count: int, threads: int, prefix: Path) -> None:
    """Sign ``count`` fresh proofs (no grant used more than it allows), one file per thread."""
    tokens = mint_tokens(scenario, count)
    url = base_url + PATH
    lines = [
        f"{token}\t{make_proof(scenario.dpop_key, 'GET', url, access_token=token)}\n"
        for n in range(count)
        for token in (tokens[n // MAX_FETCHES],)
    ]
    for thread in range(threads):  # contiguous, disjoint slices
        chunk = lines[thread * count // threads : (thread + 1) * count // threads]
        Path(f"{prefix}{thread}.txt").write_text("".join(chunk), encoding="ascii")


def access_counts(engine: Engine) -> dict[str, int]:
    """How many access events the database holds, by result (served, refused)."""
    with session_scope(engine) as session:
        rows = session.execute(
            select(col(AccessEvent.result), func.count()).group_by(col(AccessEvent.result))
        ).all()
    return {str(result): int(n) for result, n in rows}


def app_environment(folder: Path, port: int, database_url: str | None = None) -> dict[str, str]:
    """Settings for our app under gunicorn on ``port``, over the scenario ``build`` made."""
    return {
        **os.environ,
        "DATABASE_URL": database_url or f"sqlite:///{folder}/bench.db",
        "TELLONCE_KEY_FILE": str(folder / "keys.json"),
        "TELLONCE_MAIL_DIR": str(folder / "mail"),
        "TELLONCE_LEDGER_ORIGIN": ORIGIN,
        "TELLONCE_SQLITE_SYNCHRONOUS": "FULL",  # durable: each fetch waits for its fsync
        "BASE_URL": f"http://127.0.0.1:{port}",
        "SECRET_KEY": "bench-secret",
        # The per-token API limit stays on (its cost is measured) but far above the load.
        "TELLONCE_API_RATE_LIMIT": "10000000/minute",
    }


def free_port() -> int:
    """A TCP port nobody is listening on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def gunicorn(app: str, port: int, workers: int, env: dict[str, str], log: Path) -> Iterator[str]:
    """Serve ``app`` with gunicorn sync workers until the block ends; yield its base URL."""
    executable = str(Path(sys.executable).with_name("gunicorn"))
    command = [executable, "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    command += ["--pythonpath", f"{ROOT},{Path(__file__).parent}", app]
    # Bandit B603 (here and below): our own gunicorn, an argument list we built, no shell.
    help_text = subprocess.run([executable, "--help"], capture_output=True, text=True).stdout  # nosec B603
    if "--no-control-socket" in help_text:  # gunicorn 24+: two servers would share one socket
        command.insert(1, "--no-control-socket")
    with log.open("w") as log_file:
        server = subprocess.Popen(  # nosec B603
            command, cwd=ROOT, env=env, stdout=log_file, stderr=log_file
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        # The bare app has only PATH; ours and the floor app say they are up at /healthz.
        ready = PATH if app.startswith("bare_flask:") else "/healthz"
        wait_until_up(base_url + ready, server, log)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    """Wait for a server to answer 200, or stop with its log if it dies or never does."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"gunicorn stopped while starting:\n{log.read_text()[-3000:]}")
        try:
            # Our own http://127.0.0.1 server (Bandit B310 and ruff S310 waived).
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 # nosec B310
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"gunicorn did not answer {url} within 60 s:\n{log.read_text()[-3000:]}")


def wrk(
    url: str, seconds: int, connections: int, threads: int, prefix: str = "", path: str = PATH
) -> Run:
    """Run wrk once on ``url + path`` (with proofs from ``prefix`` files, if given)."""
    args = [path, prefix, CASE, OFFICER] if prefix else [path]
    threads = min(threads, connections)
    # A long timeout, so that slow answers count in the latencies instead of being left out.
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"]
    command += ["--timeout", "30s", "--latency", "-s", str(LUA), url + path, "--", *args]
    # Bandit B603: wrk with an argument list we built, no shell.
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout  # nosec B603
    line = next((x for x in output.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if line is None:
        sys.exit(f"wrk printed no summary:\n{output}")
    result = json.loads(line.removeprefix("BENCH_RESULT "))
    return Run(
        rps=result["requests"] / (result["duration_us"] / 1e6),
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        requests=result["requests"],
        errors={kind: result[kind] for kind in ("connect", "read", "write", "timeout", "status")},
        out_of_proofs=result["exhausted"],
    )


def measure_ours(
    scenario: Scenario, url: str, seconds: int, args: argparse.Namespace, proofs: int, folder: Path
) -> tuple[Run, list[str]]:
    """One run against our API with fresh proofs; also check the database saw every answer."""
    prefix = folder / f"proofs-{time.monotonic_ns()}-"
    write_proofs(scenario, url, proofs, args.threads, prefix)
    before = access_counts(scenario.engine)
    run = wrk(url, seconds, args.connections, args.threads, str(prefix))
    after = access_counts(scenario.engine)
    for thread in range(args.threads):
        Path(f"{prefix}{thread}.txt").unlink()
    served = after.get("served", 0) - before.get("served", 0)
    refused = after.get("refused", 0) - before.get("refused", 0)
    problems = []
    if run.failed:
        problems.append(f"requests to our API failed: {run.failures()}")
    if run.out_of_proofs:
        problems.append(f"wrk ran out of proofs ({proofs:,} signed): raise --min-proofs")
    if refused:
        problems.append(f"{refused} fetches were refused by the consent layer")
    if served < run.requests:
        problems.append(f"only {served:,} access events were recorded for {run.requests:,} answers")
    return run, problems


@contextmanager
def scratch_database(folder: Path, database_url: str | None) -> Iterator[str | None]:
    """Yield the URL of a new empty PostgreSQL database (dropped afterwards), or None."""
    if database_url is None:
        yield None
        return
    url = make_url(database_url)
    name = f"tellonce_bench_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def show(label: str, run: Run) -> None:
    """Print one run's figures."""
    print(
        f"  {label:<5}{run.rps:>9.0f} req/s   p50 {run.p50_ms:6.1f} ms   p99 {run.p99_ms:6.1f} ms"
        f"   ({run.requests:,} requests, {run.failed} failed)",
        flush=True,
    )


def load() -> str:
    """The 1, 5 and 15 minute load averages, as uptime prints them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def add_wrk_options(parser: argparse.ArgumentParser, *, pairs: str) -> None:
    """The options every side-by-side benchmark shares: run length, load, workers, rounds."""
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers per app")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rounds", type=int, default=3, help=f"{pairs} pairs (median taken)")


def main() -> None:
    """Build the data, serve both apps, run wrk alternately and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_wrk_options(parser, pairs="bare+ours")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up for each app")
    parser.add_argument("--min-proofs", type=int, default=MIN_PROOFS)
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to make a scratch database on (dropped afterwards), for "
        "example postgresql://postgres@127.0.0.1:5432/postgres; default: SQLite in a temp folder",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: install it with `apt-get install -y wrk`, then rerun.")
    if not 1 <= args.seconds <= MAX_SECONDS:
        sys.exit(f"--seconds must be 1 to {MAX_SECONDS}: DPoP proofs are good for 60 s only.")

    with (
        tempfile.TemporaryDirectory(prefix="tellonce-bench-") as name,
        scratch_database(Path(name), args.database_url) as database_url,
    ):
        folder = Path(name)
        print(f"Building the scratch database ({database_url or folder}) ...", file=sys.stderr)
        scenario = build(folder, database_url)
        ours_port, bare_port = free_port(), free_port()
        env = app_environment(folder, ours_port, database_url)
        with (
            gunicorn("web:create_app()", ours_port, args.workers, env, folder / "ours.log") as ours,
            gunicorn(
                "bare_flask:create_app()", bare_port, args.workers, env, folder / "bare.log"
            ) as bare,
        ):
            print(
                f"gunicorn -w {args.workers} (sync) for each app; wrk -t {args.threads} "
                f"-c {args.connections} -d {args.seconds}s --latency; {os.cpu_count()} CPUs; "
                f"load before: {load()}",
                flush=True,
            )
            # Warm-up: workers import lazily and fill caches; it also tells how many proofs a
            # run needs (twice the rate seen, so a faster steady state cannot run out).
            wrk(bare, args.warmup, args.connections, args.threads)
            warm, problems = measure_ours(
                scenario, ours, args.warmup, args, args.min_proofs, folder
            )
            proofs = max(args.min_proofs, math.ceil(2 * warm.rps * args.seconds))
            runs: dict[str, list[Run]] = {"bare": [], "ours": []}
            for _ in range(args.rounds):
                runs["bare"].append(wrk(bare, args.seconds, args.connections, args.threads))
                show("bare", runs["bare"][-1])
                run, found = measure_ours(scenario, ours, args.seconds, args, proofs, folder)
                runs["ours"].append(run)
                problems += found
                show("ours", run)
            problems += [f"bare app: {r.failures()}" for r in runs["bare"] if r.failed]
            print(f"load after: {load()}")
        scenario.engine.dispose()  # before the scratch database is dropped
    report(runs, problems, GOAL_RATIO_POSTGRESQL if args.database_url else GOAL_RATIO)


def report(runs: dict[str, list[Run]], problems: list[str], goal_ratio: float) -> None:
    """Print the medians, the ratio and PASS/MISS per goal; exit 1 if anything failed."""
    bare_rps = statistics.median(r.rps for r in runs["bare"])
    ours_rps = statistics.median(r.rps for r in runs["ours"])
    bare_p99 = statistics.median(r.p99_ms for r in runs["bare"])
    ours_p99 = statistics.median(r.p99_ms for r in runs["ours"])
    ratio = ours_rps / bare_rps
    print(f"\nMedians of {len(runs['ours'])} runs each:")
    print(f"  bare Flask      {bare_rps:>8.0f} req/s   p99 {bare_p99:6.1f} ms")
    print(f"  GET {PATH}  {ours_rps:>8.0f} req/s   p99 {ours_p99:6.1f} ms")
    print(f"  ratio ours/bare {ratio:.2f}")
    verdict = "PASS" if ratio >= goal_ratio else "MISS"
    print(f"{verdict}: requests/s ratio {ratio:.2f} (goal >= {goal_ratio})")
    verdict = "PASS" if ours_p99 <= GOAL_P99_MS else "MISS"
    print(f"{verdict}: p99 {ours_p99:.1f} ms (goal <= {GOAL_P99_MS:.0f} ms)")
    if problems:
        print("FAILED: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
