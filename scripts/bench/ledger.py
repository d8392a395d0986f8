"""Benchmark the tamper-evident ledger, each figure beside a baseline from the same run.

    .venv/bin/python scripts/bench/ledger.py [--database-url URL] [--entries N]

With no URL it works in a scratch SQLite file; with a PostgreSQL URL it makes scratch
databases on that server, named after the URL's database (``<name>_appends_<pid>``, ...), and
drops them afterwards. It measures:

1. durable batched appends per second (SQLite synchronous=FULL, or PostgreSQL's default
   synchronous commit), beside raw SHA-256 of the same leaf bytes and bare INSERTs of them;
2. ``verify_ledger`` of N entries (log only, and with rows): seconds and peak memory, each in
   a fresh child process, beside reading and SHA-256-ing the same leaves in one process and
   the log check done in one process (``workers=1``);
3. inclusion proofs at N entries: median and p99 ms, beside a ``SELECT 1`` round trip.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

import consent.events  # noqa: E402, F401  (declare every event kind, as the app does)
import vault.events  # noqa: E402
from vault import catalogue, envelope, ledger, merkle  # noqa: E402
from vault.citizens import create_citizen, data_key, ledger_key  # noqa: E402
from vault.db import make_engine, session_scope  # noqa: E402
from vault.keys import LocalKeyFileProvider, init_key_file  # noqa: E402
from vault.migrate import upgrade  # noqa: E402
from vault.models import DataPoint, new_time_ordered_id  # noqa: E402
from vault.records import DATA_POINT_KIND  # noqa: E402
from vault.services import Vault  # noqa: E402
from vault.verify import verify_ledger  # noqa: E402

ORIGIN = "bench.tellonce/ledger"
KEYS = [k for k in catalogue.CATALOGUE if catalogue.entry(k).example is not None]
CITIZENS = 100


class Writer:
    """Makes realistic data point rows (sealed values, real citizens) and their events."""

    def __init__(self, session: Any, vault: Vault, citizens: int) -> None:
        self.people = []
        for _ in range(citizens):
            person = create_citizen(session, vault)
            self.people.append((person.id, data_key(vault, person), ledger_key(vault, person)))
        self.versions: dict[tuple[str, str], int] = {}
        self.vault = vault
        self.n = 0

    def batch(self, count: int) -> tuple[list[dict[str, Any]], list[ledger.LedgerEvent]]:
        """Rows for ``count`` new data point versions and the events that describe them."""
        rows: list[dict[str, Any]] = []
        events: list[ledger.LedgerEvent] = []
        at = self.vault.clock()
        for _ in range(count):
            citizen_id, dek, ref = self.people[self.n % len(self.people)]
            key = KEYS[(self.n // len(self.people)) % len(KEYS)]
            self.n += 1
            version = self.versions.get((citizen_id, key), 0) + 1
            self.versions[(citizen_id, key)] = version
            row_id = new_time_ordered_id()  # as DataPoint makes its ids
            sealed = envelope.seal_json(
                dek,
                catalogue.entry(key).example,
                envelope.associated_data(citizen_id, DATA_POINT_KIND, row_id, version),
            )
            row = dict(id=row_id, citizen_id=citizen_id, key=key, version=version)
            row.update(ciphertext=sealed, source="self", recorded_by=f"citizen:{citizen_id}")
            row.update(recorded_at=at, status="current")
            rows.append(row)
            # ledger.append only reads attributes of the row it describes; a namespace with
            # exactly the row's values gives the same leaf as a DataPoint at a fraction of
            # the cost of building 1,000,000 ORM objects.
            events.append(
                ledger.LedgerEvent(
                    vault.events.DATA_POINT_RECORDED.name,
                    SimpleNamespace(**row),  # type: ignore[arg-type]
                    at,
                    citizen_key=ref,
                    details={"key": key, "version": version, "source": "self"},
                )
            )
        return rows, events


@contextmanager
def scratch_database(
    url: str | None, workdir: Path, name: str, *, keep: bool = False
) -> Iterator[str]:
    """A fresh, migrated, empty database: a SQLite file, or a new PostgreSQL database."""
    if url is None or make_url(url).get_backend_name() == "sqlite":
        path = workdir / f"{name}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        scratch = f"sqlite:///{path}"
        engine = make_engine(scratch)
        upgrade(engine)
        engine.dispose()
        yield scratch
        return
    base = make_url(url).set(drivername="postgresql+psycopg")
    db_name = f"{base.database or 'tellonce_bench'}_{name}_{os.getpid()}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{db_name}"'))
    scratch = base.set(database=db_name).render_as_string(hide_password=False)
    engine = make_engine(scratch)
    upgrade(engine)
    engine.dispose()
    try:
        yield scratch
    finally:
        if not keep:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()


def make_vault(key_file: Path) -> Vault:
    """The vault as the app builds it (system clock: checkpoints every second)."""
    return Vault(keys=LocalKeyFileProvider(key_file), ledger_origin=ORIGIN)


def sha256(data: bytes) -> bytes:
    """SHA-256 of some bytes (the baseline's only work)."""
    return hashlib.sha256(data).digest()


def bench_appends(url: str, vault: Vault, total: int, batch: int) -> dict[str, float]:
    """Durable batched appends per second, and the two baselines on the same leaves."""
    engine = make_engine(url, synchronous="FULL")
    with session_scope(engine) as session:
        writer = Writer(session, vault, CITIZENS)
    batches = [writer.batch(batch)[1] for _ in range(total // batch)]
    events = sum(len(b) for b in batches)

    start = time.perf_counter()
    for group in batches:
        with session_scope(engine) as session:
            ledger.append(session, vault, group)
    append_s = time.perf_counter() - start

    leaves = [ledger.leaf_bytes(e) for group in batches for e in group]
    sha = hashlib.sha256
    start = time.perf_counter()
    for leaf in leaves:
        sha(b"\x00" + leaf).digest()
    sha_s = time.perf_counter() - start

    # Bare INSERTs of the same bytes, same batch size, same durability, one commit a batch.
    blob = "BLOB" if engine.dialect.name == "sqlite" else "BYTEA"
    with engine.begin() as connection:
        connection.exec_driver_sql(
            f"CREATE TABLE bench_bare (idx BIGINT PRIMARY KEY, leaf {blob} NOT NULL, "
            f"leaf_hash {blob} NOT NULL, kind VARCHAR(48) NOT NULL, row_id VARCHAR(36) NOT NULL)"
        )
    bare = text(
        "INSERT INTO bench_bare (idx, leaf, leaf_hash, kind, row_id) "
        "VALUES (:idx, :leaf, :leaf_hash, 'data_point.recorded', :row_id)"
    )
    start = time.perf_counter()
    for b in range(0, len(leaves), batch):
        params = [
            dict(idx=i, leaf=leaves[i], row_id=str(i), leaf_hash=sha256(b"\x00" + leaves[i]))
            for i in range(b, min(b + batch, len(leaves)))
        ]
        with engine.begin() as connection:
            connection.execute(bare, params)
    bare_s = time.perf_counter() - start
    engine.dispose()
    return {
        "events": events,
        "append_per_s": events / append_s,
        "sha_per_s": events / sha_s,
        "bare_insert_per_s": events / bare_s,
        "leaf_bytes_avg": sum(map(len, leaves)) / len(leaves),
    }


def build_log(url: str, vault: Vault, entries: int, batch: int = 10_000) -> float:
    """Grow a log to ``entries`` leaves through ledger.append, with the rows they describe."""
    engine = make_engine(url, synchronous="OFF")
    start = time.perf_counter()
    with session_scope(engine) as session:
        writer = Writer(session, vault, min(CITIZENS, entries))
    done = len(writer.people)
    while done < entries:
        rows, events = writer.batch(min(batch, entries - done))
        with session_scope(engine) as session:
            session.execute(insert(DataPoint), rows)
            ledger.append(session, vault, events)
        done += len(events)
        if done % 100_000 < batch:
            print(f"  built {done:>9,} entries", file=sys.stderr, flush=True)
    with session_scope(engine) as session:
        ledger.make_checkpoint(session, vault)
    if engine.dialect.name != "sqlite":  # closing the last SQLite connection checkpoints
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()
    return time.perf_counter() - start


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak_rss() -> int:
    """Reset the peak RSS mark to the current RSS (Linux) and return the current RSS."""
    # ru_maxrss would include the parent's peak (Linux keeps it across fork and exec), so
    # the peak is read from VmHWM after clearing it: writing 5 to clear_refs resets it.
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return _status_kib("VmRSS") * 1024


def child_verify(url: str, key_file: str, mode: str) -> dict[str, Any]:
    """Run in a fresh process: one measurement of verify (or the baseline), as JSON."""
    vault = make_vault(Path(key_file))
    engine = make_engine(url)
    with engine.connect() as connection:  # connect (and import drivers) before measuring
        connection.execute(text("SELECT 1"))
    # A forked process that does nothing: verify's worker processes are measured against it
    # (a fork's RSS counts the pages it shares with its parent).
    with multiprocessing.get_context("fork").Pool(1) as idle:
        idle.apply(int)
    idle_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    rss_before = _reset_peak_rss()
    traced = mode.endswith("+trace")
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    with session_scope(engine) as session:
        if mode.startswith("sha"):
            # The floor: read every leaf in order and SHA-256 it, nothing else.
            connection = session.connection().execution_options(stream_results=True)
            result = connection.exec_driver_sql("SELECT leaf FROM ledger_entry ORDER BY idx")
            count = 0
            while rows := result.fetchmany(10_000):
                for (leaf,) in rows:
                    hashlib.sha256(b"\x00" + leaf).digest()
                count += len(rows)
            ok, problems, size = True, [], count
        else:
            # "log1": the log check in this one process, the baseline for its worker processes.
            workers = 1 if mode.startswith("log1") else None
            report = verify_ledger(session, vault, rows=mode.startswith("rows"), workers=workers)
            ok, problems, size = report.ok, report.problems, report.size
    seconds = time.perf_counter() - start
    peak_traced = tracemalloc.get_traced_memory()[1] if traced else 0
    if traced:
        tracemalloc.stop()
    max_rss = _status_kib("VmHWM") * 1024
    # Worker processes, forked from this one: the peak of the biggest, above an idle fork's.
    worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    engine.dispose()
    return {
        "seconds": seconds,
        "ok": ok,
        "problems": problems[:3],
        "size": size,
        "rss_delta": max(0, max_rss - rss_before),
        "traced_peak": peak_traced,
        "worker_rss_delta": max(0, worker_rss - idle_rss),
    }


def run_child(url: str, key_file: Path, mode: str) -> dict[str, Any]:
    """Measure in a fresh Python process so peak memory is this run's alone."""
    # Bandit B603: this very script in a child Python, an argument list, no shell.
    out = subprocess.run(  # nosec B603
        [
            sys.executable,
            __file__,
            "--child",
            mode,
            "--database-url",
            url,
            "--key-file",
            str(key_file),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"verify ({mode}) failed in its child process:\n{out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_verify(url: str, key_file: Path, with_rows: bool) -> dict[str, Any]:
    """Verify times and memory (log only, and with rows), beside read-and-hash."""
    found: dict[str, Any] = {}
    # tracemalloc slows Python several times over, so it gets runs of its own (and none for
    # the much longer row check, whose peak comes from the process's own high-water mark).
    modes = ["sha", "log", "log1", "log+trace"] + (["rows"] if with_rows else [])
    for mode in modes:
        found[mode] = run_child(url, key_file, mode)
        r = found[mode]
        print(
            f"  {mode:<11} {r['seconds']:7.2f} s  rss +{r['rss_delta'] / 2**20:6.1f} MiB  "
            f"traced peak {r['traced_peak'] / 2**20:6.1f} MiB  "
            f"workers +{r['worker_rss_delta'] / 2**20:6.1f} MiB  size {r['size']:,}  "
            f"ok={r['ok']} {r['problems'][:1]}  load {os.getloadavg()[0]:.2f}",
            file=sys.stderr,
        )
    return found


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered), p99


def bench_proofs(url: str, count: int) -> dict[str, float]:
    """Inclusion proofs against the whole tree, each in its own short transaction."""
    engine = make_engine(url)
    # Bandit B311: picks which leaves to prove, not a secret.
    rng = random.Random(9162)  # nosec B311
    with session_scope(engine) as session:
        size = ledger.head_size(session)
        root = ledger.root_at(session, size)
    timings: list[float] = []
    pings: list[float] = []
    for _ in range(count):
        index = rng.randrange(size)
        start = time.perf_counter()
        with session_scope(engine) as session:
            proof = ledger.inclusion_proof(session, index, size)
        timings.append((time.perf_counter() - start) * 1000)
        with session_scope(engine) as session:
            ((leaf,),) = [(b,) for _, b in ledger.entries(session, index, index + 1)]
        if not merkle.verify_inclusion(merkle.leaf_hash(leaf), index, size, proof, root):
            raise SystemExit(f"the inclusion proof for {index} did not verify")
        start = time.perf_counter()
        with session_scope(engine) as session:
            session.execute(text("SELECT 1")).scalar()
        pings.append((time.perf_counter() - start) * 1000)
    engine.dispose()
    median, p99 = _percentiles(timings)
    ping_median, ping_p99 = _percentiles(pings)
    return {"median": median, "p99": p99, "ping_median": ping_median, "ping_p99": ping_p99}


WIDTHS = (32, 12, 36, 7, 10, 4)


def _line(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, WIDTHS, strict=True)) + " |"


def summary(appends: dict[str, Any], verify: dict[str, Any], proofs: dict[str, float]) -> str:
    """The final table: each figure, its same-run baseline, their ratio, and the goal."""
    mib = 2**20
    log, sha, traced = verify["log"], verify["sha"], verify["log+trace"]["traced_peak"]
    one = verify["log1"]
    log_mem = max(log["rss_delta"], traced)
    # name, measured, baseline, ratio, goal, met (None: no goal); kept as a table on purpose
    # fmt: off
    rows: list[tuple[str, str, str, float, str, bool | None]] = [
        ("durable appends / s", f"{appends['append_per_s']:,.0f}",
         f"SHA-256 only {appends['sha_per_s']:,.0f}/s",
         appends["append_per_s"] / appends["sha_per_s"], ">= 20,000",
         appends["append_per_s"] >= 20_000),
        ("", "", f"bare INSERTs {appends['bare_insert_per_s']:,.0f}/s",
         appends["append_per_s"] / appends["bare_insert_per_s"], "", None),
        ("verify, log only (s)", f"{log['seconds']:.2f}",
         f"read + SHA-256 leaves {sha['seconds']:.2f} s", log["seconds"] / sha["seconds"],
         "<= 2 s", log["seconds"] <= 2 and log["ok"]),
        ("", "", f"log only, 1 process {one['seconds']:.2f} s",
         log["seconds"] / one["seconds"], "", None),
        ("verify, log only: peak memory", f"{log_mem / mib:.1f} MiB",
         f"RSS +{log['rss_delta'] / mib:.1f}, traced {traced / mib:.1f} MiB",
         log_mem / max(sha["rss_delta"], 1), "<= 64 MiB", log_mem <= 64 * mib),
        ("", f"{log['worker_rss_delta'] / mib:.1f} MiB", "each worker process, RSS growth",
         log["worker_rss_delta"] / max(sha["rss_delta"], 1), "<= 64 MiB",
         log["worker_rss_delta"] <= 64 * mib),
    ]
    if "rows" in verify:
        with_rows = verify["rows"]
        rows += [
            ("verify, with rows (s)", f"{with_rows['seconds']:.2f}",
             f"read + SHA-256 leaves {sha['seconds']:.2f} s",
             with_rows["seconds"] / sha["seconds"], "(<= 2 s)",
             with_rows["seconds"] <= 2 and with_rows["ok"]),
            ("verify, with rows: peak memory", f"{with_rows['rss_delta'] / mib:.1f} MiB",
             f"read + SHA-256: RSS +{sha['rss_delta'] / mib:.1f} MiB",
             with_rows["rss_delta"] / max(sha["rss_delta"], 1), "<= 64 MiB",
             with_rows["rss_delta"] <= 64 * mib),
        ]
    rows += [
        ("inclusion proof, median (ms)", f"{proofs['median']:.3f}",
         f"SELECT 1 median {proofs['ping_median']:.3f} ms",
         proofs["median"] / proofs["ping_median"], "", None),
        ("inclusion proof, p99 (ms)", f"{proofs['p99']:.3f}",
         f"SELECT 1 p99 {proofs['ping_p99']:.3f} ms", proofs["p99"] / proofs["ping_p99"],
         "<= 5 ms", proofs["p99"] <= 5),
    ]
    # fmt: on
    lines = [
        _line(("what", "measured", "baseline (same run)", "ratio", "goal", "met")),
        "|" + "|".join("-" * (w + 2) for w in WIDTHS) + "|",
    ]
    for name, value, baseline, ratio, goal, met in rows:
        mark = "" if met is None else ("yes" if met else "NO")
        lines.append(_line((name, value, baseline, f"{ratio:.3g}", goal, mark)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run every measurement and print the summary table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--entries", type=int, default=1_000_000, help="log size to verify")
    parser.add_argument("--append-events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000, help="events per transaction")
    parser.add_argument("--proofs", type=int, default=1_000)
    parser.add_argument("--no-rows", action="store_true", help="skip verify with rows")
    parser.add_argument("--workdir", type=Path, help="where files go (kept; default: tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL databases")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--key-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        print(json.dumps(child_verify(args.database_url, args.key_file, args.child)))
        return 0

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tellonce-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    key_file = workdir / "keys.json"
    key_file.unlink(missing_ok=True)
    init_key_file(key_file)
    vault = make_vault(key_file)
    backend = "postgresql" if args.database_url and "postgres" in args.database_url else "sqlite"
    load_before = os.getloadavg()[0]
    print(f"Ledger benchmark on {backend}, {args.entries:,} entries", file=sys.stderr)
    try:
        print("1. appends", file=sys.stderr)
        with scratch_database(args.database_url, workdir, "appends") as url:
            appends = bench_appends(url, vault, args.append_events, args.batch)
        print(f"2. building {args.entries:,} entries", file=sys.stderr)
        with scratch_database(args.database_url, workdir, "big", keep=args.keep) as url:
            build_s = build_log(url, vault, args.entries)
            print(f"  built in {build_s:.1f} s", file=sys.stderr)
            print("3. verify", file=sys.stderr)
            verify = bench_verify(url, key_file, not args.no_rows)
            print("4. inclusion proofs", file=sys.stderr)
            proofs = bench_proofs(url, args.proofs)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"Ledger benchmark: {backend}, {args.entries:,} entries (built in {build_s:.0f} s); "
        f"appends in batches of {args.batch:,} ({appends['events']:,} events, leaves of "
        f"{appends['leaf_bytes_avg']:.0f} bytes); load average {load_before:.2f} -> "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    print(summary(appends, verify, proofs))
    bad = [name for name in ("log", "log1", "rows") if name in verify and not verify[name]["ok"]]
    if bad:
        print(f"verify reported problems on a clean log: {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
