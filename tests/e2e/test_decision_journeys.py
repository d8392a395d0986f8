"""A citizen in a real browser: read why a decision was made, say a data point is wrong, and
follow it in My challenges. Each new page is screenshotted and checked with axe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from consent.access import fetch_for_department
from consent.actors import citizen as citizen_actor
from consent.decisions import DecisionInput, record_decision
from consent.grants import GrantRequest, give_grant
from tests.e2e.conftest import Citizen, LiveServer, MakeCitizen
from vault.db import session_scope

DEPARTMENT = "dept-housing"
CASE = "HOU-2291"
WORDS = "I am not with friends now. I sleep in my car since Monday."


def _decided_about(live_server: LiveServer, sam: Citizen) -> str:
    """Sam shares, the department fetches, and a computer decides using what it got."""
    vault = live_server.vault
    request = GrantRequest(
        department_id=DEPARTMENT,
        purpose_code="emergency_housing",
        purpose_text="To find you somewhere safe to stay tonight.",
        data_points=("identity.name", "housing.status"),
        case_reference=CASE,
        duration_days=30,
        data_life_days=90,
        max_fetches=10,
    )
    with session_scope(live_server.engine) as session:
        actor = citizen_actor(sam.account_id, sam.citizen_id)
        grant_id = give_grant(session, vault, actor, request).grant.id
    with session_scope(live_server.engine) as session:
        fetch_for_department(
            session, vault, grant_id, DEPARTMENT, acting_officer="A. Officer", case_reference=CASE
        )
    decided = DecisionInput(
        case_reference=CASE,
        title="Emergency housing",
        outcome="You can stay at Elm House from tonight.",
        reasons="You told us you are staying with friends, so you are not our first priority.",
        automated=True,
        algorithm_name="Housing triage",
        algorithm_version="2.1",
        officer_name="Priya Shah",
        officer_role="Housing manager",
        data_points_used=[("identity.name", 1), ("housing.status", 1)],
        other_information_used=[{"description": "Night shelter places", "source": "The council"}],
    )
    with session_scope(live_server.engine) as session:
        return record_decision(
            session, vault, DEPARTMENT, grant_id, decided, acting_officer="A. Officer"
        ).id


def test_say_a_data_point_used_in_a_decision_is_wrong(
    live_server: LiveServer,
    make_citizen: MakeCitizen,
    signed_in_page: Callable[..., Page],
    axe_check: Callable[[Page], None],
    screenshot: Callable[[Page, str], Any],
) -> None:
    def look(page: Page, name: str) -> None:
        expect(page.locator("h1")).to_have_count(1)
        axe_check(page)
        screenshot(page, f"decisions-{name}")

    sam = make_citizen()
    _decided_about(live_server, sam)
    page = signed_in_page(sam.account_id)
    page.goto("/")
    expect(page.get_by_text("A decision was made about you.")).to_be_visible()
    page.get_by_role("link", name="Decisions about me").first.click()
    expect(page.get_by_role("heading", name="Decisions about me")).to_be_visible()
    look(page, "list")

    page.get_by_role("link", name="Emergency housing").click()
    expect(page.get_by_role("heading", name="Why this decision")).to_be_visible()
    expect(page.get_by_text("A computer decided: Housing triage version 2.1.")).to_be_visible()
    expect(page.get_by_text("The person who answers for it is Priya Shah")).to_be_visible()
    expect(page.get_by_text("I am staying with friends or family")).to_be_visible()
    look(page, "detail")

    page.get_by_role("button", name="This is wrong about your housing").click()
    expect(page.get_by_role("heading", name="What is wrong?")).to_be_visible()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("link", name="Say what is wrong")).to_be_visible()
    look(page, "wrong-error")
    page.get_by_label("What is wrong?").fill(WORDS)
    look(page, "wrong")
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", name="Check your answer")).to_be_visible()
    expect(page.get_by_text(WORDS)).to_be_visible()
    assert "car" not in page.url  # the words travel in the session, never the address
    look(page, "check")
    page.get_by_role("button", name="Send").click()

    expect(page.get_by_role("heading", name="We have told dept-housing")).to_be_visible()
    expect(page.get_by_text("They must answer by")).to_be_visible()
    look(page, "sent")
    page.get_by_role("link", name="See my challenges").click()

    expect(page.get_by_role("heading", name="My challenges")).to_be_visible()
    expect(page.get_by_role("link", name="Your housing (version 1)")).to_be_visible()
    expect(page.get_by_text("Being checked. They must answer by")).to_be_visible()
    look(page, "my-challenges")
    page.get_by_role("link", name="Your housing (version 1)").click()
    expect(page.get_by_text(WORDS)).to_be_visible()
    look(page, "challenge")

    page.get_by_role("link", name="See the decision").click()
    expect(page.get_by_text("Being checked").first).to_be_visible()
    expect(page.get_by_role("button", name="This is wrong about your housing")).to_have_count(0)


def test_choose_how_we_tell_you_news(
    live_server: LiveServer,
    make_citizen: MakeCitizen,
    signed_in_page: Callable[..., Page],
    axe_check: Callable[[Page], None],
    screenshot: Callable[[Page, str], Any],
) -> None:
    sam = make_citizen()
    page = signed_in_page(sam.account_id)
    page.goto("/")
    page.get_by_role("link", name="Choose how we tell you news").click()
    expect(page.get_by_label("Email me every time")).to_be_checked()
    axe_check(page)
    screenshot(page, "decisions-notifications")
    page.get_by_label("Email me once a day at most").check()
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("We saved how we tell you news.")).to_be_visible()
    expect(page.get_by_label("Email me once a day at most")).to_be_checked()
