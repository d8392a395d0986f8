"""Four processes append to one ledger at once: every entry gets its own index, with no gaps,
no duplicates, and a log that verifies."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from tests.ledger.workers import append_worker
from vault import ledger
from vault.citizens import create_citizen
from vault.models import DataPoint, LedgerEntry
from vault.verify import verify_ledger

PROCESSES = 4
EACH = 200
PER_TRANSACTION = 4


def test_parallel_appends_from_four_processes(db: Any, vault: Any, key_file: Path) -> None:
    with db.tx() as session:
        people = [create_citizen(session, vault).id for _ in range(PROCESSES)]
    url = db.engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    times = context.Array("d", 2 * PROCESSES)
    workers = [
        context.Process(
            target=append_worker,
            kwargs={
                "url": url,
                "key_file": str(key_file),
                "origin": vault.ledger_origin,
                "citizen_id": person,
                "count": EACH,
                "per_transaction": PER_TRANSACTION,
                "start": start,
                "times": times,
                "slot": slot,
            },
        )
        for slot, person in enumerate(people)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    # They really wrote at the same time: every one started before any one finished.
    began, ended = times[0::2], times[1::2]
    assert max(began) < min(ended)

    total = PROCESSES + PROCESSES * EACH
    with db.tx() as session:
        indexes = session.execute(
            select(col(LedgerEntry.idx)).order_by(col(LedgerEntry.idx))
        ).scalars()
        assert list(indexes) == list(range(total))
        assert ledger.head_size(session) == total
        owners = session.execute(
            select(col(DataPoint.citizen_id))
            .join(LedgerEntry, col(LedgerEntry.row_id) == col(DataPoint.id))
            .order_by(col(LedgerEntry.idx))
        ).scalars()
        order = list(owners)
        report = verify_ledger(session, vault)
    assert sorted(order.count(p) for p in people) == [EACH] * PROCESSES
    assert report.ok, report.problems
    assert (report.size, report.rows_checked) == (total, total)
