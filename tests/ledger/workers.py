"""Code that runs in child processes started by the ledger tests (kept light to import)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

KEYS = ("housing.status", "money.income_monthly", "contact.phone", "support.needs")
VALUES: dict[str, Any] = {
    "housing.status": "hostel",
    "money.income_monthly": 125_000,
    "contact.phone": "+447700900123",
    "support.needs": "Please explain letters to me on the phone.",
}


def append_worker(
    url: str,
    key_file: str,
    origin: str,
    citizen_id: str,
    count: int,
    per_transaction: int,
    start: Any,
    times: Any,
    slot: int,
) -> None:
    """Record ``count`` facts for one citizen in small transactions, once all are ready.

    ``start`` is a barrier shared by the workers; ``times[2 * slot]`` and
    ``times[2 * slot + 1]`` receive when this worker began and finished writing.
    """
    import consent.events  # noqa: F401  (declare every event kind, as the app does)
    import vault.events
    from vault.db import make_engine, session_scope
    from vault.keys import LocalKeyFileProvider
    from vault.records import record_data_point
    from vault.services import Vault

    engine = make_engine(url, synchronous="NORMAL")
    vault = Vault(keys=LocalKeyFileProvider(Path(key_file)), ledger_origin=origin)
    start.wait(timeout=60)
    times[2 * slot] = time.monotonic()
    try:
        for first in range(0, count, per_transaction):
            with session_scope(engine) as session:
                for n in range(first, min(count, first + per_transaction)):
                    key = KEYS[n % len(KEYS)]
                    record_data_point(
                        session, vault, citizen_id, key, VALUES[key], recorded_by=f"worker:{n}"
                    )
        times[2 * slot + 1] = time.monotonic()
    finally:
        engine.dispose()
