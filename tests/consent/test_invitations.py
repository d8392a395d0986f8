"""Invitations: a one-time code a citizen hands a helper, which becomes a delegation once."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from consent import actors
from consent.delegations import delegations_for_citizen, delegations_for_worker
from consent.errors import NotAllowed
from consent.invitations import (
    BAD_CODE,
    accept_invitation,
    create_invitation,
    invitations_for_citizen,
    revoke_invitation,
)
from consent.models import Invitation
from tests.consent.factories import Person
from vault.clock import FrozenClock
from vault.errors import InvalidValue
from vault.models import LedgerEntry
from vault.services import Vault

CODE_SHAPE = re.compile(r"^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$")


def invite(db: Any, vault: Vault, person: Person, scopes: tuple[str, ...] = ("view",)) -> str:
    with db.tx() as session:
        made = create_invitation(
            session,
            vault,
            actors.citizen(person.account_id, person.citizen_id),
            scopes,
            vault.clock() + timedelta(days=90),
        )
        return made.code


def accept(db: Any, vault: Vault, code: str, account_id: str) -> Any:
    with db.tx() as session:
        return accept_invitation(session, vault, code, account_id)


def test_the_code_is_readable_and_only_its_hash_is_kept(
    db: Any, vault: Vault, person: Person
) -> None:
    code = invite(db, vault, person)
    assert CODE_SHAPE.match(code)
    assert not set(code) & set("0O1IL")
    with db.tx() as session:
        stored = session.execute(select(Invitation)).scalar_one()
        assert code.replace("-", "") not in repr(stored.model_dump())
        assert len(stored.code_hash) == 64
        assert stored.expires_at == vault.clock() + timedelta(days=7)


def test_a_helper_uses_the_code_once(
    db: Any, vault: Vault, person: Person, worker_account: str, make_person: Any
) -> None:
    code = invite(db, vault, person, ("view", "answer_requests"))
    # Typed in lower case with spaces, as people do.
    delegation = accept(db, vault, code.lower().replace("-", " "), worker_account)
    assert delegation.scopes == ["view", "answer_requests"]
    assert delegation.created_by == f"citizen:{person.account_id}"
    with db.tx() as session:
        assert [d.id for d in delegations_for_worker(session, worker_account, vault.clock())] == [
            delegation.id
        ]
        entry = session.execute(select(LedgerEntry)).scalars().all()[-1]
        assert entry.kind == "delegation.given"
    other = make_person()
    with pytest.raises(InvalidValue) as used:
        accept(db, vault, code, other.account_id)
    assert used.value.message == BAD_CODE


def test_every_bad_code_gets_the_same_answer(
    db: Any, vault: Vault, clock: FrozenClock, person: Person, worker_account: str
) -> None:
    expired = invite(db, vault, person)
    revoked = invite(db, vault, person)
    with db.tx() as session:
        row = session.execute(
            select(Invitation).order_by(Invitation.created_at.desc())  # type: ignore[attr-defined]
        ).scalars()
        newest = next(iter(row))
        revoke_invitation(
            session, vault, actors.citizen(person.account_id, person.citizen_id), newest.id
        )
    clock.advance(days=7)
    messages = set()
    for code in (expired, revoked, "ABCD-EFGH-JKMN", "", "!!!"):
        with pytest.raises(InvalidValue) as bad:
            accept(db, vault, code, worker_account)
        messages.add(bad.value.message)
    assert messages == {BAD_CODE}
    with db.tx() as session:
        assert delegations_for_citizen(session, person.citizen_id) == []


def test_a_code_still_works_just_before_seven_days(
    db: Any, vault: Vault, clock: FrozenClock, person: Person, worker_account: str
) -> None:
    code = invite(db, vault, person)
    clock.advance(days=6, hours=23)
    assert accept(db, vault, code, worker_account).worker_account_id == worker_account


def test_a_person_cannot_be_their_own_helper(db: Any, vault: Vault, person: Person) -> None:
    code = invite(db, vault, person)
    with pytest.raises(InvalidValue, match="own helper"):
        accept(db, vault, code, person.account_id)
    with db.tx() as session:
        # The refusal did not use up the code.
        assert invitations_for_citizen(session, person.citizen_id)[0].used_at is None


@pytest.mark.parametrize(
    ("scopes", "days", "message"),
    [
        ((), 30, "Choose at least one"),
        (("view", "delete_account"), 30, "from the list"),
        (("view",), 0, "in the future"),
        (("view",), -3, "in the future"),
        (("view",), 400, "within one year"),
    ],
)
def test_what_the_citizen_chooses_is_checked(
    db: Any, vault: Vault, person: Person, scopes: tuple[str, ...], days: int, message: str
) -> None:
    with db.tx() as session, pytest.raises(InvalidValue, match=message):
        create_invitation(
            session,
            vault,
            actors.citizen(person.account_id, person.citizen_id),
            scopes,
            vault.clock() + timedelta(days=days),
        )


def test_a_worker_cannot_invite_anyone(
    db: Any, vault: Vault, person: Person, worker_account: str
) -> None:
    code = invite(db, vault, person, ("view", "answer_requests", "manage_story", "challenge"))
    accept(db, vault, code, worker_account)
    acting = actors.worker(worker_account, person.citizen_id)
    with db.tx() as session, pytest.raises(NotAllowed):
        create_invitation(session, vault, acting, ("view",), vault.clock() + timedelta(days=5))
    with db.tx() as session:
        invitation = invitations_for_citizen(session, person.citizen_id)[0]
        with pytest.raises(NotAllowed):
            revoke_invitation(session, vault, acting, invitation.id)


def test_a_second_invitation_replaces_what_the_helper_could_do(
    db: Any, vault: Vault, person: Person, worker_account: str
) -> None:
    accept(db, vault, invite(db, vault, person, ("view", "challenge")), worker_account)
    accept(db, vault, invite(db, vault, person, ("view",)), worker_account)
    with db.tx() as session:
        live = delegations_for_worker(session, worker_account, vault.clock())
        assert [d.scopes for d in live] == [["view"]]
