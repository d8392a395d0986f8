"""Challenges: "this is wrong", one month to answer, everyone who used it told, and an answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from consent.challenges import (
    ChallengeRejected,
    answer_challenge,
    challenge_for_citizen,
    challenges_for_citizen,
    challenges_for_department,
    due_date,
    is_overdue,
    open_challenge,
)
from consent.decision_models import Challenge, CitizenNotice, Decision
from consent.decision_views import decision_for_citizen, decisions_for_citizen
from consent.decisions import review_decision
from consent.delegations import give_delegation
from consent.errors import NotAllowed
from consent.notices import (
    CHALLENGE_OPENED,
    DATA_POINT_CONTESTED,
    DATA_POINT_CORRECTED,
    DECISION_REVIEW_REQUESTED,
    DepartmentNotice,
    take_notices,
)
from tests.consent.factories import (
    DEPARTMENT,
    NEW_PHONE,
    OFFICER,
    OTHER_DEPARTMENT,
    PHONE,
    Person,
    entries,
    leaf_json,
    record,
    share,
    tell_facts,
)
from vault.errors import NotFound
from vault.records import current_data_points, data_point_history, record_data_point
from vault.services import Vault

REASON = "That is my old number. I changed it last week."
ANSWER = "We checked with you by letter and updated the number."
NOT_FOUND = "We could not find that challenge."
PHONE_V1 = ("contact.phone", 1)


@pytest.fixture
def decision(db: Any, vault: Vault, person: Person) -> Decision:
    """A housing decision that used the person's phone number and housing status."""
    tell_facts(db, vault, person)
    return record(db, vault, share(db, vault, person))


def challenge(
    db: Any,
    vault: Vault,
    person: Person,
    decision_id: str,
    data_point: tuple[str, int] | None = PHONE_V1,
    *,
    reason: str = REASON,
    actor: Any = None,
) -> tuple[Challenge, list[DepartmentNotice]]:
    """Open a challenge; return it and what departments were told in that transaction."""
    with db.tx() as session:
        opened = open_challenge(
            session,
            vault,
            actor or person.me,
            decision_id=decision_id,
            reason=reason,
            data_point=data_point,
        )
        return opened, take_notices(session)


def answer(
    db: Any, vault: Vault, challenge_id: str, outcome: str = "corrected", **changes: Any
) -> tuple[Challenge, list[DepartmentNotice]]:
    """The department answers; return the challenge and what departments were told."""
    arguments: dict[str, Any] = {
        "reasons": ANSWER,
        "answered_by": "Jo Reid, Housing Options",
        "new_value": NEW_PHONE if outcome == "corrected" else None,
        **changes,
    }
    department = arguments.pop("department", DEPARTMENT)
    with db.tx() as session:
        answered = answer_challenge(
            session, vault, department, challenge_id, outcome=outcome, **arguments
        )
        return answered, take_notices(session)


def point_status(db: Any, person: Person, key: str, version: int) -> str:
    return db.scalar(
        "SELECT status FROM data_point WHERE citizen_id = :c AND key = :k AND version = :v",
        c=person.citizen_id,
        k=key,
        v=version,
    )


def counts(db: Any) -> tuple[int, int]:
    return db.scalar("SELECT count(*) FROM challenge"), db.scalar(
        "SELECT count(*) FROM ledger_entry"
    )


@pytest.mark.parametrize(
    ("opened", "due"),
    [
        (datetime(2026, 3, 14, 9, 30, tzinfo=UTC), datetime(2026, 4, 14, 9, 30, tzinfo=UTC)),
        (datetime(2026, 1, 31, 17, 5, tzinfo=UTC), datetime(2026, 2, 28, 17, 5, tzinfo=UTC)),
        (datetime(2028, 1, 31, 8, 0, tzinfo=UTC), datetime(2028, 2, 29, 8, 0, tzinfo=UTC)),
        (datetime(2026, 12, 15, 12, 0, tzinfo=UTC), datetime(2027, 1, 15, 12, 0, tzinfo=UTC)),
        (datetime(2026, 5, 31, 23, 59, tzinfo=UTC), datetime(2026, 6, 30, 23, 59, tzinfo=UTC)),
    ],
    ids=["mid-month", "end-of-january", "leap-year", "december", "31-to-30"],
)
def test_a_challenge_is_due_one_calendar_month_later(opened, due):
    assert due_date(opened) == due


def test_challenging_a_data_point_marks_it_and_tells_everyone_who_used_it(
    db, vault, clock, person, decision
):
    # The benefits department was also served the same phone number.
    benefits = share(db, vault, person, department=OTHER_DEPARTMENT)
    benefits_decision = record(db, vault, benefits)
    opened, told = challenge(db, vault, person, decision.id)
    assert (opened.target, opened.department_id, opened.status) == (
        "data_point",
        DEPARTMENT,
        "open",
    )
    assert (opened.data_point_key, opened.data_point_version) == PHONE_V1
    assert (opened.opened_at, opened.due_at) == (clock(), due_date(clock()))
    assert opened.opened_by == f"citizen:{person.account_id}"
    assert REASON.encode() not in opened.sealed_reason
    assert point_status(db, person, "contact.phone", 1) == "contested"
    contested = {n.department_id for n in told if n.event == DATA_POINT_CONTESTED}
    assert contested == {DEPARTMENT, OTHER_DEPARTMENT}
    assert all(
        n.details == {"challenge_id": opened.id, "key": "contact.phone", "version": 1}
        for n in told
        if n.event == DATA_POINT_CONTESTED
    )
    reviews = {n.details["decision_id"]: n for n in told if n.event == DECISION_REVIEW_REQUESTED}
    assert set(reviews) == {decision.id, benefits_decision.id}
    assert reviews[benefits_decision.id].department_id == OTHER_DEPARTMENT
    assert reviews[decision.id].details["because"] == "data_point_contested"
    (opened_notice,) = [n for n in told if n.event == CHALLENGE_OPENED]
    assert opened_notice.department_id == DEPARTMENT
    assert opened_notice.details == {
        "challenge_id": opened.id,
        "decision_id": decision.id,
        "target": "data_point",
        "key": "contact.phone",
        "version": 1,
    }
    with db.tx() as session:
        (entry,) = entries(session, "challenge.opened")
        notices = [n.kind for n in session.execute(select(CitizenNotice)).scalars()]
        views = {v.id: v for v in decisions_for_citizen(session, vault, person.citizen_id)}
        (current_phone,) = current_data_points(session, vault, person.citizen_id, ["contact.phone"])
    assert leaf_json(entry)["challenge_id"] == opened.id
    assert REASON.encode() not in bytes(entry.leaf)
    assert "challenge_opened" in notices
    assert views[decision.id].review_requested_because == "data_point_contested"
    # The person (and any department fetching it) still sees it, now marked as being checked.
    assert (current_phone.value, current_phone.status) == (PHONE, "contested")


def test_challenging_a_decision_flags_it_for_review(db, vault, clock, person, decision):
    opened, told = challenge(db, vault, person, decision.id, None, reason="I was never asked.")
    assert (opened.target, opened.data_point_key, opened.data_point_version) == (
        "decision",
        None,
        None,
    )
    assert point_status(db, person, "contact.phone", 1) == "current"
    assert [(n.event, n.department_id) for n in told] == [
        (DECISION_REVIEW_REQUESTED, DEPARTMENT),
        (CHALLENGE_OPENED, DEPARTMENT),
    ]
    assert told[0].details["because"] == "decision_challenged"
    with db.tx() as session:
        view = decision_for_citizen(session, vault, person.citizen_id, decision.id)
    assert (view.review_requested_at, view.review_requested_because) == (
        clock(),
        "decision_challenged",
    )


def test_challenging_an_old_version_flags_the_current_one(db, vault, person, decision):
    with db.tx() as session:
        newer = review_decision(
            session,
            vault,
            DEPARTMENT,
            decision.id,
            kind="upheld",
            reviewer_name="Sam Okoro",
            reviewer_role="Senior caseworker",
            reasons="Checked.",
            new_outcome=None,
            acting_officer=OFFICER,
        )
    _, told = challenge(db, vault, person, decision.id, None)
    assert told[0].details["decision_id"] == newer.id


def test_a_helper_with_the_challenge_scope_can_challenge_for_the_person(
    db, vault, person, worker_account, decision
):
    with db.tx() as session:
        give_delegation(
            session, vault, person.me, worker_account, ["challenge"], vault.clock() + timedelta(90)
        )
    opened, _ = challenge(db, vault, person, decision.id, actor=person.helped_by(worker_account))
    assert opened.opened_by == f"worker:{worker_account}"
    with db.tx() as session:
        (entry,) = entries(session, "challenge.opened")
    assert leaf_json(entry)["by"] == "worker"


def test_a_helper_without_the_challenge_scope_cannot(db, vault, person, worker_account, decision):
    with db.tx() as session:
        give_delegation(
            session, vault, person.me, worker_account, ["view"], vault.clock() + timedelta(90)
        )
    before = counts(db)
    with pytest.raises(NotAllowed):
        challenge(db, vault, person, decision.id, actor=person.helped_by(worker_account))
    assert counts(db) == before


def test_nobody_can_challenge_someone_elses_decision(db, vault, make_person, decision):
    stranger = make_person()
    with pytest.raises(NotFound) as theirs:
        challenge(db, vault, stranger, decision.id)
    with pytest.raises(NotFound) as nobodys:
        challenge(db, vault, stranger, "00000000-0000-4000-8000-000000000000")
    assert theirs.value.message == nobodys.value.message


def test_only_a_data_point_the_decision_used_can_be_challenged_on_it(db, vault, person, decision):
    with pytest.raises(ChallengeRejected, match="did not use that piece of information"):
        challenge(db, vault, person, decision.id, ("contact.phone", 2))


@pytest.mark.parametrize("reason", ["", "   ", "x" * 2001], ids=["empty", "blank", "too-long"])
def test_the_reason_must_be_given_in_1_to_2000_characters(db, vault, person, decision, reason):
    before = counts(db)
    with pytest.raises(ChallengeRejected, match="1 to 2000 characters"):
        challenge(db, vault, person, decision.id, reason=reason)
    assert counts(db) == before
    assert point_status(db, person, "contact.phone", 1) == "current"


def test_a_data_point_cannot_be_challenged_twice_while_open(db, vault, person, decision):
    challenge(db, vault, person, decision.id)
    other_decision = record(
        db, vault, share(db, vault, person, department=OTHER_DEPARTMENT), title="Benefits"
    )
    for decision_id in (decision.id, other_decision.id):
        with pytest.raises(ChallengeRejected) as error:
            challenge(db, vault, person, decision_id)
        assert error.value.message == "You already said this is wrong. We are checking it."


def test_a_decision_cannot_be_challenged_twice_while_open_even_by_another_version(
    db, vault, person, decision
):
    challenge(db, vault, person, decision.id, None)
    with db.tx() as session:
        newer = review_decision(
            session,
            vault,
            DEPARTMENT,
            decision.id,
            kind="adjusted",
            reviewer_name="Sam Okoro",
            reviewer_role="Senior caseworker",
            reasons="Checked.",
            new_outcome="Oak Court instead.",
            acting_officer=OFFICER,
        )
    with pytest.raises(ChallengeRejected, match="already said this is wrong"):
        challenge(db, vault, person, newer.id, None)


def test_a_decision_and_a_data_point_it_used_can_both_be_challenged(db, vault, person, decision):
    challenge(db, vault, person, decision.id, None)
    opened, _ = challenge(db, vault, person, decision.id)
    assert opened.target == "data_point"


def test_once_answered_the_same_thing_can_be_challenged_again(db, vault, person, decision):
    first, _ = challenge(db, vault, person, decision.id, None)
    answer(db, vault, first.id, "upheld")
    second, _ = challenge(db, vault, person, decision.id, None)
    assert second.id != first.id


def test_a_correction_writes_a_new_version_from_the_department(db, vault, clock, person, decision):
    benefits = share(db, vault, person, department=OTHER_DEPARTMENT)
    opened, _ = challenge(db, vault, person, decision.id)
    clock.advance(days=3)
    answered, told = answer(db, vault, opened.id)
    assert (answered.status, answered.corrected_version) == ("corrected", 2)
    assert (answered.answered_at, answered.answered_by) == (clock(), "Jo Reid, Housing Options")
    assert answered.sealed_answer is not None and ANSWER.encode() not in answered.sealed_answer
    with db.tx() as session:
        history = data_point_history(session, vault, person.citizen_id, "contact.phone")
        view = challenge_for_citizen(session, vault, person.citizen_id, opened.id)
        (entry,) = entries(session, "challenge.answered")
        decisions = {v.id: v for v in decisions_for_citizen(session, vault, person.citizen_id)}
    assert [(p.version, p.value, p.status, p.source) for p in history] == [
        (2, NEW_PHONE, "current", f"department:{DEPARTMENT}"),
        (1, PHONE, "superseded", "self"),
    ]
    assert (view.status, view.answer, view.corrected_version) == ("corrected", ANSWER, 2)
    corrected = sorted(n.department_id for n in told if n.event == DATA_POINT_CORRECTED)
    assert corrected == sorted([DEPARTMENT, OTHER_DEPARTMENT])
    assert told[0].details == {
        "challenge_id": opened.id,
        "key": "contact.phone",
        "old_version": 1,
        "new_version": 2,
    }
    (flag,) = [n for n in told if n.event == DECISION_REVIEW_REQUESTED]
    assert (flag.details["decision_id"], flag.details["because"]) == (
        decision.id,
        "data_point_corrected",
    )
    assert decisions[decision.id].review_requested_because == "data_point_corrected"
    body = leaf_json(entry)
    assert (body["status"], body["corrected_version"]) == ("corrected", 2)
    assert ANSWER.encode() not in bytes(entry.leaf)
    assert benefits.department_id == OTHER_DEPARTMENT


def test_an_upheld_data_point_is_no_longer_being_checked(db, vault, person, decision):
    opened, _ = challenge(db, vault, person, decision.id)
    answered, told = answer(db, vault, opened.id, "upheld")
    assert answered.status == "upheld" and answered.corrected_version is None
    assert point_status(db, person, "contact.phone", 1) == "current"
    assert told == []


def test_an_upheld_data_point_the_person_has_since_changed_stays_superseded(
    db, vault, person, decision
):
    opened, _ = challenge(db, vault, person, decision.id)
    with db.tx() as session:
        record_data_point(
            session, vault, person.citizen_id, "contact.phone", NEW_PHONE, recorded_by="self"
        )
    answer(db, vault, opened.id, "upheld")
    assert point_status(db, person, "contact.phone", 1) == "superseded"
    assert point_status(db, person, "contact.phone", 2) == "current"


def test_decision_changed_needs_the_review_recorded_first(db, vault, person, decision):
    opened, _ = challenge(db, vault, person, decision.id, None)
    before = counts(db)
    with pytest.raises(ChallengeRejected) as error:
        answer(db, vault, opened.id, "decision_changed")
    assert error.value.message == "Record the changed decision first, as a review."
    assert counts(db) == before
    with db.tx() as session:
        review_decision(
            session,
            vault,
            DEPARTMENT,
            decision.id,
            kind="overturned",
            reviewer_name="Sam Okoro",
            reviewer_role="Senior caseworker",
            reasons="You were right.",
            new_outcome="Oak Court.",
            acting_officer=OFFICER,
        )
    answered, _ = answer(db, vault, opened.id, "decision_changed")
    assert answered.status == "decision_changed"


def test_another_department_cannot_answer_a_challenge_or_learn_it_exists(
    db, vault, person, decision
):
    opened, _ = challenge(db, vault, person, decision.id)
    with pytest.raises(NotFound) as theirs:
        answer(db, vault, opened.id, department=OTHER_DEPARTMENT)
    with pytest.raises(NotFound) as nobodys:
        answer(db, vault, "00000000-0000-4000-8000-000000000000")
    assert theirs.value.message == nobodys.value.message == NOT_FOUND
    assert point_status(db, person, "contact.phone", 1) == "contested"


def test_a_challenge_can_only_be_answered_once(db, vault, person, decision):
    opened, _ = challenge(db, vault, person, decision.id)
    answer(db, vault, opened.id, "upheld")
    before = counts(db)
    with pytest.raises(ChallengeRejected) as error:
        answer(db, vault, opened.id, "corrected")
    assert error.value.message == "This has already been answered."
    assert counts(db) == before


BAD_ANSWERS = [
    pytest.param("withdrawn", {}, "corrected, upheld or decision_changed", id="outcome"),
    pytest.param("corrected", {"new_value": None}, "Give the corrected value", id="no-value"),
    pytest.param("corrected", {"new_value": "not a phone"}, "must be a UK number", id="bad-value"),
    pytest.param("upheld", {"reasons": ""}, "The reasons must be 1 to 5000", id="no-reasons"),
    pytest.param("upheld", {"reasons": "r" * 5001}, "The reasons must be 1 to 5000", id="long"),
    pytest.param("upheld", {"answered_by": " "}, "The name of who answered", id="no-name"),
]


@pytest.mark.parametrize(("outcome", "changes", "message"), BAD_ANSWERS)
def test_an_answer_that_breaks_a_rule_is_refused(
    db, vault, person, decision, outcome, changes, message
):
    opened, _ = challenge(db, vault, person, decision.id)
    before = counts(db)
    with pytest.raises(ChallengeRejected, match=message):
        answer(db, vault, opened.id, outcome, **changes)
    assert counts(db) == before
    assert point_status(db, person, "contact.phone", 1) == "contested"
    with db.tx() as session:
        assert challenge_for_citizen(session, vault, person.citizen_id, opened.id).status == "open"


def test_a_challenged_decision_cannot_be_answered_with_a_correction(db, vault, person, decision):
    opened, _ = challenge(db, vault, person, decision.id, None)
    with pytest.raises(ChallengeRejected, match="Only a piece of information can be corrected"):
        answer(db, vault, opened.id, "corrected")


def test_an_unanswered_challenge_past_its_deadline_shows_as_overdue(
    db, vault, clock, person, decision
):
    opened, _ = challenge(db, vault, person, decision.id)
    clock.now = opened.due_at
    with db.tx() as session:
        assert challenge_for_citizen(session, vault, person.citizen_id, opened.id).overdue is False
    clock.advance(seconds=1)
    with db.tx() as session:
        (view,) = challenges_for_citizen(session, vault, person.citizen_id)
    assert view.overdue is True and is_overdue(opened, clock())
    answered, _ = answer(db, vault, opened.id, "upheld")
    assert is_overdue(answered, clock()) is False


def test_the_person_sees_their_challenges_newest_first_with_labels(
    db, vault, clock, person, decision
):
    about_phone, _ = challenge(db, vault, person, decision.id)
    clock.advance(hours=1)
    about_decision, _ = challenge(db, vault, person, decision.id, None, reason="Not fair.")
    with db.tx() as session:
        views = challenges_for_citizen(session, vault, person.citizen_id)
    assert [v.id for v in views] == [about_decision.id, about_phone.id]
    assert (views[0].label, views[0].reason) == ("Emergency housing", "Not fair.")
    assert views[1].label != "contact.phone" and views[1].reason == REASON
    assert views[1].due_at == due_date(about_phone.opened_at) and views[1].answer is None


def test_a_person_cannot_see_someone_elses_challenge(db, vault, make_person, person, decision):
    opened, _ = challenge(db, vault, person, decision.id)
    stranger = make_person()
    with pytest.raises(NotFound, match=NOT_FOUND), db.tx() as session:
        challenge_for_citizen(session, vault, stranger.citizen_id, opened.id)
    with db.tx() as session:
        assert challenges_for_citizen(session, vault, stranger.citizen_id) == []


def test_a_department_lists_the_challenges_it_must_answer(db, vault, clock, person, decision):
    first, _ = challenge(db, vault, person, decision.id)
    clock.advance(days=1)
    second, _ = challenge(db, vault, person, decision.id, None)
    answer(db, vault, first.id, "upheld")
    with db.tx() as session:
        waiting = challenges_for_department(session, vault, DEPARTMENT)
        everything = challenges_for_department(session, vault, DEPARTMENT, status=None)
        upheld = challenges_for_department(session, vault, DEPARTMENT, status="upheld")
        theirs = challenges_for_department(session, vault, OTHER_DEPARTMENT, status=None)
    assert [v.id for v in waiting] == [second.id]
    assert [v.id for v in everything] == [first.id, second.id]  # soonest deadline first
    assert [(v.id, v.answer) for v in upheld] == [(first.id, ANSWER)]
    assert theirs == []


def test_a_department_cannot_list_by_an_unknown_status(db, vault):
    with pytest.raises(ChallengeRejected), db.tx() as session:
        challenges_for_department(session, vault, DEPARTMENT, status="lost")


def test_the_person_hears_when_a_challenge_is_answered(db, vault, person, decision):
    opened, _ = challenge(db, vault, person, decision.id)
    answer(db, vault, opened.id, "upheld")
    with db.tx() as session:
        kinds = [
            (n.kind, n.ref_id)
            for n in session.execute(select(CitizenNotice).order_by(CitizenNotice.created_at))
            .scalars()
            .all()
        ]
    assert ("challenge_opened", opened.id) in kinds
    assert ("challenge_answered", opened.id) in kinds
