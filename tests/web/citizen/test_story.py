"""My story: write a topic, check the answers, and only then save a new version."""

from __future__ import annotations

from typing import Any

from tests.web.citizen.conftest import Person, csrf_of, write_story
from vault.records import current_story, story_history
from vault.services import Vault


def _story(db: Any, vault: Vault, person: Person, topic: str = "housing") -> list[Any]:
    with db.tx() as session:
        return story_history(session, vault, person.citizen_id, topic)


def test_topics_list_says_what_is_not_written_yet(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    write_story(db, vault, person, "money", "Universal Credit is late every month.")
    html = signed_in.get("/story").get_data(as_text=True)
    assert "Universal Credit is late every month." in html
    assert html.count("Not written yet") == 5


def test_writing_goes_through_check_your_answers_before_saving(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    page = signed_in.get("/story/housing/write").get_data(as_text=True)
    assert (
        "Ask me each time: we will never share this part unless you say yes to that one request."
        in page
    )
    token = csrf_of(page)
    answers = {
        "csrf_token": token,
        "text": "I sleep at the hostel on King St.",
        "sensitivity": "ask_me_each_time",
    }

    check = signed_in.post("/story/housing/write", data=answers)
    assert check.status_code == 200
    html = check.get_data(as_text=True)
    assert "Check your answers" in html and "I sleep at the hostel on King St." in html
    assert _story(db, vault, person) == []  # nothing saved yet

    # A plain visit to the check page saves nothing and goes back to the form.
    visit = signed_in.get("/story/housing/check")
    assert visit.status_code == 302 and visit.headers["Location"].endswith("/story/housing/write")
    assert _story(db, vault, person) == []

    saved = signed_in.post("/story/housing/check", data=answers)
    assert saved.status_code == 302
    (version,) = _story(db, vault, person)
    assert version.text == "I sleep at the hostel on King St."
    assert version.sensitivity == "ask_me_each_time"
    assert version.recorded_by == f"citizen:{person.account_id}"
    follow = signed_in.get(saved.headers["Location"]).get_data(as_text=True)
    assert "Your story about housing is saved." in follow


def test_change_button_on_check_page_keeps_the_answers(signed_in: Any, person: Person) -> None:
    token = csrf_of(signed_in.get("/story/family/write").get_data(as_text=True))
    back = signed_in.post(
        "/story/family/write",
        data={
            "csrf_token": token,
            "text": "My sister helps me.",
            "sensitivity": "normal",
            "change": "1",
        },
    )
    html = back.get_data(as_text=True)
    assert "My sister helps me." in html and "There is a problem" not in html


def test_story_errors_are_specific(signed_in: Any, db: Any, vault: Vault, person: Person) -> None:
    token = csrf_of(signed_in.get("/story/housing/write").get_data(as_text=True))
    html = signed_in.post(
        "/story/housing/write", data={"csrf_token": token, "text": "  "}
    ).get_data(as_text=True)
    assert "There is a problem" in html
    assert "Write your story for this topic" in html
    assert "Choose when we can share this part" in html
    assert 'href="#text"' in html
    assert "<title>Error:" in html
    too_long = {"csrf_token": token, "text": "a" * 20_001, "sensitivity": "normal"}
    html = signed_in.post("/story/housing/check", data=too_long).get_data(as_text=True)
    assert "Your story must be 20,000 characters or fewer" in html
    assert _story(db, vault, person) == []


def test_a_change_is_a_new_version_and_old_ones_are_shown(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    write_story(db, vault, person, "housing", "First words.")
    token = csrf_of(signed_in.get("/story/housing/write").get_data(as_text=True))
    signed_in.post(
        "/story/housing/check",
        data={"csrf_token": token, "text": "Second words.", "sensitivity": "normal"},
    )
    with db.tx() as session:
        (current,) = current_story(session, vault, person.citizen_id, ["housing"])
    assert current.version == 2 and current.text == "Second words."
    html = signed_in.get("/story/housing").get_data(as_text=True)
    assert "Earlier versions" in html and "First words." in html and "Second words." in html


def test_saving_without_csrf_token_is_refused(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    response = signed_in.post(
        "/story/housing/check", data={"text": "Hi there.", "sensitivity": "normal"}
    )
    assert response.status_code == 400
    assert _story(db, vault, person) == []
