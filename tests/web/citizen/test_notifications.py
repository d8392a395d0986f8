"""News: how the person chooses to hear it, what's new on the home page, and deleted data."""

from __future__ import annotations

from typing import Any

import pytest

from consent.citizen_notices import get_choice
from consent.grants import confirm_deletion, get_grant, revoke_grant
from tests.web.citizen.conftest import Person, csrf_of, grant_for, sign_in
from tests.web.citizen.decision_helpers import make_decision, review
from vault.clock import FrozenClock
from vault.services import Vault

CANNOT = "You cannot do this for someone"
NOT_TOLD = "They have not told us they deleted it yet."


def _choice_of(db: Any, person: Person) -> str:
    with db.tx() as session:
        return get_choice(session, person.citizen_id)


def test_the_page_offers_three_choices_with_every_time_first_chosen(signed_in: Any) -> None:
    html = signed_in.get("/notifications").get_data(as_text=True)
    assert "How should we tell you news?" in html
    for words in ("Email me every time", "Email me once a day at most", "Do not email me"):
        assert words in html
    assert 'value="every_time" checked' in html


def test_choosing_daily_is_saved_and_shown(signed_in: Any, db: Any, person: Person) -> None:
    page = signed_in.get("/notifications").get_data(as_text=True)
    saved = signed_in.post("/notifications", data={"csrf_token": csrf_of(page), "choice": "daily"})
    assert saved.status_code == 302 and saved.headers["Location"] == "/notifications"
    assert _choice_of(db, person) == "daily"
    html = signed_in.get("/notifications").get_data(as_text=True)
    assert "We saved how we tell you news." in html
    assert 'value="daily" checked' in html


@pytest.mark.parametrize("choice", [None, "", "every_hour"])
def test_no_choice_or_a_made_up_one_is_an_error(
    signed_in: Any, db: Any, person: Person, choice: str | None
) -> None:
    page = signed_in.get("/notifications").get_data(as_text=True)
    data = {"csrf_token": csrf_of(page)}
    if choice is not None:
        data["choice"] = choice
    response = signed_in.post("/notifications", data=data)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "There is a problem" in html
    assert _choice_of(db, person) == "every_time"


def test_a_helper_cannot_choose_for_the_person(
    make_worker: Any, db: Any, person: Person, app: Any
) -> None:
    worker = make_worker("view", "answer_requests", "manage_story", "challenge")
    response = worker.get("/notifications")
    assert response.status_code == 403
    assert CANNOT in response.get_data(as_text=True)
    assert 'href="/notifications"' not in worker.get("/").get_data(as_text=True)
    app.config["WTF_CSRF_ENABLED"] = False
    assert worker.post("/notifications", data={"choice": "quiet"}).status_code == 403
    assert _choice_of(db, person) == "every_time"


def test_the_home_page_links_to_the_choice(signed_in: Any) -> None:
    assert 'href="/notifications"' in signed_in.get("/").get_data(as_text=True)


def test_whats_new_lists_a_decision_and_its_review(
    signed_in: Any, db: Any, vault: Vault, person: Person, clock: FrozenClock
) -> None:
    first_id = make_decision(db, vault, person)
    clock.advance(minutes=5)
    newest_id = review(db, vault, first_id)
    html = signed_in.get("/").get_data(as_text=True)
    assert "A decision was made about you." in html
    assert f'href="/decisions/{first_id}"' in html
    assert "A decision about you was reviewed." in html
    assert f'href="/decisions/{newest_id}"' in html
    # Newest first: the review comes before the decision it changed.
    assert html.index("was reviewed") < html.index("was made about you")


def test_a_stopped_grant_kept_past_its_data_life_says_they_have_not_told_us(
    signed_in: Any, db: Any, vault: Vault, person: Person, clock: FrozenClock
) -> None:
    grant_id = grant_for(db, vault, person)
    with db.tx() as session:
        revoke_grant(session, vault, person.actor, grant_id)
    assert NOT_TOLD not in signed_in.get("/sharing").get_data(as_text=True)  # not late yet
    clock.advance(days=91)  # the grant keeps data for 90 days
    sign_in(signed_in, db, vault, person.account_id)
    assert NOT_TOLD in signed_in.get("/sharing").get_data(as_text=True)


def test_a_confirmed_deletion_says_when(
    signed_in: Any, db: Any, vault: Vault, person: Person, clock: FrozenClock
) -> None:
    grant_id = grant_for(db, vault, person)
    with db.tx() as session:
        revoke_grant(session, vault, person.actor, grant_id)
    clock.advance(days=3)
    with db.tx() as session:
        confirm_deletion(session, vault, "housing-dept", grant_id, confirmed_by="A. Officer")
    clock.advance(days=100)
    sign_in(signed_in, db, vault, person.account_id)
    html = signed_in.get("/sharing").get_data(as_text=True)
    assert "They told us they deleted it on 4 January 2026." in html
    assert NOT_TOLD not in html
    with db.tx() as session:
        assert get_grant(session, grant_id).deletion_confirmed_at is not None


def test_an_active_grant_says_nothing_about_deleting(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    grant_for(db, vault, person)
    html = signed_in.get("/sharing").get_data(as_text=True)
    assert "deleted it" not in html and NOT_TOLD not in html
