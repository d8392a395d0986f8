"""A 10,000-entry ledger built once per database, and throwaway tampered copies of it."""

from __future__ import annotations

import os
from collections.abc import Callable

from sqlalchemy import Connection, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from consent.access import fetch_for_department
from consent.actors import citizen as citizen_actor
from consent.grants import GrantRequest, give_grant, revoke_grant
from tests.ledger.builders import bulk_data_points
from tests.ledger.tamper import CHECKPOINT, ENTRY, TABLES
from vault import ledger
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.clock import FrozenClock
from vault.db import session_scope
from vault.records import record_story_section
from vault.services import Vault
from vault.verify import VerifyReport, verify_ledger

PG_URL = os.environ.get("TEST_DATABASE_URL")
BACKENDS = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]
SIZE = 10_000
ORIGIN = "test.tellonce/ledger"


class BigLog:
    """A built 10,000-entry ledger, and a way to check tampered copies of it."""

    # A plain class, not a dataclass, so Hypothesis prints it as one short line.
    def __init__(self, backend: str, vault: Vault, engine: Engine) -> None:
        self.backend, self.vault = backend, vault
        self.engine = engine  # never committed to after the build
        self.rows: dict[str, list[str]] = {}  # table -> ids, in log order
        self.entry_of_row: dict[str, int] = {}
        self.served_ids: set[str] = set()  # access events that served data
        self.checkpoints: list[int] = []
        self.root = b""

    def __repr__(self) -> str:
        return f"<10,000-entry log on {self.backend}>"

    def check(self, mutate: Callable[[Connection], object], *, rows: bool) -> VerifyReport:
        """Tamper inside a transaction, verify what it sees, then roll the tampering back.

        ``rows=False`` checks the log and checkpoints alone: a stronger claim than the full
        check (which only adds the row digests), and a quicker one.
        """
        with self.engine.connect() as connection:
            transaction = connection.begin()
            try:
                mutate(connection)
                with Session(bind=connection) as session:
                    return verify_ledger(session, self.vault, rows=rows)
            finally:
                transaction.rollback()


def build(engine: Engine, vault: Vault, clock: FrozenClock) -> None:
    """Citizens, facts, story, grants, fetches and revocations: 10,000 entries in all."""
    with session_scope(engine) as session:
        people = [create_citizen(session, vault) for _ in range(4)]
        accounts = [
            create_account(session, vault, f"person{i}@example.org", citizen_id=p.id)
            for i, p in enumerate(people)
        ]
        for person in people:
            bulk_data_points(session, vault, person, 16)
            record_story_section(
                session, vault, person.id, "housing", "I stay with friends.", recorded_by="self"
            )
    grants = []
    for round_ in range(5):
        clock.advance(seconds=2)  # a fresh checkpoint is signed at the next append
        with session_scope(engine) as session:
            for person, account in zip(people, accounts, strict=True):
                given = give_grant(
                    session,
                    vault,
                    citizen_actor(account.id, person.id),
                    GrantRequest(
                        department_id=f"dept-{round_}",
                        purpose_code="emergency_housing",
                        purpose_text="To find you somewhere safe to stay.",
                        data_points=["identity.name", "contact.address"],
                        story_topics=["housing"],
                        case_reference=f"HOU-{round_}",
                        duration_days=30,
                        data_life_days=90,
                        max_fetches=3,
                    ),
                )
                grants.append((given.grant, account, person))
                for case in (f"HOU-{round_}", "WRONG", f"HOU-{round_}"):
                    fetch_for_department(
                        session,
                        vault,
                        given.grant.id,
                        given.grant.department_id,
                        acting_officer="Officer Lee",
                        case_reference=case,
                    )
    with session_scope(engine) as session:
        for grant, account, person in grants[::3]:
            revoke_grant(session, vault, citizen_actor(account.id, person.id), grant.id)
    with session_scope(engine) as session:
        remaining = SIZE - ledger.head_size(session)
    per_batch = remaining // 6 + 1
    n = 0
    while remaining > 0:
        clock.advance(seconds=2)
        with session_scope(engine) as session:
            step = min(per_batch, remaining)
            bulk_data_points(session, vault, people[n % 4], step)
            remaining -= step
            n += 1
    with session_scope(engine) as session:
        ledger.make_checkpoint(session, vault)


def describe(big: BigLog, engine: Engine) -> None:
    with engine.connect() as connection:
        for kind_table in ("data_point", "citizen", "grant", "access_event", "story_section"):
            table = TABLES[kind_table]
            found = connection.execute(
                select(ENTRY.c.idx, ENTRY.c.row_id)
                .where(ENTRY.c.row_table == kind_table, ENTRY.c.kind.not_like("%.revoked"))
                .order_by(ENTRY.c.idx)
            ).all()
            ids = list(dict.fromkeys(row_id for _, row_id in found))
            big.rows[kind_table] = ids
            for index, row_id in found:
                big.entry_of_row.setdefault(row_id, index)
            assert connection.execute(select(table.c.id)).all()
        access = TABLES["access_event"]
        big.served_ids = set(
            connection.execute(select(access.c.id).where(access.c.result == "served")).scalars()
        )
        big.checkpoints = sorted(connection.execute(select(CHECKPOINT.c.size)).scalars())
        big.root = bytes(
            connection.execute(
                select(CHECKPOINT.c.root_hash).where(CHECKPOINT.c.size == SIZE)
            ).scalar_one()
        )
