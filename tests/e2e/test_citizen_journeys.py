"""A citizen in a real browser: tell the story, correct a fact, stop sharing, see every use,
and delete the account. Each main page is screenshotted and checked with axe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from consent.access import fetch_for_department
from consent.actors import citizen as citizen_actor
from consent.grants import GrantRequest, give_grant
from tests.e2e.conftest import Citizen, LiveServer, MakeCitizen
from vault.citizens import get_citizen
from vault.db import session_scope
from vault.records import current_story, data_point_history

Look = Callable[[Page, str], None]


def _look(axe_check: Callable[[Page], None], screenshot: Callable[[Page, str], Any]) -> Look:
    def look(page: Page, name: str) -> None:
        expect(page.locator("h1")).to_have_count(1)
        axe_check(page)
        screenshot(page, f"citizen-{name}")

    return look


def _grant(live_server: LiveServer, sam: Citizen, department: str = "dept-housing") -> str:
    """Sam says yes to a department (through the domain: the consent page comes later)."""
    request = GrantRequest(
        department_id=department,
        purpose_code="emergency_housing",
        purpose_text="To find you somewhere safe to stay tonight.",
        data_points=("identity.name", "housing.status"),
        case_reference="HOU-2291",
        duration_days=30,
        data_life_days=90,
        max_fetches=10,
    )
    with session_scope(live_server.engine) as session:
        actor = citizen_actor(sam.account_id, sam.citizen_id)
        return give_grant(session, live_server.vault, actor, request).grant.id


def test_tell_the_housing_story(
    live_server: LiveServer,
    make_citizen: MakeCitizen,
    signed_in_page: Callable[..., Page],
    axe_check: Callable[[Page], None],
    screenshot: Callable[[Page, str], Any],
) -> None:
    look = _look(axe_check, screenshot)
    sam = make_citizen()
    page = signed_in_page(sam.account_id)
    page.goto("/")
    look(page, "home")
    page.get_by_role("link", name="My story").first.click()
    expect(page.get_by_role("heading", name="My story")).to_be_visible()
    look(page, "story")
    page.get_by_role("link", name="Open Housing").click()
    look(page, "story-housing")
    page.get_by_role("link", name="Change this part").click()
    box = page.get_by_label("Housing")
    box.fill("")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("link", name="Write your story for this topic")).to_be_visible()
    look(page, "story-write-error")
    box.fill("I lost my flat in March.\nNow I sleep on a friend's sofa.")
    page.get_by_label("Ask me each time").check()
    expect(page.get_by_text("we will never share this part unless you say yes")).to_be_visible()
    look(page, "story-write")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Check your answers")).to_be_visible()
    look(page, "story-check")
    page.get_by_role("button", name="Save my story").click()
    expect(page.get_by_text("Your story about housing is saved.")).to_be_visible()
    expect(page.get_by_text("Earlier versions")).to_be_visible()
    with session_scope(live_server.engine) as session:
        (housing,) = current_story(session, live_server.vault, sam.citizen_id, ["housing"])
    assert housing.version == 2 and housing.sensitivity == "ask_me_each_time"
    # The words survive the trip through the check page, line breaks and all.
    assert housing.text == "I lost my flat in March.\nNow I sleep on a friend's sofa."


def test_correct_a_data_point(
    live_server: LiveServer,
    make_citizen: MakeCitizen,
    signed_in_page: Callable[..., Page],
    axe_check: Callable[[Page], None],
    screenshot: Callable[[Page, str], Any],
) -> None:
    look = _look(axe_check, screenshot)
    sam = make_citizen()
    page = signed_in_page(sam.account_id)
    page.goto("/information")
    expect(page.get_by_text("14 March 1988")).to_be_visible()
    look(page, "information")
    page.get_by_role("link", name="Change Your housing").click()
    look(page, "information-change")
    page.get_by_label("I am in a hostel").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Check your answer")).to_be_visible()
    look(page, "information-check")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Your housing is saved.")).to_be_visible()
    page.get_by_role("link", name="History Your housing").click()
    expect(page.get_by_text("Version 2")).to_be_visible()
    expect(page.get_by_text("I am staying with friends or family")).to_be_visible()
    look(page, "information-history")
    with session_scope(live_server.engine) as session:
        versions = data_point_history(session, live_server.vault, sam.citizen_id, "housing.status")
    assert [v.value for v in versions] == ["hostel", "staying_with_friends"]


def test_give_a_grant_then_stop_it_in_the_browser(
    live_server: LiveServer,
    make_citizen: MakeCitizen,
    signed_in_page: Callable[..., Page],
    axe_check: Callable[[Page], None],
    screenshot: Callable[[Page, str], Any],
) -> None:
    look = _look(axe_check, screenshot)
    sam = make_citizen()
    grant_id = _grant(live_server, sam)
    page = signed_in_page(sam.account_id)
    page.goto("/sharing")
    expect(page.get_by_text("To find you somewhere safe to stay tonight.")).to_be_visible()
    look(page, "sharing")
    page.get_by_role("link", name="Stop sharing with dept-housing").click()
    look(page, "sharing-stop")
    page.get_by_role("button", name="Yes, stop sharing").click()
    expect(page.get_by_text("You stopped sharing with dept-housing.")).to_be_visible()
    expect(page.get_by_text("Stopped", exact=True).first).to_be_visible()
    with session_scope(live_server.engine) as session:
        refused = fetch_for_department(
            session,
            live_server.vault,
            grant_id,
            "dept-housing",
            acting_officer="A. Officer",
            case_reference="HOU-2291",
        )
    assert refused.event.result == "refused"


def test_stop_sharing_with_the_keyboard_only(
    live_server: LiveServer,
    make_citizen: MakeCitizen,
    signed_in_page: Callable[..., Page],
) -> None:
    sam = make_citizen()
    _grant(live_server, sam)
    page = signed_in_page(sam.account_id)
    page.goto("/sharing")

    def tab_to(name: str) -> None:
        for _ in range(60):
            page.keyboard.press("Tab")
            focused = page.evaluate("document.activeElement && document.activeElement.innerText")
            if focused and name in focused:
                return
        raise AssertionError(f"could not reach {name!r} with the Tab key")

    tab_to("Stop sharing")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Stop sharing with dept-housing?")).to_be_visible()
    tab_to("Yes, stop sharing")
    page.keyboard.press("Enter")
    expect(page.get_by_text("You stopped sharing with dept-housing.")).to_be_visible()


def test_see_who_has_seen_my_information(
    live_server: LiveServer,
    make_citizen: MakeCitizen,
    signed_in_page: Callable[..., Page],
    axe_check: Callable[[Page], None],
    screenshot: Callable[[Page, str], Any],
) -> None:
    look = _look(axe_check, screenshot)
    sam = make_citizen()
    housing = _grant(live_server, sam)
    other = _grant(live_server, sam, department="dept-benefits")
    with session_scope(live_server.engine) as session:
        for _ in range(21):
            fetch_for_department(
                session,
                live_server.vault,
                housing,
                "dept-housing",
                acting_officer="A. Officer",
                case_reference="HOU-2291",
            )
        fetch_for_department(
            session,
            live_server.vault,
            other,
            "dept-benefits",
            acting_officer="B. Officer",
            case_reference="WRONG-1",
        )
    page = signed_in_page(sam.account_id)
    page.goto("/who-has-seen-it")
    expect(page.get_by_text("Your name (version 1)").first).to_be_visible()
    expect(page.get_by_text("Refused: The case reference does not match")).to_be_visible()
    look(page, "access")
    page.get_by_role("link", name="Older").click()
    expect(page.locator("h2.govuk-summary-card__title")).to_have_count(2)
    page.get_by_role("link", name="Newer").click()
    expect(page.locator("h2.govuk-summary-card__title")).to_have_count(20)
    page.get_by_label("Show only one service").select_option("dept-benefits")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("h2.govuk-summary-card__title")).to_have_count(1)
    expect(page.get_by_text("B. Officer")).to_be_visible()
    look(page, "access-filtered")


def test_download_and_delete_the_account(
    live_server: LiveServer,
    make_citizen: MakeCitizen,
    signed_in_page: Callable[..., Page],
    axe_check: Callable[[Page], None],
    screenshot: Callable[[Page, str], Any],
) -> None:
    look = _look(axe_check, screenshot)
    sam = make_citizen()
    page = signed_in_page(sam.account_id)
    page.goto("/download")
    expect(page.get_by_text("Sam Taylor").first).to_be_visible()
    look(page, "download")
    page.goto("/delete")
    look(page, "delete")
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("link", name="Tick the box to say you understand")).to_be_visible()
    look(page, "delete-error")
    page.get_by_label("I understand").check()
    page.get_by_role("button", name="Delete my account").click()
    expect(page.get_by_role("heading", name="Your account is deleted")).to_be_visible()
    look(page, "deleted")
    with session_scope(live_server.engine) as session:
        assert get_citizen(session, sam.citizen_id).status == "erased"
    page.goto("/information")
    assert "/sign-in" in page.url
