"""A citizen invites a support worker, who acts for them within limits, until removed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import LiveServer, MakeCitizen
from vault.accounts import create_account
from vault.db import session_scope

ACTING = "You are acting for Sam Taylor"


def test_invite_a_worker_who_acts_within_limits_until_removed(
    browser: Browser,
    live_server: LiveServer,
    make_citizen: MakeCitizen,
    signed_in_page: Callable[..., Page],
    axe_check: Callable[[Page], None],
    screenshot: Callable[[Page, str], Any],
) -> None:
    sam = make_citizen()
    with session_scope(live_server.engine) as session:
        jo = create_account(session, live_server.vault, "jo@example.org").id

    def look(page: Page, name: str) -> None:
        expect(page.locator("h1")).to_have_count(1)
        axe_check(page)
        screenshot(page, f"workers-{name}")

    # Sam invites someone: what they can do, until when, check, then the code (shown once).
    citizen = signed_in_page(sam.account_id)
    citizen.goto("/helpers")
    expect(citizen.get_by_text("Nobody is helping you at the moment.")).to_be_visible()
    look(citizen, "helpers-empty")
    citizen.get_by_role("button", name="Invite someone to help you").click()
    citizen.get_by_role("button", name="Continue").click()
    expect(
        citizen.get_by_role("link", name="Choose at least one thing they can do")
    ).to_be_visible()
    look(citizen, "invite-scopes-error")
    citizen.get_by_label("See your information").check()
    citizen.get_by_label("Say yes or no to requests for you").check()
    citizen.get_by_role("button", name="Continue").click()
    look(citizen, "invite-until")
    ends = datetime.now(UTC).date() + timedelta(days=90)
    citizen.get_by_label("Day").fill(str(ends.day))
    citizen.get_by_label("Month").fill(str(ends.month))
    citizen.get_by_label("Year").fill(str(ends.year))
    citizen.get_by_role("button", name="Continue").click()
    expect(citizen.get_by_role("heading", name="Check your answers")).to_be_visible()
    look(citizen, "invite-check")
    citizen.get_by_role("button", name="Make the code").click()
    code = citizen.get_by_test_id("invite-code").inner_text()
    assert len(code) == 14
    look(citizen, "invite-code")

    # Jo, in another browser, signs in, accepts the code and acts for Sam.
    context = browser.new_context(base_url=live_server.url)
    try:
        worker = signed_in_page(jo, context=context)
        worker.goto("/people")
        expect(worker.get_by_text("Nobody has asked you to help them yet.")).to_be_visible()
        look(worker, "people-empty")
        worker.get_by_role("link", name="Accept an invitation").click()
        worker.get_by_label("Enter the code").fill("ABCD-EFGH-JKMN")
        worker.get_by_role("button", name="Continue").click()
        expect(worker.get_by_role("link", name="That code does not work.")).to_be_visible()
        look(worker, "accept-error")
        worker.get_by_label("Enter the code").fill(code.lower())
        worker.get_by_role("button", name="Continue").click()
        expect(worker.get_by_role("heading", name="Sam Taylor")).to_be_visible()
        look(worker, "people")
        worker.get_by_role("button", name="Act for this person").click()
        expect(worker.get_by_text(ACTING)).to_be_visible()
        look(worker, "acting-home")

        # Within scope: Sam's information. Beyond it: writing the story, deleting, inviting.
        worker.goto("/information")
        expect(worker.get_by_text(ACTING)).to_be_visible()
        expect(worker.get_by_text("staying", exact=False).first).to_be_visible()
        look(worker, "acting-information")
        for path in ("/story/housing/write", "/delete", "/helpers", "/helpers/invite"):
            response = worker.goto(path)
            assert response is not None and response.status == 403, path
            expect(worker.get_by_text(ACTING)).to_be_visible()
        look(worker, "refused")

        # Sam removes Jo.
        citizen.goto("/helpers")
        expect(citizen.get_by_role("heading", name="jo@example.org")).to_be_visible()
        look(citizen, "helpers")
        citizen.get_by_role("link", name="Remove jo@example.org").click()
        look(citizen, "remove")
        citizen.get_by_role("button", name="Yes, remove them").click()
        expect(citizen.get_by_text("Your helper has been removed.")).to_be_visible()

        # Jo can no longer act for Sam, and is sent back to their own list.
        worker.goto("/information")
        assert worker.url.endswith("/people")
        expect(worker.get_by_text(ACTING)).to_have_count(0)
        expect(worker.get_by_text("Sam Taylor")).to_have_count(0)
        expect(
            worker.get_by_text("You can no longer act for the person you were helping.")
        ).to_be_visible()
        look(worker, "after-removal")
    finally:
        context.close()
