"""Telling the person: every time, at most once a day, or not by email, as they chose."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from consent.citizen_notices import (
    CHOICE_LABELS,
    CHOICES,
    due_emails,
    get_choice,
    mark_emailed,
    notify_citizen,
    recent_notices,
    set_choice,
)
from consent.delegations import give_delegation
from consent.errors import NotAllowed
from tests.consent.factories import Person
from vault.errors import InvalidValue
from vault.lifecycle import erase_citizen
from vault.services import Vault

REF = "00000000-0000-4000-8000-000000000001"


def tell(db: Any, vault: Vault, person: Person, kind: str = "decision_recorded") -> str:
    with db.tx() as session:
        return notify_citizen(session, person.citizen_id, kind, REF, vault.clock()).id


def choose(db: Any, vault: Vault, person: Person, choice: str) -> None:
    with db.tx() as session:
        set_choice(session, vault, person.me, choice)


def due(db: Any, vault: Vault) -> list[Any]:
    with db.tx() as session:
        return due_emails(session, vault.clock())


def sent(db: Any, vault: Vault, email: Any) -> None:
    with db.tx() as session:
        mark_emailed(
            session,
            email.citizen_id,
            [n.id for n in email.notices],
            vault.clock(),
            summary=email.summary,
        )


def test_every_choice_has_words_the_person_reads():
    assert set(CHOICE_LABELS) == set(CHOICES) == {"every_time", "daily", "quiet"}


def test_a_person_is_emailed_every_time_until_they_choose(db, vault, person):
    with db.tx() as session:
        assert get_choice(session, person.citizen_id) == "every_time"
    first = tell(db, vault, person)
    (email,) = due(db, vault)
    assert (email.citizen_id, [n.id for n in email.notices], email.summary) == (
        person.citizen_id,
        [first],
        False,
    )
    sent(db, vault, email)
    assert due(db, vault) == []
    second = tell(db, vault, person, "challenge_answered")
    (email,) = due(db, vault)
    assert [n.id for n in email.notices] == [second]


def test_a_person_who_chose_daily_gets_at_most_one_summary_a_day(db, vault, clock, person):
    choose(db, vault, person, "daily")
    tell(db, vault, person)
    tell(db, vault, person, "decision_reviewed")
    (email,) = due(db, vault)
    assert email.summary is True and len(email.notices) == 2
    sent(db, vault, email)
    clock.advance(hours=1)
    tell(db, vault, person, "challenge_answered")
    clock.advance(hours=22, minutes=59)
    assert due(db, vault) == []
    clock.advance(minutes=1)
    (email,) = due(db, vault)
    assert [n.kind for n in email.notices] == ["challenge_answered"]


def test_a_person_who_chose_quiet_is_not_emailed_but_still_sees_the_news(db, vault, person):
    choose(db, vault, person, "quiet")
    notice = tell(db, vault, person)
    assert due(db, vault) == []
    with db.tx() as session:
        assert [n.id for n in recent_notices(session, person.citizen_id)] == [notice]
        assert get_choice(session, person.citizen_id) == "quiet"


def test_each_person_is_emailed_as_they_chose(db, vault, make_person):
    loud, quiet = make_person(), make_person()
    choose(db, vault, quiet, "quiet")
    tell(db, vault, loud)
    tell(db, vault, quiet)
    assert [e.citizen_id for e in due(db, vault)] == [loud.citizen_id]


def test_a_person_can_change_their_mind(db, vault, clock, person):
    choose(db, vault, person, "quiet")
    clock.advance(minutes=1)
    choose(db, vault, person, "every_time")
    tell(db, vault, person)
    assert len(due(db, vault)) == 1


def test_a_helper_cannot_choose_for_the_person(db, vault, person, worker_account):
    with db.tx() as session:
        give_delegation(
            session,
            vault,
            person.me,
            worker_account,
            ["view", "answer_requests", "challenge"],
            vault.clock() + timedelta(90),
        )
    with pytest.raises(NotAllowed), db.tx() as session:
        set_choice(session, vault, person.helped_by(worker_account), "quiet")
    with db.tx() as session:
        assert get_choice(session, person.citizen_id) == "every_time"


def test_an_unknown_choice_is_refused(db, vault, person):
    with pytest.raises(InvalidValue, match="how often"), db.tx() as session:
        set_choice(session, vault, person.me, "weekly")


def test_an_unknown_kind_of_notice_is_a_programming_error(db, vault, person):
    with pytest.raises(ValueError, match="unknown citizen notice kind"), db.tx() as session:
        notify_citizen(session, person.citizen_id, "birthday", REF, vault.clock())


def test_recent_notices_are_newest_first_and_limited(db, vault, clock, person):
    ids = []
    for _ in range(4):
        ids.append(tell(db, vault, person))
        clock.advance(minutes=1)
    with db.tx() as session:
        recent = recent_notices(session, person.citizen_id, limit=3)
    assert [n.id for n in recent] == list(reversed(ids))[:3]


def test_marking_emailed_touches_only_that_persons_notices(db, vault, make_person):
    first, second = make_person(), make_person()
    mine = tell(db, vault, first)
    theirs = tell(db, vault, second)
    with db.tx() as session:
        mark_emailed(session, first.citizen_id, [mine, theirs], vault.clock(), summary=False)
    assert [(e.citizen_id, [n.id for n in e.notices]) for e in due(db, vault)] == [
        (second.citizen_id, [theirs])
    ]


def test_nobody_is_emailed_after_they_deleted_their_account(db, vault, person):
    tell(db, vault, person)
    with db.tx() as session:
        erase_citizen(session, vault, person.citizen_id)
    assert due(db, vault) == []
