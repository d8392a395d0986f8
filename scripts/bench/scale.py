"""PostgreSQL at a million citizens: the same four figures on a small and a big database.

    .venv/bin/python scripts/bench/scale.py [--small-citizens 10000] [--big-citizens 1000000]
        [--samples 300] [--skip-big-verify] [--explain]

It uses two databases made by scripts/scale/generate.py on 127.0.0.1:5432,
``tellonce_scale_small`` and ``tellonce_scale_big``; a missing or empty small one is generated
first (the big one only with ``--generate-big``: it takes about 40 minutes). Both stay in place.

Figures, each measured on both databases in this one run, small and big calls interleaved so
both see the same machine load (the load average is printed beside them):

1. data API fetch: ``consent.access.fetch_for_department`` for a random grant (read the grant,
   open the citizen's key, decrypt the facts, count the fetch, write the access event and its
   ledger leaf), in process; each call rolled back so the databases stay as generated;
2. "who has seen my information", first page: ``access_events_for_citizen`` with the page's
   limit (PAGE_SIZE + 1) for a random citizen;
3. an inclusion proof (``vault.ledger.inclusion_proof``) of a random leaf at the full size;
4. ``ledger verify`` throughput: entries a second of ``verify_ledger`` with rows, over the
   whole small log and (unless ``--skip-big-verify``) the whole big one.

Goal: big <= 1.5x small (for throughput, big >= small / 1.5). The exit code is 0 when figures
were measured (goal met or not) and 1 when something is wrong (an error, a refused fetch, a
proof that does not verify, a ledger that does not verify).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.engine import Engine, make_url  # noqa: E402
from sqlmodel import Session  # noqa: E402

import consent.events  # noqa: E402, F401  (declare every event kind, as the app does)
import vault.events  # noqa: E402, F401
from consent.access import Served, access_events_for_citizen, fetch_for_department  # noqa: E402
from scripts.scale import generate  # noqa: E402
from vault import ledger, merkle  # noqa: E402
from vault.db import make_engine  # noqa: E402
from vault.keys import LocalKeyFileProvider  # noqa: E402
from vault.migrate import upgrade  # noqa: E402
from vault.services import Vault  # noqa: E402
from vault.verify import verify_ledger  # noqa: E402

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
PAGE_SIZE = 20  # web/citizen_sharing.py PAGE_SIZE: the page asks for one more row than it shows
GOAL = 1.5


@dataclass
class Side:
    """One database under test, with what the calls need."""

    name: str
    url: str
    engine: Engine
    vault: Vault
    grants: list[tuple[str, str, str, str]]  # id, department, case reference, citizen
    size: int


def _load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load {one:.2f}/{five:.2f}"


def _database_ready(url: str) -> bool:
    admin = make_engine(make_url(url).set(database="postgres").render_as_string(False))
    try:
        with admin.connect() as connection:
            name = make_url(url).database
            if not connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first():
                return False
        engine = make_engine(url)
        try:
            with engine.connect() as connection:
                size = connection.execute(text("SELECT size FROM ledger_head")).scalar()
            return bool(size)
        except Exception:  # no tables yet: not ready
            return False
        finally:
            engine.dispose()
    finally:
        admin.dispose()


def _side(name: str, url: str, samples: int, seed: int) -> Side:
    key_file = generate.default_key_file(url)
    vault_ = Vault(keys=LocalKeyFileProvider(key_file), ledger_origin=generate.DEFAULT_ORIGIN)
    engine = make_engine(url)
    with engine.connect() as connection:
        # BERNOULLI reads every page, so the sample is spread over the whole table.
        total = connection.execute(
            text("SELECT reltuples FROM pg_class WHERE relname = 'grant'")
        ).scalar()
        percent = min(100.0, 100.0 * samples * 3 / max(1.0, float(total or 1)))
        grants = [
            tuple(row)
            for row in connection.execute(
                text(
                    'SELECT id, department_id, case_reference, citizen_id FROM "grant" '
                    "TABLESAMPLE BERNOULLI (:p) REPEATABLE (:seed) LIMIT :n"
                ),
                {"p": percent, "seed": seed, "n": samples * 2},
            )
        ]
        size = int(connection.execute(text("SELECT size FROM ledger_head")).scalar() or 0)
    # Bandit B311: which grants to fetch, not a secret.
    random.Random(seed).shuffle(grants)  # nosec B311
    return Side(name, url, engine, vault_, grants, size)  # type: ignore[arg-type]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _fetch(side: Side, n: int) -> None:
    grant_id, department, case, _citizen = side.grants[n % len(side.grants)]
    with Session(side.engine) as session:
        result = fetch_for_department(
            session,
            side.vault,
            grant_id,
            department,
            acting_officer="Officer Scale",
            case_reference=case,
        )
        if not isinstance(result, Served) or len(result.data_points) != 3:
            raise SystemExit(f"A fetch on {side.name} was not served as expected: {result}")
        session.rollback()


def _page(side: Side, n: int) -> None:
    citizen = side.grants[-1 - n % len(side.grants)][3]
    with Session(side.engine) as session:
        rows = access_events_for_citizen(session, citizen, limit=PAGE_SIZE + 1)
        if len(rows) < 10:
            raise SystemExit(f"A citizen on {side.name} has {len(rows)} access events, not 10+.")


def _proof(side: Side, n: int) -> Callable[[], None]:
    # Bandit B311: which leaf to prove, not a secret.
    index = random.Random(n).randrange(side.size)  # nosec B311
    with Session(side.engine) as session:
        proof = ledger.inclusion_proof(session, index, side.size)

    def check() -> None:  # outside the timing: what a client does with the proof
        with Session(side.engine) as session:
            leaf_hash = session.execute(
                text("SELECT leaf_hash FROM ledger_entry WHERE idx = :i"), {"i": index}
            ).scalar_one()
            root = ledger.root_at(session, side.size)
        if not merkle.verify_inclusion(bytes(leaf_hash), index, side.size, proof, root):
            raise SystemExit(f"An inclusion proof on {side.name} does not verify.")

    return check


def _timed(call: Callable[[Side, int], Any], side: Side, n: int) -> float:
    start = time.perf_counter()
    check = call(side, n)
    ms = (time.perf_counter() - start) * 1000
    if check is not None:
        check()
    return ms


def interleaved(
    call: Callable[[Side, int], Any], sides: list[Side], samples: int, warm: int = 20
) -> dict[str, tuple[float, float]]:
    """Median and p99 ms of ``call`` on each side, calls alternating between the sides."""
    times: dict[str, list[float]] = {side.name: [] for side in sides}
    for n in range(warm + samples):
        order = sides if n % 2 == 0 else sides[::-1]
        for side in order:
            ms = _timed(call, side, n)
            if n >= warm:
                times[side.name].append(ms)
    return {name: _percentiles(found) for name, found in times.items()}


def verify_rate(side: Side) -> tuple[float, float, int]:
    """Seconds and entries a second of a full verify (with rows); exits 1 if it fails."""
    start = time.perf_counter()
    with Session(side.engine) as session:
        report = verify_ledger(session, side.vault, rows=True)
    seconds = time.perf_counter() - start
    if not report.ok:
        raise SystemExit(f"The {side.name} ledger does not verify: {report.problems[:3]}")
    return seconds, report.size / seconds, report.size


def _verdict(ratio: float) -> str:
    return "PASS" if ratio <= GOAL else "MISS"


def explain(side: Side) -> None:
    """Print EXPLAIN (ANALYZE, BUFFERS) of every statement one fetch, page and proof run."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(side.engine, "before_cursor_execute", capture)
    try:
        _fetch(side, 7)
        _page(side, 7)
        _proof(side, 7)
    finally:
        event.remove(side.engine, "before_cursor_execute", capture)
    with side.engine.connect() as connection:
        for statement, parameters in seen:
            if not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "INSERT")):
                continue
            transaction = connection.begin()
            try:
                plan = connection.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                ).scalars()
                print("\n" + " ".join(statement.split())[:300])
                print("\n".join("    " + line for line in plan))
            finally:
                transaction.rollback()


# verify.py streams these two through raw DB-API cursors, which SQLAlchemy's events miss.
_VERIFY_STREAMS = [
    "SELECT idx, leaf, leaf_hash FROM ledger_entry ORDER BY idx",
    "SELECT level, idx, hash FROM ledger_node ORDER BY (idx + 1) * "
    "(CAST(1 AS BIGINT) << level), level",
]


def explain_verify(small: Side, big: Side) -> None:
    """Print the big database's plans for every query ``verify_ledger`` runs.

    The statements are captured from a verify of the small database. They get EXPLAIN only:
    running them is the verify itself, whose time the benchmark measures.
    """
    seen: list[tuple[str, Any]] = [(sql, {}) for sql in _VERIFY_STREAMS]

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, parameters))

    event.listen(small.engine, "before_cursor_execute", capture)
    try:
        with Session(small.engine) as session:
            verify_ledger(session, small.vault, rows=True)
    finally:
        event.remove(small.engine, "before_cursor_execute", capture)
    with big.engine.connect() as connection:
        for statement, parameters in seen:
            plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars()
            print("\n" + " ".join(statement.split())[:400])
            print("\n".join("    " + line for line in plan), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Measure both databases and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small-citizens", type=int, default=10_000)
    parser.add_argument("--big-citizens", type=int, default=1_000_000)
    parser.add_argument("--small-url", default=f"{SERVER}/tellonce_scale_small")
    parser.add_argument("--big-url", default=f"{SERVER}/tellonce_scale_big")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--generate-big", action="store_true")
    parser.add_argument("--skip-big-verify", action="store_true")
    parser.add_argument(
        "--explain", action="store_true", help="only print the big database's query plans"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    for url, citizens, allowed in (
        (args.small_url, args.small_citizens, True),
        (args.big_url, args.big_citizens, args.generate_big),
    ):
        if _database_ready(url):
            continue
        if not allowed:
            print(f"{url} is missing or empty: run with --generate-big (about 40 minutes).")
            return 1
        generate.prepare_database(url, fresh=True)
        plan = generate.Plan(url, citizens, generate.default_key_file(url))
        print(f"generated {make_url(url).database}: {generate.generate(plan)}")

    if not args.explain:  # plans are shown for the schema as it stands; figures at head
        for url in (args.small_url, args.big_url):
            engine = make_engine(url)
            started = time.perf_counter()
            upgrade(engine)  # what `tellonce db upgrade` does; nothing if already at head
            engine.dispose()
            print(f"{make_url(url).database} at head ({time.perf_counter() - started:.0f} s)")
    small = _side("small", args.small_url, args.samples, args.seed)
    big = _side("big", args.big_url, args.samples, args.seed)
    sides = [small, big]
    print(f"small: {small.size:,} leaves; big: {big.size:,} leaves; {_load()}")
    if args.explain:
        explain(big)
        explain_verify(small, big)
        return 0

    # (figure, small, big, slowdown, load): slowdown is big time / small time, or for a
    # throughput small rate / big rate, so above 1 is always "slower on the big database".
    rows: list[tuple[str, float, float, float, str]] = []
    for label, call in (
        ("data API fetch", _fetch),
        ("who has seen it, page 1", _page),
        ("inclusion proof", _proof),
    ):
        found = interleaved(call, sides, args.samples)
        for which, index in (("median", 0), ("p99", 1)):
            s, b = found["small"][index], found["big"][index]
            rows.append((f"{label} {which} ms", s, b, b / s, _load()))
        print(f"  measured {label}; {_load()}", flush=True)

    seconds, small_rate, size = verify_rate(small)
    print(f"  small verify: {size:,} entries in {seconds:.1f} s; {_load()}", flush=True)
    if args.skip_big_verify:
        rows.append(("verify entries/s", small_rate, float("nan"), float("nan"), _load()))
    else:
        seconds, big_rate, size = verify_rate(big)
        print(f"  big verify: {size:,} entries in {seconds:.1f} s; {_load()}", flush=True)
        rows.append(("verify entries/s", small_rate, big_rate, small_rate / big_rate, _load()))

    print(f"\n{'figure':<32} {'small':>10} {'big':>10} {'slowdown':>9}  goal <= {GOAL}x")
    for label, s, b, slowdown, load in rows:
        verdict = "SKIP" if slowdown != slowdown else _verdict(slowdown)  # NaN: not measured
        print(f"{label:<32} {s:>10.2f} {b:>10.2f} {slowdown:>9.2f}  {verdict}  ({load})")
    for side in sides:
        side.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
