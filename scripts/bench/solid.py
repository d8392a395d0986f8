"""Benchmark a peer: Community Solid Server serving a public resource, beside our data API.

    .venv/bin/python scripts/bench/solid.py [--seconds 20] [--connections 32] [--workers 4]

Installs the Community Solid Server (npm ``@solid/community-server``, pinned, for Node 18 or
later) into ``~/.cache/tellonce-bench/css`` with ``npm install --prefix``, outside the
project's own package.json, unless it is there already. Starts it on loopback with its file
backend (``-c @css:config/file-root.json``: resources on disk, the root container as the
storage, open to everyone) in a temporary folder, and PUTs one small public Turtle document.
Builds the scratch database of scripts/bench/data_api.py and serves our app under gunicorn
(sync workers, SQLite synchronous=FULL). Then runs wrk against each in turn (theirs, ours,
theirs, ours, ...): their plain GET of the document, and our full GET /api/v1/data (token and
DPoP proof checked, consent checked, data decrypted, access event and ledger entry written
durably). It prints the medians of requests/s and p99, the ratio ours/theirs and PASS/MISS
for issue 7's goal (ours >= 5x theirs).

It exits 0 whether the goal is met or not (it is a measurement), and 1 if any request
failed or the database does not hold one served access per answer.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]  # the project, and data_api beside us

import data_api  # noqa: E402
from data_api import MAX_SECONDS, Run, free_port, gunicorn, load, measure_ours, wrk  # noqa: E402

CSS_PACKAGE = "@solid/community-server"
CSS_VERSION = "7.2.0"  # engines: node >= 18.0
CSS_HOME = Path.home() / ".cache" / "tellonce-bench" / "css"
CSS_CONFIG = "@css:config/file-root.json"
RESOURCE = "/bench.ttl"
DOCUMENT = """@prefix schema: <http://schema.org/>.
<#it> a schema:CreativeWork;
    schema:name "Tell Once benchmark";
    schema:description "A small public document for the peer benchmark.".
"""
GOAL_RATIO = 5.0
MIN_NODE = 18


def tool(name: str) -> str:
    """The full path of a command (node, npm), or stop with a plain message."""
    found = shutil.which(name)
    if found is None:
        sys.exit(f"{name} is needed: install Node.js {MIN_NODE} or later, then rerun.")
    return found


def check_node() -> None:
    """Stop with a plain message unless node is new enough."""
    # Bandit B603 (here and below): node, npm and the server script by full path, no shell.
    command = [tool("node"), "--version"]
    done = subprocess.run(command, capture_output=True, text=True)  # nosec B603
    version = done.stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < MIN_NODE:
        sys.exit(f"The Community Solid Server {CSS_VERSION} needs Node {MIN_NODE}+, not {version}.")


def install(home: Path) -> Path:
    """Install the pinned server into ``home`` unless it is there; return its bin/server.js."""
    package = home / "node_modules" / CSS_PACKAGE
    manifest = package / "package.json"
    installed = json.loads(manifest.read_text())["version"] if manifest.exists() else None
    if installed != CSS_VERSION:
        print(f"Installing {CSS_PACKAGE}@{CSS_VERSION} into {home} ...", file=sys.stderr)
        home.mkdir(parents=True, exist_ok=True)
        command = [tool("npm"), "install", "--prefix", str(home), "--no-audit", "--no-fund"]
        command.append(f"{CSS_PACKAGE}@{CSS_VERSION}")
        subprocess.run(command, check=True, stdout=sys.stderr)  # nosec B603
    return package / "bin" / "server.js"


@contextmanager
def community_solid_server(server_js: Path, port: int, folder: Path) -> Iterator[str]:
    """Run the server on 127.0.0.1:``port`` over files in ``folder``; yield its base URL."""
    base_url = f"http://127.0.0.1:{port}"
    command = [tool("node"), str(server_js), "-c", CSS_CONFIG, "-f", str(folder / "data")]
    # -l warn: it logs nothing per request then, as gunicorn logs nothing for ours.
    command += ["-p", str(port), "-b", base_url + "/", "-l", "warn"]
    log = folder / "css.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(  # nosec B603
            command, cwd=server_js.parents[1], stdout=log_file, stderr=log_file
        )
    try:
        wait_for(base_url + "/", server, log)
        yield base_url
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_for(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    """Wait (it takes half a minute on a busy machine) until the server answers at all."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(
                f"The Community Solid Server stopped while starting:\n{log.read_text()[-3000:]}"
            )
        try:
            # Our own http://127.0.0.1 server (Bandit B310 and ruff S310 waived).
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310 # nosec B310
                return
        except urllib.error.HTTPError:
            return  # it answered, if only to refuse
        except OSError:
            time.sleep(0.5)
    sys.exit(f"The Community Solid Server did not answer {url} within 300 s.")


def publish(base_url: str) -> None:
    """PUT the benchmark document, then check anyone can read it back as Turtle."""
    put = urllib.request.Request(  # noqa: S310  (our own loopback server)
        base_url + RESOURCE,
        data=DOCUMENT.encode(),
        method="PUT",
        headers={"Content-Type": "text/turtle"},
    )
    with urllib.request.urlopen(put, timeout=30) as answer:  # noqa: S310 # nosec B310
        if answer.status not in (201, 205):
            sys.exit(f"Could not put the benchmark document: status {answer.status}.")
    with urllib.request.urlopen(base_url + RESOURCE, timeout=30) as answer:  # noqa: S310 # nosec B310
        body = answer.read().decode()
        kind = answer.headers.get("Content-Type", "")
    if not kind.startswith("text/turtle") or "Tell Once benchmark" not in body:
        sys.exit(f"The benchmark document did not read back as Turtle ({kind!r}).")


def show(label: str, run: Run) -> None:
    """Print one run's figures."""
    print(
        f"  {label:<7}{run.rps:>9.0f} req/s   p50 {run.p50_ms:7.1f} ms   "
        f"p99 {run.p99_ms:7.1f} ms   ({run.requests:,} requests, {run.failed} failed)",
        flush=True,
    )


def main() -> None:
    """Install and start both servers, run wrk alternately and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_api.add_wrk_options(parser, pairs="theirs+ours")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of warm-up for each")
    parser.add_argument("--min-proofs", type=int, default=data_api.MIN_PROOFS)
    parser.add_argument("--css-home", type=Path, default=CSS_HOME, help="where it is installed")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: install it with `apt-get install -y wrk`, then rerun.")
    if not 1 <= args.seconds <= MAX_SECONDS:
        sys.exit(f"--seconds must be 1 to {MAX_SECONDS}: DPoP proofs are good for 60 s only.")
    check_node()
    server_js = install(args.css_home)

    with tempfile.TemporaryDirectory(prefix="tellonce-bench-solid-") as name:
        folder = Path(name)
        print(f"Building the scratch database in {folder} ...", file=sys.stderr)
        scenario = data_api.build(folder)
        ours_port, css_port = free_port(), free_port()
        env = data_api.app_environment(folder, ours_port)
        with (
            gunicorn("web:create_app()", ours_port, args.workers, env, folder / "ours.log") as ours,
            community_solid_server(server_js, css_port, folder) as theirs,
        ):
            publish(theirs)
            print(
                f"Community Solid Server {CSS_VERSION} (node, one process, {CSS_CONFIG}); "
                f"ours: gunicorn -w {args.workers} (sync); wrk -t {args.threads} "
                f"-c {args.connections} -d {args.seconds}s --latency; {os.cpu_count()} CPUs; "
                f"load before: {load()}",
                flush=True,
            )
            wrk(theirs, args.warmup, args.connections, args.threads, path=RESOURCE)
            warm, problems = measure_ours(
                scenario, ours, args.warmup, args, args.min_proofs, folder
            )
            proofs = max(args.min_proofs, math.ceil(2 * warm.rps * args.seconds))
            runs: dict[str, list[Run]] = {"theirs": [], "ours": []}
            for _ in range(args.rounds):
                run = wrk(theirs, args.seconds, args.connections, args.threads, path=RESOURCE)
                runs["theirs"].append(run)
                show("theirs", run)
                run, found = measure_ours(scenario, ours, args.seconds, args, proofs, folder)
                runs["ours"].append(run)
                problems += found
                show("ours", run)
            problems += [f"their server: {r.failures()}" for r in runs["theirs"] if r.failed]
            print(f"load after: {load()}")
    report(runs, problems)


def report(runs: dict[str, list[Run]], problems: list[str]) -> None:
    """Print the medians, the ratio and PASS/MISS; exit 1 if anything failed."""
    figures = {
        side: (
            statistics.median(r.rps for r in side_runs),
            statistics.median(r.p99_ms for r in side_runs),
        )
        for side, side_runs in runs.items()
    }
    ratio = figures["ours"][0] / figures["theirs"][0]
    print(f"\nMedians of {len(runs['ours'])} runs each:")
    print(
        f"  Solid GET {RESOURCE:<14}{figures['theirs'][0]:>8.0f} req/s   p99 "
        f"{figures['theirs'][1]:7.1f} ms"
    )
    print(
        f"  our GET {data_api.PATH:<16}{figures['ours'][0]:>8.0f} req/s   p99 "
        f"{figures['ours'][1]:7.1f} ms"
    )
    print(f"  ratio ours/theirs {ratio:.2f}")
    verdict = "PASS" if ratio >= GOAL_RATIO else "MISS"
    print(f"{verdict}: requests/s ratio ours/theirs {ratio:.2f} (goal >= {GOAL_RATIO:.0f})")
    if problems:
        print("FAILED: " + "; ".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
