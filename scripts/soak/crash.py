"""Crash soak: give 1,000 consents (and a fetch each) over HTTP while the app is killed 20 times.

    .venv/bin/python scripts/soak/crash.py [--consents 1000] [--kills 20] [--postgres]

Builds a scratch deployment in a temporary folder (deleted afterwards): a SQLite database, or
with --postgres a PostgreSQL 15 cluster of its own (initdb, its own port; never the shared
server). It serves the app with gunicorn (sync workers), and clients give consents for real
(PAR, the consent page's Share button, the token) and fetch once each with DPoP. At random
moments it kills gunicorn with SIGKILL (with --postgres: in turn, stops PostgreSQL with
``pg_ctl stop -m immediate``) and starts it again; the clients carry on. At the end it checks
that every acknowledged consent and served access is stored with its ledger leaf, that no row
lacks its leaf, and that ``ledger verify`` passes (tests/scale/crash.py does the work; the CI
test tests/scale/test_crash_safety.py runs a smaller count).

Exits 0 if everything acknowledged survived, 1 if anything was lost or half-written.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402

from tests.scale.crash import (  # noqa: E402
    NO_LIMITS_APP,
    Outage,
    ThrowawayPostgres,
    crash_problems,
    kill_app,
    run_load,
)
from tests.scale.live import Deployment, Server, free_port  # noqa: E402
from vault.db import make_engine  # noqa: E402
from vault.keys import init_key_file  # noqa: E402
from vault.migrate import upgrade  # noqa: E402


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    """Build, serve, load and crash, then check and print what survived."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consents", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--clients", type=int, default=3, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL cluster")
    args = parser.parse_args()
    if not 0 <= args.kills < args.consents:
        sys.exit("--kills must be below --consents (each strikes at a different consent).")
    cluster = None
    with tempfile.TemporaryDirectory(prefix="tellonce-soak-") as name:
        folder = Path(name)
        key_file = folder / "keys.json"
        init_key_file(key_file)
        (folder / "mail").mkdir()
        try:
            if args.postgres:
                why = ThrowawayPostgres.missing()
                if why:
                    sys.exit(f"No throwaway PostgreSQL cluster can be made: {why}")
                cluster = ThrowawayPostgres(free_port())
                cluster.create()
                admin = create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
                with admin.connect() as connection:
                    connection.execute(text('CREATE DATABASE "tellonce"'))
                admin.dispose()
                url = cluster.url("tellonce")
            else:
                url = f"sqlite:///{folder}/tellonce.db"
            engine = make_engine(url)
            upgrade(engine)
            deployment = Deployment(url, engine, key_file, folder)
            deployment.populate(people=args.clients)
            env = deployment.env(TELLONCE_API_RATE_LIMIT="off")
            server = Server(
                env, deployment.port, folder / "gunicorn.log", workers=args.workers,
                app=NO_LIMITS_APP,
            )  # fmt: skip
            outages: list[Outage] = [kill_app(server)] * args.kills
            if cluster is not None:
                outages = [cluster.crash if n % 2 == 0 else kill_app(server)
                           for n in range(args.kills)]  # fmt: skip
            database = "PostgreSQL 15 (throwaway cluster)" if cluster else "SQLite (FULL)"
            print(
                f"{args.consents} consents, {args.kills} outages, {args.clients} clients, "
                f"gunicorn -w {args.workers} (sync), {database}; {os.cpu_count()} CPUs; "
                f"load before: {load()}",
                flush=True,
            )
            started = time.monotonic()
            server.start()
            try:
                tally = run_load(deployment, args.consents, outages, clients=args.clients,
                                 deadline=3600)  # fmt: skip
            finally:
                server.kill()
            if cluster is not None:
                cluster.crash()
            elapsed = time.monotonic() - started
            problems = crash_problems(engine, deployment.vault(), tally, args.consents)
            engine.dispose()
        finally:
            if cluster is not None:
                cluster.destroy()
    print(f"took {elapsed:.0f} s; load after: {load()}")
    print(f"outages: {len(tally.outages)} ({', '.join(sorted(set(tally.outages)))})")
    print(f"acknowledged consents: {len(tally.consents)}; served accesses: {len(tally.served)}")
    given_up = ", ".join(f"{n} {why}" for why, n in tally.abandoned.most_common())
    print(f"consents given up (not acknowledged): {sum(tally.abandoned.values())} ({given_up})")
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        sys.exit(1)
    print("PASS: every acknowledged consent and served access is stored with its leaf; "
          "ledger verify passes")  # fmt: skip


if __name__ == "__main__":
    main()
