"""A support worker uses the same pages within their scopes, and never sees private story parts."""

from __future__ import annotations

from typing import Any

import pytest

from consent.grants import get_grant
from tests.web.citizen.conftest import Person, csrf_of, grant_for, write_story
from vault.records import story_history
from vault.services import Vault

PRIVATE_TEXT = "The private words only Sam may read."
CANNOT = "You cannot do this for someone"


@pytest.fixture
def stories(db: Any, vault: Vault, person: Person) -> None:
    write_story(db, vault, person, "health", PRIVATE_TEXT, sensitivity="ask_me_each_time")
    write_story(db, vault, person, "housing", "The shared words about housing.")


def test_viewer_reads_but_never_sees_private_story(make_worker: Any, stories: None) -> None:
    worker = make_worker("view")
    for path in (
        "/",
        "/story",
        "/story/health",
        "/story/housing",
        "/information",
        "/sharing",
        "/who-has-seen-it",
    ):
        response = worker.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store"
        html = response.get_data(as_text=True)
        assert PRIVATE_TEXT not in html
        assert "You are acting for" in html
    story = worker.get("/story").get_data(as_text=True)
    assert "This part is private. Only Zebracanary Quillfeather can see it." in story
    assert "The shared words about housing." in story


def test_viewer_cannot_edit_or_stop_sharing(
    make_worker: Any, db: Any, vault: Vault, person: Person, stories: None, app: Any
) -> None:
    grant_id = grant_for(db, vault, person)
    worker = make_worker("view")
    html = worker.get("/sharing").get_data(as_text=True)
    assert "Stop sharing" not in html
    assert "Change this part" not in worker.get("/story/housing").get_data(as_text=True)
    assert "/change" not in worker.get("/information").get_data(as_text=True)
    for path in (
        "/story/housing/write",
        "/information/contact.phone/change",
        f"/sharing/{grant_id}/stop",
    ):
        response = worker.get(path)
        assert response.status_code == 403, path
        assert CANNOT in response.get_data(as_text=True)
    # Without CSRF in the way, the POSTs themselves must be refused for lack of scope.
    app.config["WTF_CSRF_ENABLED"] = False
    assert worker.post(f"/sharing/{grant_id}/stop").status_code == 403
    answers = {"text": "Words.", "sensitivity": "normal"}
    assert worker.post("/story/housing/check", data=answers).status_code == 403
    phone = {"answer": '"07700900123"'}
    assert worker.post("/information/contact.phone/check", data=phone).status_code == 403
    with db.tx() as session:
        assert get_grant(session, grant_id).revoked_at is None


def test_worker_can_never_download_or_delete(make_worker: Any, app: Any) -> None:
    worker = make_worker("view", "answer_requests", "manage_story", "challenge")
    for path in ("/download", "/download/tell-once.json", "/delete"):
        response = worker.get(path)
        assert response.status_code == 403, path
        assert CANNOT in response.get_data(as_text=True)
    app.config["WTF_CSRF_ENABLED"] = False
    assert worker.post("/delete", data={"understand": "y"}).status_code == 403
    assert "Delete your account" not in worker.get("/").get_data(as_text=True)


def test_story_helper_writes_under_their_own_name_but_not_over_private_parts(
    make_worker: Any, db: Any, vault: Vault, person: Person, stories: None
) -> None:
    worker = make_worker("view", "manage_story")
    assert worker.get("/story/health/write").status_code == 403
    page = worker.get("/story/money/write").get_data(as_text=True)
    saved = worker.post(
        "/story/money/check",
        data={"csrf_token": csrf_of(page), "text": "Help with bills.", "sensitivity": "normal"},
    )
    assert saved.status_code == 302
    with db.tx() as session:
        (version,) = story_history(session, vault, person.citizen_id, "money")
    assert version.recorded_by.startswith("worker:")


def test_helper_who_may_answer_requests_can_stop_sharing(
    make_worker: Any, db: Any, vault: Vault, person: Person
) -> None:
    grant_id = grant_for(db, vault, person)
    worker = make_worker("view", "answer_requests")
    page = worker.get(f"/sharing/{grant_id}/stop").get_data(as_text=True)
    done = worker.post(f"/sharing/{grant_id}/stop", data={"csrf_token": csrf_of(page)})
    assert done.status_code == 302
    with db.tx() as session:
        assert get_grant(session, grant_id).revoked_by.startswith("worker:")
