"""Download everything, and delete the account (which erases it and signs the person out)."""

from __future__ import annotations

import json
from typing import Any

from consent.access import fetch_for_department
from consent.grants import get_grant
from tests.web.citizen.conftest import CANARY, Person, csrf_of, grant_for, write_story
from vault.citizens import get_citizen
from vault.services import Vault


def test_download_json_holds_everything(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    write_story(db, vault, person, "housing", "I lost my flat.")
    grant_id = grant_for(db, vault, person)
    with db.tx() as session:
        fetch_for_department(
            session,
            vault,
            grant_id,
            "housing-dept",
            acting_officer="A. Officer",
            case_reference="HOU-2291",
        )
    response = signed_in.get("/download/tell-once.json")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["Cache-Control"] == "no-store"
    data = json.loads(response.get_data(as_text=True))
    assert data["your_id"] == person.citizen_id
    names = next(i for i in data["your_information"] if i["key"] == "identity.name")
    assert names["versions"][0]["value"] == CANARY
    assert data["your_story"][0]["versions"][0]["text"] == "I lost my flat."
    assert data["your_sharing"][0]["id"] == grant_id
    assert data["your_sharing"][0]["status"] == "active"
    (use,) = data["who_has_seen_it"]
    assert use["officer"] == "A. Officer" and use["result"] == "served"
    assert {"key": "contact.address", "version": 1} in use["information"]
    assert data["your_helpers"] == []


def test_download_page_is_readable(signed_in: Any, db: Any, vault: Vault, person: Person) -> None:
    html = signed_in.get("/download").get_data(as_text=True)
    assert "Everything we hold about you" in html
    assert CANARY in html and "£1,250.50 a month" in html
    assert 'href="/download/tell-once.json"' in html


def test_delete_needs_the_tick(signed_in: Any, db: Any, vault: Vault, person: Person) -> None:
    page = signed_in.get("/delete").get_data(as_text=True)
    assert "You cannot undo this." in page
    assert "nobody can link it to you" in page.lower()
    html = signed_in.post("/delete", data={"csrf_token": csrf_of(page)}).get_data(as_text=True)
    assert "Tick the box to say you understand" in html and 'href="#understand"' in html
    with db.tx() as session:
        assert get_citizen(session, person.citizen_id).status == "active"


def test_delete_erases_stops_sharing_and_signs_out(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    grant_id = grant_for(db, vault, person)
    page = signed_in.get("/delete").get_data(as_text=True)
    done = signed_in.post("/delete", data={"csrf_token": csrf_of(page), "understand": "y"})
    assert done.status_code == 302 and done.headers["Location"] == "/deleted"
    assert (
        "tellonce=;" in done.headers["Set-Cookie"]
        or "Expires=Thu, 01 Jan 1970" in done.headers["Set-Cookie"]
    )
    gone = signed_in.get("/deleted")
    assert "Your account is deleted" in gone.get_data(as_text=True)
    with db.tx() as session:
        citizen = get_citizen(session, person.citizen_id)
        assert citizen.status == "erased" and citizen.wrapped_key is None
        assert get_grant(session, grant_id).revoked_at is not None
    assert signed_in.get("/information").status_code == 302  # signed out: back to sign in
