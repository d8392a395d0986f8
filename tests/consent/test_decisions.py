"""Decisions: cite only what was served, name who is accountable, keep every review."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from consent.decision_models import CitizenNotice, Decision
from consent.decision_views import decision_for_citizen, decision_history, decisions_for_citizen
from consent.decisions import (
    DecisionRejected,
    flag_decisions_using,
    get_decision_for_department,
    record_decision,
    review_decision,
)
from consent.grants import give_grant
from consent.notices import DECISION_REVIEW_REQUESTED, take_notices
from tests.consent.factories import (
    DEPARTMENT,
    HOUSING,
    NEW_PHONE,
    OFFICER,
    OTHER_DEPARTMENT,
    PHONE,
    Person,
    ask,
    decided,
    entries,
    leaf_json,
    record,
    share,
    tell_facts,
)
from vault.errors import NotFound
from vault.models import LedgerEntry
from vault.records import record_data_point
from vault.services import Vault

NOT_FOUND = "We could not find that decision."


@pytest.fixture
def grant(db: Any, vault: Vault, person: Person) -> Any:
    """The person's facts, shared with the housing department, which fetched them once."""
    tell_facts(db, vault, person)
    return share(db, vault, person)


def review(db: Any, vault: Vault, decision_id: str, **changes: Any) -> Decision:
    arguments: dict[str, Any] = {
        "kind": "overturned",
        "reviewer_name": "Sam Okoro",
        "reviewer_role": "Senior caseworker",
        "reasons": "The triage missed that you have a child with you.",
        "new_outcome": "You can stay at Oak Court, which has family rooms.",
        "acting_officer": OFFICER,
        **changes,
    }
    department = arguments.pop("department", DEPARTMENT)
    with db.tx() as session:
        return review_decision(session, vault, department, decision_id, **arguments)


def counts(db: Any) -> tuple[int, int]:
    return db.scalar("SELECT count(*) FROM decision"), db.scalar(
        "SELECT count(*) FROM ledger_entry"
    )


def test_a_department_records_a_decision_that_names_what_it_used(db, vault, clock, person, grant):
    decision = record(db, vault, grant)
    assert (decision.series_id, decision.version, decision.kind) == (decision.id, 1, "original")
    assert decision.data_points_used == [
        {"key": "contact.phone", "version": 1},
        {"key": "housing.status", "version": 1},
    ]
    assert decision.recorded_by == f"department:{DEPARTMENT}/{OFFICER}"
    assert (decision.officer_name, decision.algorithm_name) == ("Priya Shah", "Housing triage")
    assert decision.created_at == clock()
    # What it says is sealed: not even the title is in the row.
    assert b"Emergency housing" not in decision.sealed
    with db.tx() as session:
        (entry,) = entries(session, "decision.recorded")
        (notice,) = session.execute(select(CitizenNotice)).scalars()
    body = leaf_json(entry)
    assert body["decision_id"] == decision.id and body["automated"] is True
    assert body["data_points_used"] == decision.data_points_used
    assert b"Emergency" not in bytes(entry.leaf) and b"Elm House" not in bytes(entry.leaf)
    assert (notice.citizen_id, notice.kind, notice.ref_id) == (
        person.citizen_id,
        "decision_recorded",
        decision.id,
    )


def test_the_person_sees_exactly_the_versions_a_decision_used(db, vault, person, grant):
    decision = record(db, vault, grant)
    with db.tx() as session:  # the phone number changes after the decision
        record_data_point(
            session, vault, person.citizen_id, "contact.phone", NEW_PHONE, recorded_by="self"
        )
    with db.tx() as session:
        (view,) = decisions_for_citizen(session, vault, person.citizen_id)
    assert view.id == decision.id
    assert (view.title, view.outcome) == (
        "Emergency housing",
        "You can stay at Elm House from tonight.",
    )
    assert (view.officer_name, view.officer_role) == ("Priya Shah", "Housing Options Manager")
    assert view.other_information_used == [
        {"description": "Night shelter places", "source": "Council"}
    ]
    used = {(p.key, p.version): p for p in view.data_points_used}
    assert used[("contact.phone", 1)].value == PHONE  # the version used, not today's
    assert used[("contact.phone", 1)].status == "superseded"
    assert used[("housing.status", 1)].value == HOUSING
    assert used[("housing.status", 1)].label and used[("housing.status", 1)].source == "self"


def test_decisions_are_listed_newest_first_and_only_the_current_version(
    db, vault, clock, person, grant
):
    first = record(db, vault, grant, title="First")
    clock.advance(minutes=5)
    second = record(db, vault, grant, title="Second")
    clock.advance(minutes=5)
    reviewed = review(db, vault, first.id)
    with db.tx() as session:
        views = decisions_for_citizen(session, vault, person.citizen_id)
    assert [v.id for v in views] == [reviewed.id, second.id]


def test_a_decision_can_be_recorded_without_an_algorithm_when_a_person_decided(db, vault, grant):
    decision = record(
        db, vault, grant, automated=False, algorithm_name=None, algorithm_version=None
    )
    assert decision.automated is False and decision.algorithm_name is None


def test_a_decision_cannot_cite_a_version_that_was_never_served(db, vault, person, grant):
    with db.tx() as session:
        record_data_point(
            session, vault, person.citizen_id, "contact.phone", NEW_PHONE, recorded_by="self"
        )
    before = counts(db)
    with pytest.raises(DecisionRejected) as error:
        record(db, vault, grant, data_points_used=[("contact.phone", 2)])
    assert error.value.message == (
        "contact.phone version 2 was never given to you under this permission."
    )
    assert counts(db) == before


def test_a_decision_cannot_cite_information_the_grant_never_covered(db, vault, person, grant):
    with db.tx() as session:
        record_data_point(
            session, vault, person.citizen_id, "money.income_monthly", 125_000, recorded_by="self"
        )
    with pytest.raises(DecisionRejected, match=r"money\.income_monthly version 1 was never given"):
        record(db, vault, grant, data_points_used=[("money.income_monthly", 1)])


def test_a_decision_cannot_cite_what_was_served_under_another_grant(db, vault, person, grant):
    # The same version was served to the department, but under a different permission.
    other = share(db, vault, person, department=OTHER_DEPARTMENT)
    with db.tx() as session:
        unused = give_grant(session, vault, person.me, ask(case_reference="HOU-9999")).grant
    assert other.id != unused.id
    with pytest.raises(DecisionRejected, match=r"contact\.phone version 1 was never given"):
        record(
            db, vault, unused, case_reference="HOU-9999", data_points_used=[("contact.phone", 1)]
        )


def test_a_version_number_must_be_a_whole_number(db, vault, grant):
    with pytest.raises(DecisionRejected, match="must be a whole number"):
        record(db, vault, grant, data_points_used=[("contact.phone", True)])


def test_an_odd_key_is_not_repeated_back(db, vault, grant):
    with pytest.raises(DecisionRejected) as error:
        record(db, vault, grant, data_points_used=[("<script>", 1)])
    assert error.value.message == "? version 1 was never given to you under this permission."


def test_another_department_cannot_record_a_decision_on_a_grant_or_learn_it_exists(
    db, vault, grant
):
    with pytest.raises(NotFound) as theirs, db.tx() as session:
        record_decision(
            session, vault, OTHER_DEPARTMENT, grant.id, decided(), acting_officer=OFFICER
        )
    with pytest.raises(NotFound) as nobodys, db.tx() as session:
        record_decision(
            session,
            vault,
            DEPARTMENT,
            "00000000-0000-4000-8000-000000000000",
            decided(),
            acting_officer=OFFICER,
        )
    assert theirs.value.message == nobodys.value.message


BAD_DECISIONS = [
    pytest.param({"officer_name": "  "}, "The accountable officer's name", id="no-officer"),
    pytest.param({"officer_role": ""}, "The accountable officer's role", id="no-officer-role"),
    pytest.param({"algorithm_name": None}, "The algorithm's name", id="automated-no-algorithm"),
    pytest.param({"algorithm_version": ""}, "The algorithm's version", id="automated-no-version"),
    pytest.param(
        {"algorithm_version": "v" * 65},
        "The algorithm's version must be 1 to 64",
        id="long-version",
    ),
    pytest.param(
        {"automated": False}, "Only an automated decision names an algorithm", id="human-algorithm"
    ),
    pytest.param({"title": ""}, "The title must be 1 to 200", id="no-title"),
    pytest.param({"title": "t" * 201}, "The title must be 1 to 200", id="long-title"),
    pytest.param({"outcome": " "}, "The outcome must be 1 to 2000", id="no-outcome"),
    pytest.param({"outcome": "o" * 2001}, "The outcome must be 1 to 2000", id="long-outcome"),
    pytest.param({"reasons": ""}, "The reasons must be 1 to 5000", id="no-reasons"),
    pytest.param({"reasons": "r" * 5001}, "The reasons must be 1 to 5000", id="long-reasons"),
    pytest.param({"case_reference": "HOU-0001"}, "The case reference does not match", id="case"),
    pytest.param(
        {"other_information_used": [{"description": "", "source": "Council"}]},
        "Each description of other information",
        id="no-description",
    ),
    pytest.param(
        {"other_information_used": [{"description": "Shelter places"}]},
        "Each source of other information",
        id="no-source",
    ),
    pytest.param(
        {"other_information_used": [{"description": "d" * 501, "source": "Council"}]},
        "must be 1 to 500",
        id="long-description",
    ),
]


@pytest.mark.parametrize(("changes", "message"), BAD_DECISIONS)
def test_a_decision_that_breaks_a_rule_is_refused_and_leaves_nothing(
    db, vault, grant, changes, message
):
    before = counts(db)
    with pytest.raises(DecisionRejected, match=message):
        record(db, vault, grant, **changes)
    assert counts(db) == before


def test_the_acting_officer_must_be_named(db, vault, grant):
    with pytest.raises(DecisionRejected, match="The acting officer"), db.tx() as session:
        record_decision(session, vault, DEPARTMENT, grant.id, decided(), acting_officer=" ")


def test_texts_are_stored_without_surrounding_spaces(db, vault, person, grant):
    record(db, vault, grant, title="  Emergency housing \n", officer_name=" Priya Shah ")
    with db.tx() as session:
        (view,) = decisions_for_citizen(session, vault, person.citizen_id)
    assert (view.title, view.officer_name) == ("Emergency housing", "Priya Shah")


def test_a_named_reviewer_overturns_a_decision_as_a_new_version(db, vault, clock, person, grant):
    original = record(db, vault, grant)
    clock.advance(days=2)
    reviewed = review(db, vault, original.id)
    assert (reviewed.series_id, reviewed.version, reviewed.kind) == (original.id, 2, "overturned")
    assert (reviewed.reviewer_name, reviewed.reviewer_role) == ("Sam Okoro", "Senior caseworker")
    assert reviewed.officer_name == original.officer_name
    assert reviewed.data_points_used == original.data_points_used
    with db.tx() as session:
        history = decision_history(session, vault, person.citizen_id, original.id)
        (entry,) = entries(session, "decision.reviewed")
        kinds = [n.kind for n in session.execute(select(CitizenNotice)).scalars()]
    assert [(v.version, v.status) for v in history] == [(1, "superseded"), (2, "current")]
    assert history[0].outcome == "You can stay at Elm House from tonight."
    assert history[1].outcome == "You can stay at Oak Court, which has family rooms."
    assert history[1].review_reasons == "The triage missed that you have a child with you."
    assert history[1].title == history[0].title and history[0].review_reasons is None
    body = leaf_json(entry)
    assert (body["decision_id"], body["series_id"], body["version"]) == (
        reviewed.id,
        original.id,
        2,
    )
    assert body["decision_kind"] == "overturned"
    assert b"Oak Court" not in bytes(entry.leaf) and b"Sam Okoro" not in bytes(entry.leaf)
    assert kinds.count("decision_reviewed") == 1


def test_an_upheld_decision_keeps_its_outcome(db, vault, person, grant):
    original = record(db, vault, grant)
    reviewed = review(db, vault, original.id, kind="upheld", new_outcome=None)
    with db.tx() as session:
        view = decision_for_citizen(session, vault, person.citizen_id, reviewed.id)
    assert (view.kind, view.outcome) == ("upheld", "You can stay at Elm House from tonight.")


def test_a_review_clears_the_request_for_review(db, vault, clock, person, grant):
    original = record(db, vault, grant)
    with db.tx() as session:
        flag_decisions_using(
            session, person.citizen_id, "contact.phone", 1, "data_point_contested", now=clock()
        )
    reviewed = review(db, vault, original.id, kind="adjusted")
    with db.tx() as session:
        view = decision_for_citizen(session, vault, person.citizen_id, reviewed.id)
    assert view.review_requested_at is None and view.review_requested_because is None


@pytest.mark.parametrize(
    "reviewer", ["Priya Shah", "priya  shah", " PRIYA SHAH "], ids=["same", "spaces", "case"]
)
def test_the_accountable_officer_cannot_review_their_own_automated_decision(
    db, vault, grant, reviewer
):
    original = record(db, vault, grant)
    before = counts(db)
    with pytest.raises(DecisionRejected) as error:
        review(db, vault, original.id, reviewer_name=reviewer)
    assert error.value.message == (
        "The reviewer of an automated decision must be someone other than the accountable officer."
    )
    assert counts(db) == before


def test_the_officer_may_review_a_decision_a_person_made(db, vault, grant):
    original = record(
        db, vault, grant, automated=False, algorithm_name=None, algorithm_version=None
    )
    reviewed = review(db, vault, original.id, reviewer_name="Priya Shah")
    assert reviewed.version == 2


def test_only_the_newest_version_can_be_reviewed(db, vault, grant):
    original = record(db, vault, grant)
    review(db, vault, original.id)
    before = counts(db)
    with pytest.raises(DecisionRejected, match="review the newest version"):
        review(db, vault, original.id, kind="adjusted")
    assert counts(db) == before


def test_the_newest_version_can_be_reviewed_again(db, vault, grant):
    original = record(db, vault, grant)
    second = review(db, vault, original.id)
    third = review(db, vault, second.id, kind="upheld", new_outcome=None, reviewer_name="Ann Lee")
    assert (third.series_id, third.version) == (original.id, 3)


def test_another_department_cannot_review_a_decision_or_learn_it_exists(db, vault, grant):
    original = record(db, vault, grant)
    with pytest.raises(NotFound) as theirs:
        review(db, vault, original.id, department=OTHER_DEPARTMENT)
    with pytest.raises(NotFound) as nobodys:
        review(db, vault, "00000000-0000-4000-8000-000000000000")
    assert theirs.value.message == nobodys.value.message == NOT_FOUND


BAD_REVIEWS = [
    pytest.param({"kind": "cancelled"}, "adjusted, overturned or upheld", id="kind"),
    pytest.param(
        {"kind": "adjusted", "new_outcome": None}, "The new outcome", id="adjusted-no-outcome"
    ),
    pytest.param({"new_outcome": "  "}, "The new outcome", id="overturned-no-outcome"),
    pytest.param({"kind": "upheld", "new_outcome": "Different"}, "keeps its outcome", id="upheld"),
    pytest.param({"reviewer_name": ""}, "The reviewer's name", id="no-reviewer"),
    pytest.param({"reviewer_role": " "}, "The reviewer's role", id="no-reviewer-role"),
    pytest.param({"reasons": ""}, "The reasons for the review", id="no-reasons"),
    pytest.param({"reasons": "r" * 5001}, "The reasons for the review", id="long-reasons"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_REVIEWS)
def test_a_review_that_breaks_a_rule_is_refused(db, vault, grant, changes, message):
    original = record(db, vault, grant)
    before = counts(db)
    with pytest.raises(DecisionRejected, match=message):
        review(db, vault, original.id, **changes)
    assert counts(db) == before
    with db.tx() as session:
        assert get_decision_for_department(session, DEPARTMENT, original.id).status == "current"


def test_a_person_cannot_see_someone_elses_decision(db, vault, make_person, grant):
    original = record(db, vault, grant)
    stranger = make_person()
    with pytest.raises(NotFound, match=NOT_FOUND), db.tx() as session:
        decision_for_citizen(session, vault, stranger.citizen_id, original.id)
    with pytest.raises(NotFound, match=NOT_FOUND), db.tx() as session:
        decision_history(session, vault, stranger.citizen_id, original.series_id)
    with db.tx() as session:
        assert decisions_for_citizen(session, vault, stranger.citizen_id) == []


def test_flagging_asks_for_review_of_current_decisions_that_used_the_version(
    db, vault, clock, person, grant
):
    phone_and_housing = record(db, vault, grant)
    housing_only = record(db, vault, grant, data_points_used=[("housing.status", 1)])
    superseded = record(db, vault, grant)
    newest = review(db, vault, superseded.id)
    with db.tx() as session:
        flagged = flag_decisions_using(
            session, person.citizen_id, "contact.phone", 1, "data_point_contested", now=clock()
        )
        told = take_notices(session)
    assert {d.id for d in flagged} == {phone_and_housing.id, newest.id}
    assert {(n.department_id, n.event, n.citizen_id) for n in told} == {
        (DEPARTMENT, DECISION_REVIEW_REQUESTED, person.citizen_id)
    }
    assert {n.details["decision_id"] for n in told} == {phone_and_housing.id, newest.id}
    assert told[0].details["key"] == "contact.phone" and told[0].details["version"] == 1
    assert told[0].details["because"] == "data_point_contested"
    with db.tx() as session:
        views = {v.id: v for v in decisions_for_citizen(session, vault, person.citizen_id)}
    assert views[phone_and_housing.id].review_requested_at == clock()
    assert views[phone_and_housing.id].review_requested_because == "data_point_contested"
    assert views[housing_only.id].review_requested_at is None


def test_decision_leaves_never_hold_what_the_decision_says(db, vault, grant):
    record(db, vault, grant)
    with db.tx() as session:
        leaves = b"".join(
            bytes(entry.leaf) for entry in session.execute(select(LedgerEntry)).scalars()
        )
        total = session.execute(select(func.count()).select_from(Decision)).scalar()
    assert total == 1
    for secret in (b"Emergency housing", b"Elm House", b"nowhere safe", b"Night shelter"):
        assert secret not in leaves
