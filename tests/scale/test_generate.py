"""The scale generator at a tiny size: real rows, the right counts, a ledger that verifies."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from consent.access import Served, access_events_for_citizen, fetch_for_department
from scripts.scale.generate import Plan, generate
from scripts.scale.rows import FACTS, FETCHES_PER_GRANT, LEAVES_PER_CITIZEN
from vault import catalogue, ledger
from vault.citizens import get_citizen, ledger_key
from vault.db import session_scope
from vault.services import Vault
from vault.verify import verify_ledger

CITIZENS = 50
BLOCK = 20  # three blocks: three transactions and three signed checkpoints


def test_generated_database_is_real_and_verifies(
    engine: Engine, vault: Vault, key_file: Path
) -> None:
    plan = Plan(
        url=engine.url.render_as_string(hide_password=False),
        citizens=CITIZENS,
        key_file=key_file,
        origin=vault.ledger_origin,
        workers=2,
        block=BLOCK,
        start=(vault.clock() - timedelta(days=1)).replace(microsecond=0),
    )
    generate(plan, progress=False, say=lambda *_: None)

    with engine.connect() as connection:
        counts = {
            table: connection.execute(
                select(func.count()).select_from(SQLModel.metadata.tables[table])
            ).scalar()
            for table in ("citizen", "data_point", "grant", "access_event", "ledger_entry")
        }
        served = connection.execute(
            text("SELECT count(*) FROM access_event WHERE result = 'served'")
        ).scalar()
        citizen_id, grant_id, department, case = connection.execute(
            text('SELECT citizen_id, id, department_id, case_reference FROM "grant" LIMIT 1')
        ).one()
    assert counts == {
        "citizen": CITIZENS,
        "data_point": CITIZENS * len(FACTS),
        "grant": CITIZENS,
        "access_event": CITIZENS * FETCHES_PER_GRANT,
        "ledger_entry": CITIZENS * LEAVES_PER_CITIZEN,
    }
    assert served == CITIZENS * (FETCHES_PER_GRANT - 1)

    with session_scope(engine) as session:
        report = verify_ledger(session, vault, rows=True)
        assert report.ok, report.problems
        assert report.size == CITIZENS * LEAVES_PER_CITIZEN
        assert report.rows_checked == report.size
        assert report.checkpoints == 3
        # Each person's leaves are named by their own ledger key, sealed under their data key.
        key = ledger_key(vault, get_citizen(session, citizen_id))
        leaves = ledger.entries(session, 0, ledger.MAX_ENTRIES_PAGE)
        assert sum(ledger.is_about(key, leaf) for _, leaf in leaves) == LEAVES_PER_CITIZEN
        assert len(access_events_for_citizen(session, citizen_id)) == FETCHES_PER_GRANT

    # The app itself can serve the generated grant: values decrypt under the citizen's key.
    with session_scope(engine) as session:
        result = fetch_for_department(
            session, vault, grant_id, department, acting_officer="Officer Lee", case_reference=case
        )
        assert isinstance(result, Served)
        assert {p.key: p.value for p in result.data_points} == {
            k: catalogue.entry(k).example
            for k in ("identity.name", "contact.address", "money.income_monthly")
        }
        assert {p.key: p.version for p in result.data_points}["contact.address"] == 2
    with session_scope(engine) as session:
        assert verify_ledger(session, vault, rows=True).ok
