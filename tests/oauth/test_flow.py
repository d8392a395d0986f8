"""The whole flow: push, consent, code, token, fetch, as a department and a person see it."""

from __future__ import annotations

import html
from typing import Any

from tests.oauth.harness import (
    HOUSING_DETAILS,
    answer,
    open_consent,
    redirect_params,
    whole_flow,
)


def test_a_department_gets_exactly_what_the_person_agreed_to(
    department: Any, sam: Any, app: Any
) -> None:
    tokens = whole_flow(sam, department)
    assert tokens["token_type"] == "DPoP"
    assert tokens["expires_in"] == 300
    assert tokens["grant_id"]
    (granted,) = tokens["authorization_details"]
    assert granted["type"] == "tellonce_data"
    assert granted["data_points"] == HOUSING_DETAILS["data_points"]

    fetched = department.fetch(tokens["access_token"])
    assert fetched.status_code == 200, fetched.get_json()
    body = fetched.get_json()
    assert {p["key"] for p in body["data_points"]} == {
        "identity.name",
        "contact.address",
        "money.income_monthly",
    }
    assert [s["topic"] for s in body["story"]] == ["housing"]
    assert body["subject"] and body["receipt"]["ledger_index"] >= 0
    assert body["fetches_left"] == 9


def test_the_consent_page_says_who_what_why_and_how_long(department: Any, sam: Any) -> None:
    pushed = department.par().get_json()
    page = html.unescape(
        open_consent(sam, department, pushed["request_uri"]).get_data(as_text=True)
    )
    for words in (
        "Anytown Council housing",
        "Priya Shah",
        "Head of Housing Options",
        "To find you somewhere safe to stay",
        "HOU-2291",
        "up to 10 times",
        "90 days",
        "Share",
        "Don't share",
    ):
        assert words in page, words


def test_saying_no_sends_access_denied_with_iss_and_state(
    department: Any, sam: Any, app: Any
) -> None:
    pushed = department.par().get_json()
    page = open_consent(sam, department, pushed["request_uri"])
    back = answer(sam, page, "decline")
    params = redirect_params(back)
    assert params["error"] == "access_denied"
    assert params["state"] == department.state
    assert params["iss"] == app.config["BASE_URL"]
    assert "code" not in params


def test_a_yes_gives_a_code_with_iss_and_state(department: Any, sam: Any, app: Any) -> None:
    pushed = department.par().get_json()
    page = open_consent(sam, department, pushed["request_uri"])
    params = redirect_params(answer(sam, page, "share"))
    assert params["code"]
    assert params["state"] == department.state
    assert params["iss"] == app.config["BASE_URL"]
