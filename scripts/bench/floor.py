"""How fast could any durably recorded, DPoP-checked fetch be here? The floor beside bare Flask.

    .venv/bin/python scripts/bench/floor.py [--seconds 20] [--rounds 3] [--connections 32]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Serves ``scripts/bench/bare_flask.py`` and ``scripts/bench/floor_app.py`` the same way as
``data_api.py`` serves ours and bare Flask (gunicorn, 4 sync workers, wrk with 32 connections
and a fresh DPoP proof per request), alternately, and prints the medians and the ratio
floor ÷ bare. The floor app does only what every recorded fetch must: one ES256 proof check
and one durable SQLite commit (see its docstring). Its ratio is the ceiling for the data API's
"ours ÷ bare Flask" goal on this machine: if it is under 0.5, no code can meet that goal here
without giving up one durable commit per answered fetch.

Also prints the rate of durable commits one process can make on this disk (``BEGIN
IMMEDIATE``, one small INSERT, ``COMMIT`` with synchronous=FULL, in a loop): SQLite has one
writer at a time, so no number of workers answers more recorded fetches per second than that.

Exits 1 if any request failed (a replayed or missing proof, an error status).
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import data_api as bench  # beside this file
import floor_app


def commit_rate(folder: Path, seconds: float = 3.0) -> float:
    """Durable single-row commits per second one connection makes on this disk."""
    connection = sqlite3.connect(folder / "commits.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE row (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    commits = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO row (body) VALUES (?)", ("x" * 200,))
        connection.execute("COMMIT")
        commits += 1
    rate = commits / (time.perf_counter() - started)
    connection.close()
    return rate


def main() -> None:
    """Serve both apps, run wrk alternately, print the medians and the ceiling."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.add_wrk_options(parser, pairs="bare+floor")
    parser.add_argument("--proofs", type=int, default=100_000, help="proofs signed per run")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to make a scratch database on for the floor app (dropped "
        "afterwards); default: SQLite in a temp folder",
    )
    args = parser.parse_args()
    if not 1 <= args.seconds <= bench.MAX_SECONDS:
        sys.exit(f"--seconds must be 1 to {bench.MAX_SECONDS}: DPoP proofs are good for 60 s only.")

    with (
        tempfile.TemporaryDirectory(prefix="tellonce-floor-") as name,
        bench.scratch_database(Path(name), args.database_url) as database_url,
    ):
        folder = Path(name)
        print("Building the scratch database for tokens ...", file=sys.stderr)
        scenario = bench.build(folder)
        floor_port, bare_port = bench.free_port(), bench.free_port()
        env = bench.app_environment(folder, floor_port)
        env["FLOOR_DATABASE"] = database_url or str(folder / "floor.db")
        floor_app.create_schema(env["FLOOR_DATABASE"])
        with (
            bench.gunicorn(
                "floor_app:create_app()", floor_port, args.workers, env, folder / "f.log"
            ) as floor,
            bench.gunicorn(
                "bare_flask:create_app()", bare_port, args.workers, env, folder / "b.log"
            ) as bare,
        ):
            print(
                f"gunicorn -w {args.workers} (sync) for each app; wrk -t {args.threads} "
                f"-c {args.connections} -d {args.seconds}s; {os.cpu_count()} CPUs; "
                f"load before: {bench.load()}",
                flush=True,
            )
            runs: dict[str, list[bench.Run]] = {"bare": [], "floor": []}
            problems: list[str] = []
            bench.wrk(bare, 2, args.connections, args.threads)  # warm-up
            for _ in range(args.rounds):
                runs["bare"].append(bench.wrk(bare, args.seconds, args.connections, args.threads))
                bench.show("bare", runs["bare"][-1])
                prefix = folder / f"proofs-{time.monotonic_ns()}-"
                bench.write_proofs(scenario, floor, args.proofs, args.threads, prefix)
                run = bench.wrk(floor, args.seconds, args.connections, args.threads, str(prefix))
                runs["floor"].append(run)
                bench.show("floor", run)
                if run.failed or run.out_of_proofs:
                    problems.append(f"floor: {run.failures() or 'ran out of proofs'}")
            problems += [f"bare: {r.failures()}" for r in runs["bare"] if r.failed]
            print(f"load after: {bench.load()}")
        rate = commit_rate(folder)
        scenario.engine.dispose()

    bare_rps = statistics.median(r.rps for r in runs["bare"])
    floor_rps = statistics.median(r.rps for r in runs["floor"])
    floor_p99 = statistics.median(r.p99_ms for r in runs["floor"])
    ratio = floor_rps / bare_rps
    print(f"\nMedians of {args.rounds} runs each:")
    print(f"  bare Flask        {bare_rps:>8.0f} req/s")
    print(f"  floor             {floor_rps:>8.0f} req/s   p99 {floor_p99:6.1f} ms")
    print(f"  ratio floor/bare  {ratio:.2f}")
    print(f"  durable SQLite commits, one connection: {rate:,.0f}/s ({1000 / rate:.2f} ms each)")
    goal = bench.GOAL_RATIO_POSTGRESQL if args.database_url else bench.GOAL_RATIO
    verdict = "reachable" if ratio >= goal else "NOT reachable"
    print(
        f"The data API goal (ours/bare >= {goal}) is {verdict} here by any code that "
        f"checks a proof and commits once per fetch: the floor reaches {ratio:.2f}; "
        f"{math.floor(rate):,} commits/s is {rate / bare_rps:.2f} of bare Flask."
    )
    if problems:
        print("FAILED: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
