"""Benchmark "Who has seen my information" for a person with 10,000 access events.

    .venv/bin/python scripts/bench/access_page.py [--events N] [--requests N]

Builds a scratch SQLite database (in a temporary folder, deleted afterwards) with one citizen,
five departments' grants and N access events made the real way, by
``consent.access.fetch_for_department`` (each one sealed, read and written to the ledger), in
batches of 500 per transaction; one department's grant is revoked, so its last tries are
refused and recorded too. Then it signs in (a server-side WebSession and its cookie) and times
GET /who-has-seen-it (the first page) through Flask's test client, in this process (no
network), beside the trivial page GET /about-the-record, alternating the two so both see the
same machine. It prints each p50/p95 and the ratio; the goal is a p95 of 100 ms or less.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import consent.events  # noqa: E402, F401  (declare every event kind, as the app does)
import vault.events  # noqa: E402, F401
from consent.access import fetch_for_department  # noqa: E402
from consent.actors import citizen as citizen_actor  # noqa: E402
from consent.grants import GrantRequest, give_grant, revoke_grant  # noqa: E402
from vault.accounts import create_account  # noqa: E402
from vault.citizens import create_citizen  # noqa: E402
from vault.clock import FrozenClock  # noqa: E402
from vault.db import make_engine, session_scope  # noqa: E402
from vault.keys import LocalKeyFileProvider, init_key_file  # noqa: E402
from vault.migrate import upgrade  # noqa: E402
from vault.records import record_data_point, record_story_section  # noqa: E402
from vault.services import Vault  # noqa: E402
from vault.sessions import start_session  # noqa: E402

ORIGIN = "bench.tellonce/ledger"
DEPARTMENTS = ["dept-housing", "dept-benefits", "dept-health", "dept-justice", "dept-council"]
BATCH = 500
GOAL_MS = 100.0


def build(db_url: str, key_file: Path, events: int) -> tuple[str, str]:
    """Make the citizen, grants and ``events`` access events; return (citizen, account) ids."""
    engine = make_engine(db_url, synchronous="OFF")  # scratch data: no need to survive a crash
    upgrade(engine)
    # Events spread over past weeks, a few minutes apart, as a busy case might see them.
    clock = FrozenClock(datetime.now(UTC) - timedelta(days=60))
    vault = Vault(keys=LocalKeyFileProvider(key_file), clock=clock, ledger_origin=ORIGIN)
    with session_scope(engine) as session:
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, "sam@example.org", citizen_id=citizen.id)
        by = f"citizen:{account.id}"
        for key, value in {
            "identity.name": "Sam Taylor",
            "housing.status": "staying_with_friends",
            "contact.phone": "07700 900123",
        }.items():
            record_data_point(session, vault, citizen.id, key, value, recorded_by=by)
        record_story_section(
            session, vault, citizen.id, "housing", "I need somewhere to stay.", recorded_by=by
        )
        actor = citizen_actor(account.id, citizen.id)
        grants = []
        for department in DEPARTMENTS:
            request = GrantRequest(
                department_id=department,
                purpose_code="emergency_housing",
                purpose_text="To find you somewhere safe to stay.",
                data_points=("identity.name", "housing.status", "contact.phone"),
                case_reference="HOU-2291",
                duration_days=366,
                data_life_days=90,
                max_fetches=10_000,
                story_topics=("housing",),
            )
            grants.append(give_grant(session, vault, actor, request).grant.id)
        citizen_id, account_id = citizen.id, account.id
    refused_from = events - events // 20  # the last 5% come after one grant was revoked
    started = time.perf_counter()
    for start in range(0, events, BATCH):
        with session_scope(engine) as session:
            for n in range(start, min(start + BATCH, events)):
                if n == refused_from:
                    revoke_grant(session, vault, actor, grants[-1])
                index = len(DEPARTMENTS) - 1 if n >= refused_from else n % (len(DEPARTMENTS) - 1)
                clock.advance(minutes=5)
                fetch_for_department(
                    session,
                    vault,
                    grants[index],
                    DEPARTMENTS[index],
                    acting_officer=f"Officer {n % 37}",
                    case_reference=f"CASE-{n % 211}",
                )
        print(f"\r  {min(start + BATCH, events):,} access events", end="", file=sys.stderr)
    print(f" in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    engine.dispose()
    return citizen_id, account_id


def percentile(samples: list[float], pct: int) -> float:
    """The pct-th percentile (inclusive method) of samples, in milliseconds."""
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1] * 1000


def main() -> None:
    """Build the data, then time both pages and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    from sqlalchemy import func, select

    from consent.models import AccessEvent
    from web import create_app
    from web.state import services

    with tempfile.TemporaryDirectory(prefix="tellonce-bench-") as folder:
        key_file = Path(folder) / "keys.json"
        init_key_file(key_file)
        url = f"sqlite:///{folder}/bench.db"
        print(f"Building {args.events:,} access events (SQLite, {folder})...", file=sys.stderr)
        _citizen_id, account_id = build(url, key_file, args.events)

        # The app as it runs for real (synchronous=FULL, the system clock), minus the limiter.
        app = create_app(
            {
                "DATABASE_URL": url,
                "KEY_FILE": str(key_file),
                "LEDGER_ORIGIN": ORIGIN,
                "MAIL_DIR": f"{folder}/mail",
                "SECRET_KEY": "bench-secret",
                "RATELIMIT_ENABLED": False,
            }
        )
        state = services(app)
        with session_scope(state.engine) as session:
            count = session.execute(select(func.count()).select_from(AccessEvent)).scalar()
            token = start_session(session, state.vault, account_id)
        client = app.test_client()
        client.set_cookie("tellonce", token, domain="localhost")

        pages: dict[str, list[float]] = {"/who-has-seen-it": [], "/about-the-record": []}
        for _ in range(20):  # warm up: templates compiled, caches filled
            for path in pages:
                assert client.get(path).status_code == 200, path
        for _ in range(args.requests):
            for path, samples in pages.items():
                began = time.perf_counter()
                response = client.get(path)
                samples.append(time.perf_counter() - began)
                assert response.status_code == 200, (path, response.status_code)
        body = client.get("/who-has-seen-it").get_data(as_text=True)
        assert "Officer" in body, "the access page did not list any access"

    access = pages["/who-has-seen-it"]
    trivial = pages["/about-the-record"]
    print(f"\n{count:,} access events; {args.requests} requests to each page (Flask test client)")
    print(f"{'page':<22}{'p50 ms':>9}{'p95 ms':>9}")
    for path, samples in pages.items():
        print(f"{path:<22}{percentile(samples, 50):>9.1f}{percentile(samples, 95):>9.1f}")
    ratio = percentile(access, 95) / percentile(trivial, 95)
    verdict = "meets" if percentile(access, 95) <= GOAL_MS else "MISSES"
    print(f"ratio of p95s: {ratio:.1f}x; the access page {verdict} the {GOAL_MS:.0f} ms goal")


if __name__ == "__main__":
    main()
