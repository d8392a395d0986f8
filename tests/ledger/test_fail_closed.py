"""Fail closed: when the ledger cannot be written, the change does not happen and no data
leaves the vault."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from consent.access import Served, fetch_for_department
from consent.actors import citizen as citizen_actor
from consent.grants import GrantRequest, get_grant, give_grant
from vault import ledger_rows
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.errors import LedgerError
from vault.records import current_data_points, record_data_point, record_story_section
from vault.verify import verify_ledger

CANARY = "Ottoline Brackenbury-Vasquez"
DEPARTMENT = "housing-team"
CASE = "HOU-7781"

_SQLITE_ON = (
    "CREATE TRIGGER ledger_down BEFORE INSERT ON ledger_entry "
    "BEGIN SELECT RAISE(ABORT, 'disk full'); END"
)
_PG_ON = [
    "CREATE FUNCTION ledger_down() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$",
    "CREATE TRIGGER ledger_down BEFORE INSERT ON ledger_entry "
    "FOR EACH ROW EXECUTE FUNCTION ledger_down()",
]
_PG_OFF = [
    "DROP TRIGGER IF EXISTS ledger_down ON ledger_entry",
    "DROP FUNCTION IF EXISTS ledger_down()",
]


class LedgerSwitch:
    """Makes every write to ledger_entry fail, and puts things back."""

    def __init__(self, how: str, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.how, self.db, self.monkeypatch = how, db, monkeypatch
        self.down = False

    def break_ledger(self) -> None:
        """Break the ledger."""
        self.down = True
        if self.how == "connection drops":
            real_insert = ledger_rows.insert

            def failing_insert(table: Any) -> Any:
                # The model or its table, whichever the ledger's rows go into.
                if getattr(table, "name", getattr(table, "__tablename__", "")) == "ledger_entry":
                    raise OperationalError("INSERT INTO ledger_entry", {}, OSError("gone away"))
                return real_insert(table)

            self.monkeypatch.setattr(ledger_rows, "insert", failing_insert)
        elif self.db.engine.dialect.name == "sqlite":
            self.db.execute(_SQLITE_ON)
        else:
            for statement in _PG_ON:
                self.db.execute(statement)

    def mend(self) -> None:
        """Mend the ledger."""
        if not self.down:
            return
        self.down = False
        if self.how == "connection drops":
            self.monkeypatch.undo()
        elif self.db.engine.dialect.name == "sqlite":
            self.db.execute("DROP TRIGGER IF EXISTS ledger_down")
        else:
            for statement in _PG_OFF:
                self.db.execute(statement)


@pytest.fixture(params=["database refuses", "connection drops"])
def ledger_switch(
    request: pytest.FixtureRequest, db: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LedgerSwitch]:
    """A ledger that a test can break: by a database error, or by a lost connection."""
    switch = LedgerSwitch(request.param, db, monkeypatch)
    yield switch
    # The PostgreSQL test database is shared by later tests: always mend it.
    switch.mend()


@pytest.fixture
def person(db: Any, vault: Any) -> dict[str, str]:
    """A citizen with an account, a fact, and a grant to a department (ledger working)."""
    with db.tx() as session:
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, "ottoline@example.org", citizen_id=citizen.id)
        record_data_point(session, vault, citizen.id, "identity.name", CANARY, recorded_by="self")
        given = give_grant(
            session,
            vault,
            citizen_actor(account.id, citizen.id),
            GrantRequest(
                department_id=DEPARTMENT,
                purpose_code="emergency_housing",
                purpose_text="To find you somewhere to stay.",
                data_points=["identity.name"],
                case_reference=CASE,
                duration_days=30,
                data_life_days=90,
                max_fetches=5,
            ),
        )
    return {"citizen_id": citizen.id, "account_id": account.id, "grant_id": given.grant.id}


def _count(db: Any, table: str) -> int:
    # The table names are our own constants, not input.
    return int(db.scalar(f'SELECT count(*) FROM "{table}"'))  # noqa: S608


def _assert_ledger_unchanged(db: Any, size: int) -> None:
    assert _count(db, "ledger_entry") == size
    assert int(db.scalar("SELECT size FROM ledger_head")) == size


def _plain(error: pytest.ExceptionInfo[LedgerError]) -> None:
    message = error.value.message
    assert "not" in message and CANARY not in message and "disk full" not in message


def test_a_grant_is_not_given_when_the_ledger_is_down(
    db: Any, vault: Any, person: dict[str, str], ledger_switch: LedgerSwitch
) -> None:
    before = _count(db, "ledger_entry")
    ledger_switch.break_ledger()
    request = GrantRequest(
        department_id="benefits-team",
        purpose_code="benefit_claim",
        purpose_text="To work out your benefit.",
        data_points=["identity.name"],
        case_reference="BEN-1",
        duration_days=10,
        data_life_days=30,
        max_fetches=1,
    )
    actor = citizen_actor(person["account_id"], person["citizen_id"])
    with pytest.raises(LedgerError) as error, db.tx() as session:
        give_grant(session, vault, actor, request)
    _plain(error)
    assert db.scalar("""SELECT count(*) FROM "grant" WHERE department_id = 'benefits-team'""") == 0
    assert _count(db, "grant") == 1
    _assert_ledger_unchanged(db, before)


def test_a_fact_is_not_recorded_when_the_ledger_is_down(
    db: Any, vault: Any, person: dict[str, str], ledger_switch: LedgerSwitch
) -> None:
    before = _count(db, "ledger_entry")
    ledger_switch.break_ledger()
    with pytest.raises(LedgerError) as error, db.tx() as session:
        record_data_point(
            session, vault, person["citizen_id"], "identity.name", CANARY + " II", recorded_by="x"
        )
    _plain(error)
    with pytest.raises(LedgerError), db.tx() as session:
        record_story_section(
            session, vault, person["citizen_id"], "housing", "I sleep in my car.", recorded_by="x"
        )
    assert _count(db, "data_point") == 1
    assert _count(db, "story_section") == 0
    _assert_ledger_unchanged(db, before)
    with db.tx() as session:
        (name,) = current_data_points(session, vault, person["citizen_id"])
    # The old version is still the current one: the failed correction left no trace.
    assert (name.value, name.version, name.status) == (CANARY, 1, "current")


def test_no_data_is_served_when_the_ledger_is_down(
    db: Any, vault: Any, person: dict[str, str], ledger_switch: LedgerSwitch
) -> None:
    before = _count(db, "ledger_entry")
    ledger_switch.break_ledger()
    returned: list[Any] = []
    for case in (CASE, "WRONG-CASE"):  # served, and refused: both must be recorded first
        with pytest.raises(LedgerError) as error, db.tx() as session:
            returned.append(
                fetch_for_department(
                    session,
                    vault,
                    person["grant_id"],
                    DEPARTMENT,
                    acting_officer="Officer Kim",
                    case_reference=case,
                )
            )
        _plain(error)
    assert returned == []
    assert _count(db, "access_event") == 0
    with db.tx() as session:
        assert get_grant(session, person["grant_id"]).fetch_count == 0
    _assert_ledger_unchanged(db, before)


def test_once_the_ledger_is_back_everything_works_and_verifies(
    db: Any, vault: Any, person: dict[str, str], ledger_switch: LedgerSwitch
) -> None:
    before = _count(db, "ledger_entry")
    ledger_switch.break_ledger()
    with pytest.raises(LedgerError), db.tx() as session:
        fetch_for_department(
            session,
            vault,
            person["grant_id"],
            DEPARTMENT,
            acting_officer="Officer Kim",
            case_reference=CASE,
        )
    ledger_switch.mend()
    with db.tx() as session:
        served = fetch_for_department(
            session,
            vault,
            person["grant_id"],
            DEPARTMENT,
            acting_officer="Officer Kim",
            case_reference=CASE,
        )
    assert isinstance(served, Served)
    assert served.leaf.index == before
    with db.tx() as session:
        assert verify_ledger(session, vault).ok
