"""The one rule for what a department may receive: consent.grants.may_serve, rule by rule.

Each test gives a real grant in the database and moves the injected clock; the reasons are
the plain words a department (and the citizen's history page) will show.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from consent.access import fetch_for_department
from consent.grants import expire_due_grants, get_grant, give_grant, may_serve, revoke_grant
from consent.models import Grant
from tests.consent.factories import CASE, DEPARTMENT, Person, ask
from vault.clock import FrozenClock
from vault.services import Vault

NOT_COVERED = "This information is not covered."
STORY_NOT_COVERED = "This part of the story is not covered."
ENDED = "This permission has ended."
STOPPED = "The person stopped this permission."
NOT_STARTED = "This permission has not started yet."
USED_UP = "This permission has been used as many times as agreed."
ASK_EACH_TIME = "The person wants to be asked each time."


def give(db: Any, vault: Vault, person: Person, **changes: Any) -> Grant:
    with db.tx() as session:
        return give_grant(session, vault, person.me, ask(**changes)).grant


def reload(db: Any, grant_id: str) -> Grant:
    with db.tx() as session:
        return get_grant(session, grant_id)


def fetch(db: Any, vault: Vault, grant: Grant) -> None:
    with db.tx() as session:
        fetch_for_department(
            session, vault, grant.id, DEPARTMENT, acting_officer="Officer 7", case_reference=CASE
        )


def test_active_grant_serves_every_key_and_topic_it_covers(db, vault, clock, person):
    grant = give(db, vault, person, data_points=["contact.phone", "housing.status"])
    now = clock()
    assert may_serve(grant, "contact.phone", now).allowed
    assert may_serve(grant, "housing.status", now).allowed
    assert may_serve(grant, "story:housing", now, sensitivity="normal").allowed


def test_a_key_the_grant_does_not_cover_is_refused(db, vault, clock, person):
    grant = give(db, vault, person, data_points=["contact.phone"])
    decision = may_serve(grant, "money.income_monthly", clock())
    assert not decision.allowed
    assert decision.reason == NOT_COVERED


def test_a_story_topic_the_grant_does_not_cover_is_refused(db, vault, clock, person):
    grant = give(db, vault, person, story_topics=["housing"])
    decision = may_serve(grant, "story:health", clock(), sensitivity="normal")
    assert (decision.allowed, decision.reason) == (False, STORY_NOT_COVERED)


def test_a_covered_topic_with_no_story_written_is_not_served(db, vault, clock, person):
    # No current section means no sensitivity: nothing to serve, and never a guess.
    grant = give(db, vault, person, story_topics=["housing"])
    decision = may_serve(grant, "story:housing", clock(), sensitivity=None)
    assert (decision.allowed, decision.reason) == (False, STORY_NOT_COVERED)


def test_a_grant_that_has_not_started_serves_nothing_until_its_start(db, vault, clock, person):
    grant = give(db, vault, person, starts_at=clock() + timedelta(days=2))
    decision = may_serve(grant, "contact.phone", clock())
    assert (decision.allowed, decision.reason) == (False, NOT_STARTED)
    clock.advance(days=2)
    assert may_serve(grant, "contact.phone", clock()).allowed


def test_the_clock_alone_ends_a_grant_at_its_end_time(db, vault, clock: FrozenClock, person):
    grant = give(db, vault, person, duration_days=30)
    clock.advance(days=30, seconds=-1)
    assert may_serve(grant, "contact.phone", clock()).allowed
    clock.advance(seconds=1)  # now == ends_at: ended, even before any expiry job has run
    assert grant.expired_at is None
    decision = may_serve(grant, "contact.phone", clock())
    assert (decision.allowed, decision.reason) == (False, ENDED)


def test_an_expired_grant_stays_ended_even_if_the_clock_is_wrong(
    db, vault, clock: FrozenClock, person
):
    grant = give(db, vault, person, duration_days=1)
    start = clock()
    clock.advance(days=1)
    with db.tx() as session:
        assert expire_due_grants(session, vault) == 1
    clock.now = start  # a clock set back must not bring the grant back to life
    decision = may_serve(reload(db, grant.id), "contact.phone", clock())
    assert (decision.allowed, decision.reason) == (False, ENDED)


def test_a_revoked_grant_serves_nothing(db, vault, clock, person):
    grant = give(db, vault, person)
    with db.tx() as session:
        revoke_grant(session, vault, person.me, grant.id)
    grant = reload(db, grant.id)
    for item, sensitivity in (("contact.phone", None), ("story:housing", "normal")):
        decision = may_serve(grant, item, clock(), sensitivity=sensitivity)
        assert (decision.allowed, decision.reason) == (False, STOPPED)


def test_stopping_is_reported_before_ending(db, vault, clock: FrozenClock, person):
    grant = give(db, vault, person, duration_days=1)
    with db.tx() as session:
        revoke_grant(session, vault, person.me, grant.id)
    clock.advance(days=5)
    assert may_serve(reload(db, grant.id), "contact.phone", clock()).reason == STOPPED


def test_a_grant_used_as_many_times_as_agreed_serves_nothing_more(db, vault, clock, person):
    grant = give(db, vault, person, max_fetches=2)
    fetch(db, vault, grant)
    assert may_serve(reload(db, grant.id), "contact.phone", clock()).allowed
    fetch(db, vault, grant)
    decision = may_serve(reload(db, grant.id), "contact.phone", clock())
    assert (decision.allowed, decision.reason) == (False, USED_UP)


def test_a_normal_story_topic_is_served_on_every_fetch(db, vault, clock, person):
    grant = give(db, vault, person, story_topics=["housing"])
    fetch(db, vault, grant)
    fetch(db, vault, grant)
    assert may_serve(reload(db, grant.id), "story:housing", clock(), sensitivity="normal").allowed


def test_ask_me_each_time_story_is_never_served_under_a_standing_grant(db, vault, clock, person):
    # The topic is covered, but the person never gave it the second, explicit yes.
    grant = give(db, vault, person, story_topics=["health"])
    decision = may_serve(grant, "story:health", clock(), sensitivity="ask_me_each_time")
    assert (decision.allowed, decision.reason) == (False, ASK_EACH_TIME)


def test_ask_me_each_time_story_is_served_once_with_an_explicit_yes(db, vault, clock, person):
    grant = give(db, vault, person, story_topics=["health"], explicit_topics=["health"])
    assert may_serve(grant, "story:health", clock(), sensitivity="ask_me_each_time").allowed
    fetch(db, vault, grant)
    decision = may_serve(
        reload(db, grant.id), "story:health", clock(), sensitivity="ask_me_each_time"
    )
    assert (decision.allowed, decision.reason) == (False, ASK_EACH_TIME)


def test_an_explicit_yes_for_one_topic_does_not_open_another(db, vault, clock, person):
    grant = give(db, vault, person, story_topics=["health", "justice"], explicit_topics=["health"])
    decision = may_serve(grant, "story:justice", clock(), sensitivity="ask_me_each_time")
    assert (decision.allowed, decision.reason) == (False, ASK_EACH_TIME)


@pytest.mark.parametrize("sensitivity", ["", "secret", "ASK_ME_EACH_TIME"])
def test_an_unknown_sensitivity_is_treated_as_not_covered(db, vault, clock, person, sensitivity):
    grant = give(db, vault, person, story_topics=["housing"])
    decision = may_serve(grant, "story:housing", clock(), sensitivity=sensitivity)
    assert (decision.allowed, decision.reason) == (False, STORY_NOT_COVERED)
