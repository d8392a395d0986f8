"""A department asks; Sam reads the consent page in a real browser and answers.

The department's server-to-server calls (PAR, token) go through a test client of the same
app the browser talks to; the department's redirect URI is caught by the browser (there is
no department site here), so the test reads the code, state and ``iss`` it would receive.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, Route, expect

from connectors.departments import register_department
from consent.grants import grants_for_citizen
from tests.connectors.dpop_client import new_key
from tests.e2e.conftest import LiveServer
from tests.e2e.test_reading_age import BANNED, MOST_ANY_PAGE, grade
from tests.oauth.harness import REDIRECT_URI, DepartmentSide, registration
from vault.db import session_scope


def _department(live_server: LiveServer) -> DepartmentSide:
    key = new_key("ES256")
    with session_scope(live_server.engine) as session:
        registered = register_department(session, live_server.vault, registration(key))
    return DepartmentSide(
        live_server.app.test_client(), live_server.url, registered.department.id, key
    )


def _catch_redirects(page: Page) -> dict[str, str]:
    """Answer the department's callback in the browser; return what it was sent."""
    caught: dict[str, str] = {}

    def answer(route: Route) -> None:
        query = parse_qs(urlsplit(route.request.url).query)
        caught.update({k: v[0] for k, v in query.items()})
        route.fulfill(status=200, content_type="text/html", body="<title>Back</title><p>Back")

    page.route(REDIRECT_URI + "*", answer)
    return caught


def _open(page: Page, side: DepartmentSide) -> None:
    pushed = side.par()
    assert pushed.status_code == 201, pushed.get_json()
    uri = pushed.get_json()["request_uri"]
    page.goto(f"/oauth/authorize?client_id={side.client_id}&request_uri={uri}")


def test_sam_reads_the_request_unticks_income_and_shares(
    live_server: LiveServer,
    make_citizen: Any,
    signed_in_page: Any,
    axe_check: Any,
    screenshot: Any,
) -> None:
    sam = make_citizen()
    side = _department(live_server)
    page = signed_in_page(sam.account_id)
    caught = _catch_redirects(page)
    _open(page, side)

    expect(page.get_by_role("heading", level=1)).to_contain_text("Anytown Council housing")
    expect(page.get_by_text("Priya Shah, Head of Housing Options")).to_be_visible()
    expect(page.get_by_text("Case number: HOU-2291")).to_be_visible()
    axe_check(page)
    text = html.unescape(page.inner_text("main")).lower()
    assert not [word for word in BANNED if word in text]
    assert grade(page.inner_text("main")) <= MOST_ANY_PAGE
    screenshot(page, "consent-page")

    page.get_by_label("Your income each month").uncheck()
    page.get_by_role("button", name="Share", exact=True).click()
    page.wait_for_url(REDIRECT_URI + "*")
    assert caught["code"] and caught["state"] == side.state
    assert caught["iss"] == live_server.url

    with session_scope(live_server.engine) as session:
        (grant,) = grants_for_citizen(session, sam.citizen_id)
    assert grant.data_points == ["identity.name", "contact.address"]
    tokens = side.token(caught["code"]).get_json()
    fetched = side.fetch(tokens["access_token"]).get_json()
    assert {p["key"] for p in fetched["data_points"]} == {"identity.name"}  # no address on file


def test_sam_says_no_and_the_department_is_told_access_denied(
    live_server: LiveServer, make_citizen: Any, signed_in_page: Any
) -> None:
    sam = make_citizen()
    side = _department(live_server)
    page = signed_in_page(sam.account_id)
    caught = _catch_redirects(page)
    _open(page, side)
    page.get_by_role("button", name="Don't share").click()
    page.wait_for_url(REDIRECT_URI + "*")
    assert caught["error"] == "access_denied"
    assert caught["iss"] == live_server.url
    with session_scope(live_server.engine) as session:
        assert grants_for_citizen(session, sam.citizen_id) == []


def test_a_used_request_link_shows_a_plain_page(
    live_server: LiveServer, make_citizen: Any, signed_in_page: Any, axe_check: Any
) -> None:
    sam = make_citizen()
    side = _department(live_server)
    page = signed_in_page(sam.account_id)
    pushed = side.par().get_json()
    link = f"/oauth/authorize?client_id={side.client_id}&request_uri={pushed['request_uri']}"
    page.goto(link)
    response = page.goto(link)
    assert response is not None and response.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("This request cannot be used")
    axe_check(page)
