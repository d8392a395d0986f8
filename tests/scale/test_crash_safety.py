"""Crash safety: while clients give consents and fetch over HTTP, the app is killed with
SIGKILL (or its PostgreSQL is stopped with ``pg_ctl stop -m immediate``) at random moments and
started again. Afterwards every acknowledged consent and every served access is stored, with
its ledger leaf, nothing is half-written, and ``ledger verify`` passes.

CI runs a small count (CONSENTS, KILLS below); scripts/soak/crash.py runs 1,000 consents and
20 kills with the same code (tests/scale/crash.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_URL
from tests.scale.crash import (
    NO_LIMITS_APP,
    ThrowawayPostgres,
    crash_problems,
    kill_app,
    run_load,
)
from tests.scale.live import Deployment, Server, free_port
from vault.db import make_engine
from vault.keys import init_key_file
from vault.migrate import upgrade

pytestmark = pytest.mark.slow

CONSENTS = 60
KILLS = 4
CLIENTS = 3
WORKERS = 2


def serve(deployment: Deployment) -> Server:
    """The app for a crash test: two sync workers, no rate limits (one client, many consents)."""
    env = deployment.env(TELLONCE_API_RATE_LIMIT="off")
    log = deployment.folder / "gunicorn.log"
    return Server(env, deployment.port, log, workers=WORKERS, app=NO_LIMITS_APP)


# On SQLite only: the PostgreSQL test below kills the app too (in turn with the database).
@pytest.mark.parametrize("deployment", ["sqlite"], indirect=True)
def test_acknowledged_consents_and_accesses_survive_the_app_being_killed(
    deployment: Deployment,
) -> None:
    deployment.populate(people=CLIENTS)
    server = serve(deployment)
    server.start()
    try:
        tally = run_load(deployment, CONSENTS, [kill_app(server)] * KILLS, clients=CLIENTS)
    finally:
        server.kill()  # the end is a crash too: nothing is flushed on the way out
    assert tally.outages == ["app SIGKILL"] * KILLS
    problems = crash_problems(deployment.engine, deployment.vault(), tally, CONSENTS)
    assert not problems, "\n".join(problems) + f"\n{tally.abandoned}"


@pytest.fixture
def throwaway_postgres(tmp_path: Path) -> Iterator[tuple[Deployment, ThrowawayPostgres]]:
    """A deployment on a PostgreSQL cluster of this test's own, which it may crash."""
    if PG_URL is None:  # it needs no shared server, but runs with the other PostgreSQL tests
        pytest.skip("TEST_DATABASE_URL is not set, so PostgreSQL tests are off")
    why = ThrowawayPostgres.missing()
    if why:
        pytest.skip(f"no throwaway PostgreSQL cluster can be made here: {why}")
    cluster = ThrowawayPostgres(free_port())
    try:
        cluster.create()
        admin = create_engine(cluster.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text('CREATE DATABASE "tellonce"'))
        admin.dispose()
        key_file = tmp_path / "keys.json"
        init_key_file(key_file)
        (tmp_path / "mail").mkdir()
        engine = make_engine(cluster.url("tellonce"))
        upgrade(engine)
        yield Deployment(cluster.url("tellonce"), engine, key_file, tmp_path), cluster
        engine.dispose()
    finally:
        cluster.destroy()


def test_acknowledged_consents_and_accesses_survive_postgres_stopping_dead(
    throwaway_postgres: tuple[Deployment, ThrowawayPostgres],
) -> None:
    deployment, cluster = throwaway_postgres
    deployment.populate(people=CLIENTS)
    server = serve(deployment)
    server.start()
    # Postgres stopped dead (the app stays up and must reconnect), and the app killed, in turn.
    outages = [cluster.crash, kill_app(server)] * (KILLS // 2)
    try:
        tally = run_load(deployment, CONSENTS, outages, clients=CLIENTS)
    finally:
        server.kill()
    cluster.crash()  # and once more at the very end, before anything is read back
    problems = crash_problems(deployment.engine, deployment.vault(), tally, CONSENTS)
    assert not problems, "\n".join(problems) + f"\n{tally.abandoned}"
