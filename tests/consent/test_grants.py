"""Giving, stopping and expiring grants: what is checked, who may do it, and what is logged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from consent.delegations import give_delegation
from consent.errors import NotAllowed
from consent.grants import (
    expire_due_grants,
    get_grant,
    give_grant,
    grants_for_citizen,
    revoke_grant,
    revoke_grant_with_receipt,
)
from tests.consent.factories import Person, ask, entries, leaf_json
from vault.errors import InvalidValue, NotFound, UnknownKey
from vault.services import Vault

NOT_FOUND = "We could not find that permission."


def counts(db: Any) -> tuple[int, int]:
    return (
        db.scalar('SELECT COUNT(*) FROM "grant"'),
        db.scalar("SELECT COUNT(*) FROM ledger_entry"),
    )


def helper_for(db: Any, vault: Vault, person: Person, worker: str, scopes: list[str]) -> None:
    with db.tx() as session:
        give_delegation(session, vault, person.me, worker, scopes, vault.clock() + timedelta(90))


BAD_REQUESTS = [
    pytest.param(
        {"data_points": ["contact.phone", "contact.fax"]},
        UnknownKey,
        "We do not know the kind of information 'contact.fax'.",
        id="unknown-key",
    ),
    pytest.param(
        {"story_topics": ["housing", "holidays"]},
        InvalidValue,
        "The story topic must be one of the topics on the list.",
        id="unknown-topic",
    ),
    pytest.param(
        {"story_topics": ["housing"], "explicit_topics": ["health"]},
        InvalidValue,
        "A topic can only be shared once if it is part of the request.",
        id="explicit-topic-not-asked-for",
    ),
    *[
        pytest.param(
            {"case_reference": ref},
            InvalidValue,
            "The case reference must be 1 to 64 letters, digits, or - _ / .",
            id=f"case-reference-{name}",
        )
        for name, ref in (
            ("empty", ""),
            ("space", "HOU 2291"),
            ("leading-dash", "-HOU"),
            ("too-long", "H" * 65),
            ("markup", "<b>HOU</b>"),
        )
    ],
    *[
        pytest.param(
            {field: value},
            InvalidValue,
            f"{label} must be a whole number from 1 to {most}.",
            id=f"{field}-{value!r}",
        )
        for field, label, most in (
            ("duration_days", "Duration in days", 366),
            ("data_life_days", "Data life in days", 3650),
            ("max_fetches", "The fetch limit", 10_000),
        )
        for value in (0, -1, most + 1, 10**12, True, 2.5, "30")
    ],
    pytest.param(
        {"data_points": [], "story_topics": []},
        InvalidValue,
        "A grant must share at least one thing.",
        id="nothing-shared",
    ),
    pytest.param(
        {"purpose_code": "Emergency Housing!"},
        InvalidValue,
        "The purpose code must be short lower-case letters, digits or _.",
        id="bad-purpose-code",
    ),
    pytest.param(
        {"purpose_text": "   "},
        InvalidValue,
        "The purpose must be explained in 1 to 500 characters.",
        id="blank-purpose",
    ),
]


@pytest.mark.parametrize(("changes", "error", "message"), BAD_REQUESTS)
def test_a_bad_request_is_refused_plainly_and_leaves_no_trace(
    db, vault, person, changes, error, message
):
    before = counts(db)
    with pytest.raises(error) as raised, db.tx() as session:
        give_grant(session, vault, person.me, ask(**changes))
    assert type(raised.value) is error
    assert raised.value.message == message
    assert counts(db) == before


def test_the_longest_allowed_values_are_accepted(db, vault, person):
    with db.tx() as session:
        given = give_grant(
            session,
            vault,
            person.me,
            ask(
                case_reference="H" * 64, duration_days=366, data_life_days=3650, max_fetches=10_000
            ),
        )
    assert given.grant.ends_at - given.grant.starts_at == timedelta(days=366)


def test_giving_a_grant_records_exactly_what_was_agreed_and_logs_it(db, vault, clock, person):
    with db.tx() as session:
        given = give_grant(
            session,
            vault,
            person.me,
            ask(data_points=["housing.status", "contact.phone", "housing.status"]),
        )
    grant = given.grant
    assert grant.data_points == ["housing.status", "contact.phone"]  # duplicates dropped
    assert (grant.starts_at, grant.ends_at) == (clock(), clock() + timedelta(days=30))
    assert (grant.given_by, grant.delegation_id) == (f"citizen:{person.account_id}", None)
    with db.tx() as session:
        (entry,) = entries(session, "grant.given")
    assert entry.idx == given.leaf.index
    assert entry.row_id == grant.id
    body = leaf_json(entry)
    assert body["data_points"] == ["housing.status", "contact.phone"]
    assert body["department_id"] == "dept-housing"


def test_the_citizen_can_stop_their_grant(db, vault, clock, person):
    with db.tx() as session:
        grant = give_grant(session, vault, person.me, ask()).grant
    clock.advance(hours=1)
    with db.tx() as session:
        leaf = revoke_grant(session, vault, person.me, grant.id)
    with db.tx() as session:
        stopped = get_grant(session, grant.id)
        (entry,) = entries(session, "grant.revoked")
    assert stopped.revoked_at == clock()
    assert stopped.revoked_by == f"citizen:{person.account_id}"
    assert leaf is not None and entry.idx == leaf.index and entry.row_id == grant.id


def test_a_helper_allowed_to_answer_requests_can_stop_a_grant(db, vault, person, worker_account):
    helper_for(db, vault, person, worker_account, ["view", "answer_requests"])
    with db.tx() as session:
        grant = give_grant(session, vault, person.me, ask()).grant
    with db.tx() as session:
        assert revoke_grant(session, vault, person.helped_by(worker_account), grant.id)
    with db.tx() as session:
        assert get_grant(session, grant.id).revoked_by == f"worker:{worker_account}"


def test_a_helper_without_answer_requests_cannot_stop_a_grant(db, vault, person, worker_account):
    helper_for(db, vault, person, worker_account, ["view", "manage_story"])
    with db.tx() as session:
        grant = give_grant(session, vault, person.me, ask()).grant
    before = counts(db)
    with pytest.raises(NotAllowed, match="not allowed to do this"), db.tx() as session:
        revoke_grant(session, vault, person.helped_by(worker_account), grant.id)
    assert counts(db) == before
    with db.tx() as session:
        assert get_grant(session, grant.id).revoked_at is None


def test_another_citizen_cannot_stop_a_grant_or_learn_that_it_exists(db, vault, make_person):
    owner, stranger = make_person(), make_person()
    with db.tx() as session:
        grant = give_grant(session, vault, owner.me, ask()).grant
    with pytest.raises(NotFound) as theirs, db.tx() as session:
        revoke_grant(session, vault, stranger.me, grant.id)
    with pytest.raises(NotFound) as nobodys, db.tx() as session:
        revoke_grant(session, vault, stranger.me, "00000000-0000-4000-8000-000000000000")
    # The same words either way, so a guessed id reveals nothing.
    assert theirs.value.message == nobodys.value.message == NOT_FOUND
    with db.tx() as session:
        assert get_grant(session, grant.id).revoked_at is None


def test_stopping_twice_is_harmless_and_logged_once(db, vault, clock, person):
    with db.tx() as session:
        grant = give_grant(session, vault, person.me, ask()).grant
    with db.tx() as session:
        revoke_grant(session, vault, person.me, grant.id)
    first = clock()
    clock.advance(minutes=5)
    before = counts(db)
    with db.tx() as session:
        assert revoke_grant(session, vault, person.me, grant.id) is None
        assert revoke_grant_with_receipt(session, vault, person.me, grant.id) is None
    assert counts(db) == before
    with db.tx() as session:
        assert get_grant(session, grant.id).revoked_at == first
        assert len(entries(session, "grant.revoked")) == 1


def test_expiry_marks_each_due_grant_once_with_a_ledger_entry(db, vault, clock, make_person):
    alice, bob = make_person(), make_person()
    with db.tx() as session:
        short = give_grant(session, vault, alice.me, ask(duration_days=1)).grant
        long = give_grant(session, vault, bob.me, ask(duration_days=60)).grant
        stopped = give_grant(session, vault, bob.me, ask(duration_days=1)).grant
    with db.tx() as session:
        revoke_grant(session, vault, bob.me, stopped.id)
    with db.tx() as session:
        assert expire_due_grants(session, vault) == 0
    clock.advance(days=1)
    with db.tx() as session:
        assert expire_due_grants(session, vault) == 1
    with db.tx() as session:
        assert expire_due_grants(session, vault) == 0  # already marked: no second entry
        (entry,) = entries(session, "grant.expired")
        assert entry.row_id == short.id
        assert leaf_json(entry)["grant_id"] == short.id
        assert get_grant(session, short.id).expired_at == clock()
        assert get_grant(session, long.id).expired_at is None
        assert get_grant(session, stopped.id).expired_at is None  # stopped, not expired


def test_grants_for_citizen_lists_only_theirs_newest_first(db, vault, clock, make_person):
    alice, bob = make_person(), make_person()
    with db.tx() as session:
        first = give_grant(session, vault, alice.me, ask()).grant
        give_grant(session, vault, bob.me, ask())
    clock.advance(minutes=1)
    with db.tx() as session:
        second = give_grant(session, vault, alice.me, ask(purpose_code="rehousing")).grant
    with db.tx() as session:
        assert [g.id for g in grants_for_citizen(session, alice.citizen_id)] == [
            second.id,
            first.id,
        ]
