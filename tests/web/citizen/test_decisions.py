"""Decisions about me: what, why, who, exactly which versions were used, and the history."""

from __future__ import annotations

import re
from typing import Any

import pytest

from consent.decisions import flag_decisions_using
from tests.web.citizen.conftest import CANARY, Person
from tests.web.citizen.decision_helpers import (
    BY_A_COMPUTER,
    change_address,
    make_decision,
    review,
    someone_else,
)
from vault.services import Vault

WRONG_BUTTON = re.compile(r'role="button"[^>]*>This is wrong<')


def test_list_shows_each_decision_with_who_when_and_what(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    decision_id = make_decision(db, vault, person)
    html = signed_in.get("/decisions").get_data(as_text=True)
    assert "Decisions about me" in html
    assert "Emergency housing" in html
    assert "housing-dept" in html
    assert "1 January 2026" in html
    assert "You can stay at Elm House from tonight." in html
    assert f'href="/decisions/{decision_id}"' in html
    assert "Being checked" not in html and "Changed after a review" not in html


def test_list_says_when_there_are_none(signed_in: Any) -> None:
    html = signed_in.get("/decisions").get_data(as_text=True)
    assert "No service has made a decision about you yet." in html


def test_the_menu_links_to_decisions_and_challenges(signed_in: Any) -> None:
    html = signed_in.get("/").get_data(as_text=True)
    assert 'href="/decisions"' in html and "Decisions about me" in html
    assert 'href="/challenges"' in html and "My challenges" in html


def test_detail_says_what_why_and_which_person_decided(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    decision_id = make_decision(db, vault, person)
    html = signed_in.get(f"/decisions/{decision_id}").get_data(as_text=True)
    assert "Why this decision" in html
    assert "You can stay at Elm House from tonight." in html
    assert "You told us you have nowhere safe to stay." in html
    assert "A person decided: Ann Baker, Housing officer." in html
    assert "A computer decided" not in html
    assert "HOU-2291" in html
    assert "Night shelter places" in html and "From: Leeds Council" in html
    assert "This decision is wrong" in html
    assert "Nobody has changed this decision." in html


def test_detail_names_the_computer_and_the_person_who_answers_for_it(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    decision_id = make_decision(db, vault, person, BY_A_COMPUTER)
    html = signed_in.get(f"/decisions/{decision_id}").get_data(as_text=True)
    assert "A computer decided: Housing triage version 2.1." in html
    assert "The person who answers for it is Priya Shah, Housing Options Manager." in html
    assert "A person decided" not in html


def test_detail_shows_each_data_point_used_with_version_source_and_a_wrong_button(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    decision_id = make_decision(db, vault, person)
    html = signed_in.get(f"/decisions/{decision_id}").get_data(as_text=True)
    assert "What we used about you" in html
    assert "Your address" in html and "Your name" in html
    assert "10 High Street<br>Leeds<br>LS1 1AA" in html
    assert CANARY in html
    assert "You, 1 January 2026" in html
    assert len(WRONG_BUTTON.findall(html)) == 2
    assert f"/decisions/{decision_id}/wrong?key=contact.address&amp;version=1" in html
    assert f"/decisions/{decision_id}/wrong?key=identity.name&amp;version=1" in html


def test_detail_shows_the_version_used_even_after_it_changed(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    decision_id = make_decision(db, vault, person, data_points=["contact.address"])
    change_address(db, vault, person)
    html = signed_in.get(f"/decisions/{decision_id}").get_data(as_text=True)
    assert "10 High Street" in html
    assert "4 Park Row" not in html
    assert "Changed since" in html
    # The new version is on the information page, so the person can compare.
    assert "4 Park Row" in signed_in.get("/information").get_data(as_text=True)


def test_decision_flagged_for_review_is_shown_as_being_checked(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    decision_id = make_decision(db, vault, person, data_points=["contact.address"])
    with db.tx() as session:
        flag_decisions_using(
            session, person.citizen_id, "contact.address", 1, because="data_point_corrected"
        )
    assert "Being checked" in signed_in.get("/decisions").get_data(as_text=True)
    assert "Being checked" in signed_in.get(f"/decisions/{decision_id}").get_data(as_text=True)


def test_a_reviewed_decision_shows_its_history(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    first_id = make_decision(db, vault, person, BY_A_COMPUTER)
    newest_id = review(db, vault, first_id)
    listed = signed_in.get("/decisions").get_data(as_text=True)
    assert "Changed after a review" in listed
    assert "You can stay at Oak Court instead." in listed
    assert f'href="/decisions/{newest_id}"' in listed
    assert f'href="/decisions/{first_id}"' not in listed

    html = signed_in.get(f"/decisions/{newest_id}").get_data(as_text=True)
    assert "Version 1: The first decision" in html
    assert "Version 2: Turned around after a review" in html
    assert "Dee Evans, Senior caseworker" in html
    assert "We looked again at where you live now." in html
    assert "You can stay at Elm House from tonight." in html  # what it said before


def test_an_old_version_points_to_the_newest(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    first_id = make_decision(db, vault, person)
    newest_id = review(db, vault, first_id)
    html = signed_in.get(f"/decisions/{first_id}").get_data(as_text=True)
    assert "This decision was changed after a review." in html
    assert f'href="/decisions/{newest_id}"' in html


def test_another_persons_decision_is_not_found(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    alex = someone_else(db, vault)
    theirs = make_decision(db, vault, alex)
    response = signed_in.get(f"/decisions/{theirs}")
    assert response.status_code == 404
    assert "Emergency housing" not in response.get_data(as_text=True)
    assert "Emergency housing" not in signed_in.get("/decisions").get_data(as_text=True)


@pytest.mark.parametrize("decision_id", ["not-a-decision", "x" * 300])
def test_a_made_up_decision_is_not_found(signed_in: Any, decision_id: str) -> None:
    assert signed_in.get(f"/decisions/{decision_id}").status_code == 404


def test_a_helper_who_may_look_sees_decisions_but_no_wrong_buttons(
    make_worker: Any, db: Any, vault: Vault, person: Person
) -> None:
    decision_id = make_decision(db, vault, person)
    worker = make_worker("view")
    html = worker.get(f"/decisions/{decision_id}").get_data(as_text=True)
    assert "You can stay at Elm House from tonight." in html
    assert not WRONG_BUTTON.findall(html)
    assert "This decision is wrong" not in html


def test_a_helper_without_view_cannot_see_decisions(
    make_worker: Any, db: Any, vault: Vault, person: Person
) -> None:
    decision_id = make_decision(db, vault, person)
    worker = make_worker("challenge")
    for path in ("/decisions", f"/decisions/{decision_id}"):
        response = worker.get(path)
        assert response.status_code == 403, path
        assert "Elm House" not in response.get_data(as_text=True)
