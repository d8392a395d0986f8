"""Every citizen page renders for a signed-in citizen, privately, with no personal data in URLs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from consent.access import fetch_for_department
from tests.web.citizen.conftest import CANARY, Person, grant_for, write_story
from vault.services import Vault

PAGES = [
    "/",
    "/story",
    "/story/housing",
    "/story/housing/write",
    "/information",
    "/information/contact.address/change",
    "/information/contact.address/history",
    "/information/identity.date_of_birth/change",
    "/information/housing.status/change",
    "/information/money.income_monthly/change",
    "/information/money.benefits/change",
    "/information/family.children/change",
    "/information/health.conditions/change",
    "/sharing",
    "/who-has-seen-it",
    "/download",
    "/delete",
]
HREF = re.compile(r'(?:href|action)="([^"]*)"')


@pytest.fixture
def busy(db: Any, vault: Vault, person: Person) -> str:
    """Sam has a story, a grant, and one use of it."""
    write_story(db, vault, person, "housing", f"I lost my flat. {CANARY} helped me.")
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
    return grant_id


def test_every_page_renders_privately(signed_in: Any, busy: str) -> None:
    for path in PAGES:
        response = signed_in.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
        html = response.get_data(as_text=True)
        assert "<h1" in html, path
        for url in HREF.findall(html):
            assert "Zebracanary" not in url and "Quillfeather" not in url, path


def test_pages_show_the_persons_information_plainly(signed_in: Any, busy: str) -> None:
    html = signed_in.get("/information").get_data(as_text=True)
    assert CANARY in html
    assert "10 High Street" in html and "LS1 1AA" in html
    assert "£1,250.50 a month" in html
    assert "From: You" in html


def test_home_shows_whats_new_with_links(signed_in: Any, busy: str) -> None:
    html = signed_in.get("/").get_data(as_text=True)
    assert "housing-dept saw your information." in html
    assert "You started sharing with housing-dept." in html
    assert 'href="/who-has-seen-it"' in html


def test_signed_out_people_are_sent_to_sign_in(client: Any, person: Person) -> None:
    for path in ("/", "/story", "/information", "/sharing", "/who-has-seen-it", "/download"):
        response = client.get(path)
        assert response.status_code == 302
        assert "/sign-in" in response.headers["Location"]


def test_unknown_topic_or_key_is_not_found(signed_in: Any) -> None:
    for path in ("/story/nope", "/information/nope.nope/change", "/sharing/not-a-grant/stop"):
        response = signed_in.get(path)
        assert response.status_code == 404, path
        assert "We could not find that" in response.get_data(as_text=True), path


def test_no_personal_value_in_any_redirect_or_link_of_a_change(signed_in: Any) -> None:
    """Type the canary as an answer and follow the whole journey: it never reaches a URL."""
    from tests.web.citizen.conftest import csrf_of

    page = signed_in.get("/information/identity.name/change").get_data(as_text=True)
    check = signed_in.post(
        "/information/identity.name/change",
        data={"csrf_token": csrf_of(page), "value": "Canary Newname"},
    )
    html = check.get_data(as_text=True)
    assert "Canary Newname" in html
    assert not [u for u in HREF.findall(html) if "Canary" in u]
    answer = re.search(r'name="answer" value="([^"]*)"', html)
    assert answer
    saved = signed_in.post(
        "/information/identity.name/check",
        data={"csrf_token": csrf_of(html), "answer": answer.group(1).replace("&#34;", '"')},
    )
    assert saved.status_code == 302 and "Canary" not in saved.headers["Location"]
    story = signed_in.get("/story/housing/write").get_data(as_text=True)
    answers = {"csrf_token": csrf_of(story), "text": "Canary story", "sensitivity": "normal"}
    saved = signed_in.post("/story/housing/check", data=answers)
    assert "Canary" not in saved.headers["Location"]
    for path in ("/", "/information", "/story", "/story/housing", "/download"):
        html = signed_in.get(path).get_data(as_text=True)
        assert not [u for u in HREF.findall(html) if "Canary" in u or "Zebracanary" in u]
