"""A fetch racing a revocation on PostgreSQL: found by test_many_workers, pinned down here.

Under READ COMMITTED a fetch reads the grant, then counts the fetch with an UPDATE. If the
person stops sharing in between (and that commits first), the fetch must be refused: the UPDATE
is the one statement that waits for, and sees, the revocation. This test holds a fetch just
before that UPDATE, revokes and commits, then lets the fetch go on.

SQLite is left out on purpose: there BEGIN IMMEDIATE gives the fetch the write lock from its
first statement, so a revocation cannot commit in between.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import event

from consent.access import Refused, Served, fetch_for_department
from consent.grants import revoke_grant
from tests.consent.factories import CASE, DEPARTMENT, Person, share, tell_facts
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.services import Vault

WAIT = 30.0  # seconds: only reached if the fetch never gets to its UPDATE (a failure)


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_a_fetch_held_while_the_grant_is_revoked_is_refused(db: Any, vault: Vault) -> None:
    with db.tx() as session:
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, "sam@example.org", citizen_id=citizen.id)
    person = Person(citizen.id, account.id)
    tell_facts(db, vault, person)
    grant = share(db, vault, person)
    held, go = threading.Event(), threading.Event()
    outcome: list[Served | Refused | BaseException] = []

    def hold_before_counting(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.current_thread() is fetcher and statement.startswith(
            'UPDATE "grant" SET fetch_count'
        ):
            held.set()
            go.wait(WAIT)

    def fetch() -> None:
        try:
            with db.tx() as session:
                outcome.append(
                    fetch_for_department(
                        session, vault, grant.id, DEPARTMENT, acting_officer="A. Officer",
                        case_reference=CASE,
                    )
                )  # fmt: skip
        except BaseException as error:  # reported below, in the test's own thread
            outcome.append(error)

    fetcher = threading.Thread(target=fetch)
    event.listen(db.engine, "before_cursor_execute", hold_before_counting)
    try:
        fetcher.start()
        assert held.wait(WAIT), "the fetch never came to count itself"
        with db.tx() as session:
            assert revoke_grant(session, vault, person.me, grant.id) is not None
        go.set()
        fetcher.join(WAIT)
    finally:
        go.set()
        event.remove(db.engine, "before_cursor_execute", hold_before_counting)
    (result,) = outcome
    if isinstance(result, BaseException):
        raise result
    assert isinstance(result, Refused), (
        f"served after the revocation committed (ledger index {result.leaf.index})"
    )
