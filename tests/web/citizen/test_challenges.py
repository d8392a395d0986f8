"""Saying something is wrong: one question, check, send; then see where it is up to."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from consent.delegations import give_delegation
from tests.web.citizen.conftest import Person, csrf_of, sign_in
from tests.web.citizen.decision_helpers import (
    answer,
    challenges_of,
    make_decision,
    review,
    someone_else,
)
from vault.accounts import create_account
from vault.clock import FrozenClock
from vault.records import data_point_history
from vault.services import Vault

WORDS = "I moved out of 10 High Street in March. I live with my sister now."
CANNOT = "You cannot do this for someone"


def _address_journey(decision_id: str) -> str:
    return f"/decisions/{decision_id}/wrong?key=contact.address&version=1"


def _check(decision_id: str) -> str:
    return f"/decisions/{decision_id}/wrong/check?key=contact.address&version=1"


def _say(client: Any, path: str, words: str) -> Any:
    """Answer the question page (with its CSRF token) and return the response."""
    token = csrf_of(client.get(path).get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, "reason": words})


def _send(client: Any, decision_id: str, check: str | None = None) -> Any:
    """Press Send on the check page."""
    check = check or _check(decision_id)
    page = client.get(check).get_data(as_text=True)
    return client.post(check, data={"csrf_token": csrf_of(page)})


@pytest.fixture
def decision_id(db: Any, vault: Vault, person: Person) -> str:
    return make_decision(db, vault, person)


def test_say_a_data_point_is_wrong_check_and_send(
    signed_in: Any, db: Any, vault: Vault, person: Person, decision_id: str
) -> None:
    question = signed_in.get(_address_journey(decision_id)).get_data(as_text=True)
    assert "What is wrong?" in question
    assert "Your address (version 1)" in question
    assert "10 High Street" in question  # what it said, to compare

    asked = _say(signed_in, _address_journey(decision_id), WORDS)
    assert asked.status_code == 302
    assert asked.headers["Location"] == _check(decision_id)
    assert "March" not in asked.headers["Location"]  # the words never go in the address
    assert challenges_of(db, person) == []  # nothing is saved before Send

    check = signed_in.get(_check(decision_id)).get_data(as_text=True)
    assert "Check your answer" in check
    assert WORDS in check
    assert "housing-dept" in check

    sent = _send(signed_in, decision_id)
    assert sent.status_code == 302
    (saved,) = challenges_of(db, person)
    assert saved["target"] == "data_point"
    assert (saved["key"], saved["version"]) == ("contact.address", 1)
    assert saved["opened_by"] == f"citizen:{person.account_id}"
    assert sent.headers["Location"] == f"/challenges/{saved['id']}/sent"
    done = signed_in.get(sent.headers["Location"]).get_data(as_text=True)
    assert "We have told housing-dept" in done
    assert "They must answer by 1 February 2026." in done


def test_after_sending_the_data_point_is_being_checked_everywhere(
    signed_in: Any, db: Any, vault: Vault, person: Person, decision_id: str
) -> None:
    _say(signed_in, _address_journey(decision_id), WORDS)
    _send(signed_in, decision_id)
    detail = signed_in.get(f"/decisions/{decision_id}").get_data(as_text=True)
    assert "Being checked" in detail
    # No second "This is wrong" for the same version while it is being checked.
    assert f"/decisions/{decision_id}/wrong?key=contact.address" not in detail
    assert "You said this is wrong" in signed_in.get("/information").get_data(as_text=True)

    mine = signed_in.get("/challenges").get_data(as_text=True)
    assert "Your address (version 1)" in mine
    assert "Being checked. They must answer by 1 February 2026." in mine
    assert "1 January 2026" in mine


def test_say_the_decision_itself_is_wrong(
    signed_in: Any, db: Any, vault: Vault, person: Person, decision_id: str
) -> None:
    path = f"/decisions/{decision_id}/wrong"
    assert "Emergency housing" in signed_in.get(path).get_data(as_text=True)
    asked = _say(signed_in, path, "You did not ask me about my children.")
    assert asked.headers["Location"] == f"/decisions/{decision_id}/wrong/check"
    _send(signed_in, decision_id, check=f"/decisions/{decision_id}/wrong/check")
    (saved,) = challenges_of(db, person)
    assert saved["target"] == "decision" and saved["key"] is None
    assert "The decision: Emergency housing" in signed_in.get("/challenges").get_data(as_text=True)
    assert "Being checked" in signed_in.get("/decisions").get_data(as_text=True)


def test_change_on_the_check_page_keeps_the_words(signed_in: Any, decision_id: str) -> None:
    _say(signed_in, _address_journey(decision_id), WORDS)
    again = signed_in.get(_address_journey(decision_id)).get_data(as_text=True)
    assert WORDS in again


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("", "Say what is wrong"),
        ("   \n  ", "Say what is wrong"),
        ("x" * 2001, "What you write must be 2,000 characters or fewer"),
    ],
)
def test_a_bad_answer_is_shown_on_the_page_and_nothing_is_saved(
    signed_in: Any, db: Any, person: Person, decision_id: str, words: str, message: str
) -> None:
    response = _say(signed_in, _address_journey(decision_id), words)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "There is a problem" in html
    assert message in html
    assert "<title>Error:" in html
    assert challenges_of(db, person) == []
    # And the check page will not send what was never accepted.
    assert signed_in.get(_check(decision_id)).status_code == 302


def test_the_check_page_without_an_answer_goes_back_to_the_question(
    signed_in: Any, db: Any, person: Person, decision_id: str
) -> None:
    response = signed_in.get(_check(decision_id))
    assert response.status_code == 302
    assert response.headers["Location"] == _address_journey(decision_id)


def test_words_for_one_data_point_are_not_sent_for_another(
    signed_in: Any, db: Any, person: Person, decision_id: str
) -> None:
    _say(signed_in, _address_journey(decision_id), WORDS)
    other = f"/decisions/{decision_id}/wrong/check?key=identity.name&version=1"
    assert signed_in.get(other).status_code == 302
    assert challenges_of(db, person) == []


def test_saying_it_twice_is_refused_on_the_page(
    signed_in: Any, db: Any, person: Person, decision_id: str
) -> None:
    _say(signed_in, _address_journey(decision_id), WORDS)
    _send(signed_in, decision_id)
    _say(signed_in, _address_journey(decision_id), "It is still wrong.")
    response = _send(signed_in, decision_id)
    assert response.status_code == 200
    assert "You already said this is wrong. We are checking it." in response.get_data(as_text=True)
    assert len(challenges_of(db, person)) == 1


@pytest.mark.parametrize(
    "query",
    ["?key=contact.phone&version=1", "?key=contact.address&version=7", "?key=x&version=one"],
)
def test_a_data_point_the_decision_did_not_use_is_not_found(
    signed_in: Any, decision_id: str, query: str
) -> None:
    assert signed_in.get(f"/decisions/{decision_id}/wrong{query}").status_code == 404


def test_another_persons_decision_cannot_be_challenged(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    alex = someone_else(db, vault)
    theirs = make_decision(db, vault, alex)
    assert signed_in.get(_address_journey(theirs)).status_code == 404
    assert signed_in.get(f"/decisions/{theirs}/wrong").status_code == 404


def test_a_helper_without_the_challenge_scope_is_refused(
    make_worker: Any, db: Any, person: Person, decision_id: str, app: Any
) -> None:
    worker = make_worker("view")
    for path in (_address_journey(decision_id), _check(decision_id)):
        response = worker.get(path)
        assert response.status_code == 403, path
        assert CANNOT in response.get_data(as_text=True)
    app.config["WTF_CSRF_ENABLED"] = False
    assert worker.post(_address_journey(decision_id), data={"reason": WORDS}).status_code == 403
    assert worker.post(_check(decision_id)).status_code == 403
    assert challenges_of(db, person) == []


def test_a_helper_with_the_challenge_scope_can_say_it_for_them(
    make_worker: Any, db: Any, person: Person, decision_id: str
) -> None:
    worker = make_worker("view", "challenge")
    _say(worker, _address_journey(decision_id), WORDS)
    assert _send(worker, decision_id).status_code == 302
    (saved,) = challenges_of(db, person)
    assert saved["opened_by"].startswith("worker:")


def test_a_late_answer_is_shown_as_late(
    signed_in: Any, db: Any, vault: Vault, person: Person, clock: FrozenClock, decision_id: str
) -> None:
    _say(signed_in, _address_journey(decision_id), WORDS)
    _send(signed_in, decision_id)
    assert "Late" not in signed_in.get("/challenges").get_data(as_text=True)
    clock.advance(days=32)
    sign_in(signed_in, db, vault, person.account_id)  # the first sign-in has timed out
    html = signed_in.get("/challenges").get_data(as_text=True)
    assert "Late: they should have answered by 1 February 2026." in html


def test_an_upheld_challenge_shows_their_reasons(
    signed_in: Any, db: Any, vault: Vault, person: Person, decision_id: str
) -> None:
    _say(signed_in, _address_journey(decision_id), WORDS)
    _send(signed_in, decision_id)
    (saved,) = challenges_of(db, person)
    answer(db, vault, saved["id"], "upheld", "Your tenancy at 10 High Street ends in June.")
    listed = signed_in.get("/challenges").get_data(as_text=True)
    assert "They kept it the same" in listed
    assert "Your tenancy at 10 High Street ends in June." in listed
    detail = signed_in.get(f"/challenges/{saved['id']}").get_data(as_text=True)
    assert WORDS in detail
    assert "Their answer" in detail and "ends in June" in detail


def test_a_corrected_challenge_shows_the_new_version(
    signed_in: Any, db: Any, vault: Vault, person: Person, decision_id: str
) -> None:
    _say(signed_in, _address_journey(decision_id), WORDS)
    _send(signed_in, decision_id)
    (saved,) = challenges_of(db, person)
    sister = {"lines": ["2 Mill Lane"], "town": "Leeds", "postcode": "LS2 3AD"}
    answer(db, vault, saved["id"], "corrected", "We changed it.", new_value=sister)
    html = signed_in.get("/challenges").get_data(as_text=True)
    assert "Corrected on 1 January 2026." in html
    assert "The right value is now version 2." in html
    with db.tx() as session:
        history = data_point_history(session, vault, person.citizen_id, "contact.address")
    assert history[0].source == "department:housing-dept"
    detail = signed_in.get(f"/decisions/{decision_id}").get_data(as_text=True)
    assert "Changed since" in detail and "10 High Street" in detail


def test_a_changed_decision_is_shown_as_changed(
    signed_in: Any, db: Any, vault: Vault, person: Person, decision_id: str
) -> None:
    path = f"/decisions/{decision_id}/wrong"
    _say(signed_in, path, "You did not ask me about my children.")
    _send(signed_in, decision_id, check=f"{path}/check")
    (saved,) = challenges_of(db, person)
    review(db, vault, decision_id)
    answer(db, vault, saved["id"], "decision_changed", "We looked again.")
    assert "Decision changed on" in signed_in.get("/challenges").get_data(as_text=True)


def test_another_persons_challenge_is_not_found(
    signed_in: Any, db: Any, vault: Vault, person: Person, app: Any
) -> None:
    alex = someone_else(db, vault)
    theirs = make_decision(db, vault, alex)
    alex_client = app.test_client()
    sign_in(alex_client, db, vault, alex.account_id)
    _say(alex_client, _address_journey(theirs), WORDS)
    _send(alex_client, theirs)
    (saved,) = challenges_of(db, alex)
    for path in (f"/challenges/{saved['id']}", f"/challenges/{saved['id']}/sent"):
        response = signed_in.get(path)
        assert response.status_code == 404, path
        assert WORDS not in response.get_data(as_text=True)
    assert WORDS not in signed_in.get("/challenges").get_data(as_text=True)


def test_words_left_in_a_shared_browser_are_not_sent_by_the_next_person(
    signed_in: Any, db: Any, vault: Vault, person: Person, decision_id: str, clock: FrozenClock
) -> None:
    _say(signed_in, _address_journey(decision_id), WORDS)
    with db.tx() as session:
        helper = create_account(session, vault, "helper@example.org")
        ends = clock() + timedelta(days=30)
        give_delegation(session, vault, person.actor, helper.id, ("view", "challenge"), ends)
    # A helper signs in on the same browser, acting for Sam.
    sign_in(signed_in, db, vault, helper.id, acting_for=person.citizen_id)
    assert WORDS not in signed_in.get(_address_journey(decision_id)).get_data(as_text=True)
    assert signed_in.get(_check(decision_id)).status_code == 302
    assert challenges_of(db, person) == []


def test_an_unsent_draft_is_gone_after_signing_out(
    signed_in: Any, db: Any, vault: Vault, person: Person, decision_id: str
) -> None:
    words = "The flat number is wrong, it is 2B."
    _say(signed_in, _address_journey(decision_id), words)
    assert words in signed_in.get(_check(decision_id)).get_data(as_text=True)
    signed_in.get("/sign-out")
    sign_in(signed_in, db, vault, person.account_id)
    again = signed_in.get(_check(decision_id))
    assert words not in again.get_data(as_text=True)
