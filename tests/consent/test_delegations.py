"""Support workers: who may invite them, what they may do, and what ends when they go."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from consent.actors import SCOPES, active_delegation, authorise
from consent.delegations import (
    change_scopes,
    delegations_for_citizen,
    delegations_for_worker,
    give_delegation,
    revoke_delegation,
)
from consent.errors import NotAllowed
from consent.grants import get_grant, give_grant, revoke_grant
from consent.models import Delegation
from tests.consent.factories import Person, ask, entries, leaf_json
from vault.errors import InvalidValue, NotFound
from vault.services import Vault


def invite(
    db: Any, vault: Vault, person: Person, worker: str, scopes: list[str], days: float = 90
) -> Delegation:
    with db.tx() as session:
        return give_delegation(
            session, vault, person.me, worker, scopes, vault.clock() + timedelta(days=days)
        )


def live_scopes(session: Any, person: Person, worker: str, now: datetime) -> tuple[str, list[str]]:
    """The id and scopes of the worker's live delegation from this person (which must exist)."""
    delegation = active_delegation(session, person.citizen_id, worker, now)
    assert delegation is not None
    return delegation.id, delegation.scopes


def test_a_citizen_invites_a_helper_and_it_is_logged(db, vault, person, worker_account):
    delegation = invite(db, vault, person, worker_account, ["answer_requests", "view", "view"])
    assert delegation.scopes == ["view", "answer_requests"]  # de-duplicated, in list order
    assert delegation.created_by == f"citizen:{person.account_id}"
    with db.tx() as session:
        (entry,) = entries(session, "delegation.given")
        assert live_scopes(session, person, worker_account, vault.clock())[0] == delegation.id
        assert [d.id for d in delegations_for_worker(session, worker_account, vault.clock())] == [
            delegation.id
        ]
    assert entry.row_id == delegation.id
    assert leaf_json(entry)["scopes"] == ["view", "answer_requests"]


def test_a_worker_can_never_invite_anyone_or_widen_their_own_scope(
    db, vault, person, worker_account
):
    delegation = invite(db, vault, person, worker_account, ["view", "answer_requests"])
    as_worker = person.helped_by(worker_account)
    end = vault.clock() + timedelta(days=30)
    with pytest.raises(NotAllowed, match="Only the person themselves"), db.tx() as session:
        give_delegation(session, vault, as_worker, worker_account, ["challenge"], end)
    with pytest.raises(NotAllowed, match="Only the person themselves"), db.tx() as session:
        change_scopes(session, vault, as_worker, delegation.id, list(SCOPES))
    with db.tx() as session:
        assert len(delegations_for_citizen(session, person.citizen_id)) == 1
        assert live_scopes(session, person, worker_account, end) == (
            delegation.id,
            ["view", "answer_requests"],
        )


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        (["view", "delete_account"], "Choose what your helper can do from the list."),
        ([], "Choose at least one thing your helper can do."),
    ],
)
def test_scopes_are_checked(db, vault, person, worker_account, scopes, message):
    with pytest.raises(InvalidValue) as raised, db.tx() as session:
        give_delegation(
            session, vault, person.me, worker_account, scopes, vault.clock() + timedelta(days=9)
        )
    assert raised.value.message == message
    assert db.scalar("SELECT COUNT(*) FROM delegation") == 0


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (timedelta(0), "The end date must be in the future."),
        (timedelta(days=-1), "The end date must be in the future."),
        (timedelta(days=367), "The end date must be within one year."),
    ],
)
def test_the_end_date_is_in_the_future_and_within_a_year(
    db, vault, person, worker_account, offset, message
):
    with pytest.raises(InvalidValue) as raised, db.tx() as session:
        give_delegation(session, vault, person.me, worker_account, ["view"], vault.clock() + offset)
    assert raised.value.message == message


def test_a_year_ahead_is_allowed(db, vault, person, worker_account):
    assert invite(db, vault, person, worker_account, ["view"], days=365).ends_at > vault.clock()


def test_a_citizen_cannot_choose_themselves(db, vault, person):
    with pytest.raises(InvalidValue, match="cannot choose yourself"), db.tx() as session:
        give_delegation(
            session, vault, person.me, person.account_id, ["view"], vault.clock() + timedelta(1)
        )


def test_changing_scopes_ends_the_old_delegation_and_starts_a_new_one(
    db, vault, clock, person, worker_account
):
    old = invite(db, vault, person, worker_account, ["view", "answer_requests"])
    with db.tx() as session:
        new = change_scopes(session, vault, person.me, old.id, ["view"])
    with db.tx() as session:
        old_now = session.get(Delegation, old.id)
        assert old_now is not None and old_now.revoked_at == clock()
        assert new.id != old.id and new.scopes == ["view"] and new.ends_at == old.ends_at
        assert live_scopes(session, person, worker_account, clock())[0] == new.id
        kinds = [e.kind for e in entries(session) if e.kind.startswith("delegation.")]
    assert kinds == ["delegation.given", "delegation.given", "delegation.revoked"]
    with pytest.raises(NotAllowed), db.tx() as session:
        give_grant(session, vault, person.helped_by(worker_account), ask())


def test_a_helper_acting_for_the_citizen_is_recorded_by_name_and_delegation(
    db, vault, person, worker_account
):
    delegation = invite(db, vault, person, worker_account, ["answer_requests"])
    with db.tx() as session:
        given = give_grant(session, vault, person.helped_by(worker_account), ask())
    assert given.grant.given_by == f"worker:{worker_account}"
    assert given.grant.delegation_id == delegation.id
    with db.tx() as session:
        (entry,) = entries(session, "grant.given")
    assert leaf_json(entry)["by"] == "worker"


def test_a_helper_without_the_scope_is_refused(db, vault, person, worker_account):
    invite(db, vault, person, worker_account, ["view", "manage_story"])
    with pytest.raises(NotAllowed, match="not allowed to do this"), db.tx() as session:
        give_grant(session, vault, person.helped_by(worker_account), ask())
    assert db.scalar('SELECT COUNT(*) FROM "grant"') == 0


def test_a_stranger_with_no_delegation_is_refused(db, vault, person, worker_account):
    with pytest.raises(NotAllowed), db.tx() as session:
        give_grant(session, vault, person.helped_by(worker_account), ask())


def test_an_expired_delegation_gives_no_rights(db, vault, clock, person, worker_account):
    delegation = invite(db, vault, person, worker_account, ["answer_requests"], days=10)
    clock.advance(days=10)  # now == ends_at
    with db.tx() as session:
        assert active_delegation(session, person.citizen_id, worker_account, clock()) is None
        assert delegations_for_worker(session, worker_account, clock()) == []
        with pytest.raises(NotAllowed):
            authorise(session, person.helped_by(worker_account), "answer_requests", clock())
    with pytest.raises(NotAllowed), db.tx() as session:
        give_grant(session, vault, person.helped_by(worker_account), ask())
    assert delegation.revoked_at is None  # ended by the clock alone


def test_ending_a_delegation_stops_every_grant_given_under_it(
    db, vault, clock, person, worker_account
):
    delegation = invite(db, vault, person, worker_account, ["answer_requests"])
    helper = person.helped_by(worker_account)
    with db.tx() as session:
        by_helper = [give_grant(session, vault, helper, ask()).grant for _ in range(2)]
        already_stopped = give_grant(session, vault, helper, ask()).grant
        by_citizen = give_grant(session, vault, person.me, ask()).grant
    with db.tx() as session:
        revoke_grant(session, vault, person.me, already_stopped.id)
    clock.advance(hours=2)
    with db.tx() as session:
        revoke_delegation(session, vault, person.me, delegation.id)
    with db.tx() as session:
        for grant in by_helper:
            stopped = get_grant(session, grant.id)
            assert stopped.revoked_by == f"delegation-ended:{delegation.id}"
            assert stopped.revoked_at == clock()
        assert get_grant(session, by_citizen.id).revoked_at is None
        assert get_grant(session, already_stopped.id).revoked_by == f"citizen:{person.account_id}"
        revoked = {e.row_id for e in entries(session, "grant.revoked")}
        (ended,) = entries(session, "delegation.revoked")
    assert revoked == {g.id for g in by_helper} | {already_stopped.id}
    assert ended.row_id == delegation.id


def test_changing_scopes_also_stops_grants_given_under_the_old_delegation(
    db, vault, person, worker_account
):
    old = invite(db, vault, person, worker_account, ["answer_requests"])
    with db.tx() as session:
        grant = give_grant(session, vault, person.helped_by(worker_account), ask()).grant
    with db.tx() as session:
        change_scopes(session, vault, person.me, old.id, ["answer_requests", "view"])
    with db.tx() as session:
        assert get_grant(session, grant.id).revoked_by == f"delegation-ended:{old.id}"


def test_a_helper_can_step_down_but_not_end_another_helper(
    db, vault, person, worker_account, make_person
):
    other = make_person()  # an account that is also a citizen can still help someone else
    mine = invite(db, vault, person, worker_account, ["view"])
    theirs = invite(db, vault, person, other.account_id, ["view"])
    with pytest.raises(NotFound), db.tx() as session:
        revoke_delegation(session, vault, person.helped_by(worker_account), theirs.id)
    with db.tx() as session:
        revoke_delegation(session, vault, person.helped_by(worker_account), mine.id)
        revoke_delegation(session, vault, person.me, mine.id)  # ending twice is harmless
    with db.tx() as session:
        assert len(entries(session, "delegation.revoked")) == 1
        assert active_delegation(session, person.citizen_id, other.account_id, vault.clock())


def test_another_citizen_cannot_end_or_change_a_delegation(
    db, vault, person, worker_account, make_person
):
    stranger = make_person()
    delegation = invite(db, vault, person, worker_account, ["view"])
    with pytest.raises(NotFound), db.tx() as session:
        revoke_delegation(session, vault, stranger.me, delegation.id)
    with pytest.raises(NotFound), db.tx() as session:
        change_scopes(session, vault, stranger.me, delegation.id, ["view", "challenge"])
    with db.tx() as session:
        assert live_scopes(session, person, worker_account, vault.clock())[0] == delegation.id
