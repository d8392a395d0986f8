"""The browser harness works: the sign-in page loads and passes axe on desktop and phone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import VIEWPORTS, LiveServer, World, axe_violations


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_sign_in_page_loads_and_passes_axe(
    browser: Browser,
    live_server: LiveServer,
    viewport: str,
    axe_check: Callable[[Page], None],
    screenshot: Callable[[Page, str], Any],
) -> None:
    context = browser.new_context(base_url=live_server.url, **VIEWPORTS[viewport])
    try:
        page = context.new_page()
        response = page.goto("/sign-in")
        assert response is not None and response.status == 200
        expect(page.locator("h1")).to_have_count(1)
        axe_check(page)
        screenshot(page, f"sign-in-{viewport}")
    finally:
        context.close()


def test_signed_in_page_shows_the_citizen_is_signed_in(
    make_citizen: Any, signed_in_page: Any
) -> None:
    sam = make_citizen()
    page = signed_in_page(sam.account_id)
    page.goto("/")
    assert "/sign-in" not in page.url


def test_axe_finds_a_missing_label(page: Page) -> None:
    # The accessibility checks can fail: an unlabelled input is reported.
    page.set_content(
        '<html lang="en"><head><title>t</title></head><body><main><h1>Form</h1>'
        '<input type="text"></main></body></html>'
    )
    ids = {violation["id"] for violation in axe_violations(page)}
    assert "label" in ids


def test_a_worker_page_says_whom_they_act_for(
    world: World, signed_in_page: Callable[..., Page]
) -> None:
    page = signed_in_page(world.worker_account_id, acting_for=world.sam.citizen_id)
    page.goto("/")
    expect(page.get_by_text("You are acting for Sam Taylor")).to_be_visible()
