"""Every page passes axe-core's WCAG 2.0/2.1/2.2 A and AA rules, on desktop and phone.

Pages come from the app's URL map, so new pages are checked without being listed here. Each
page also needs exactly one h1, a title and a language on <html>.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import (
    VIEWPORTS,
    LiveServer,
    World,
    axe_violations,
    describe_violations,
    page_paths,
    visit_pages,
)

ROLES = ("signed-out", "citizen", "worker")


def structure_problems(page: Page) -> list[str]:
    """What is wrong with the page's outline: its h1s, title and language."""
    problems = []
    h1s = page.locator("h1").count()
    if h1s != 1:
        problems.append(f"has {h1s} h1 headings, not 1")
    if not page.title().strip():
        problems.append("has an empty <title>")
    if not (page.locator("html").get_attribute("lang") or "").strip():
        problems.append("has no lang attribute on <html>")
    return problems


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
@pytest.mark.parametrize("role", ROLES)
def test_every_page_is_accessible(
    browser: Browser,
    live_server: LiveServer,
    world: World,
    signed_in_page: Any,
    role: str,
    viewport: str,
) -> None:
    paths, unfilled = page_paths(live_server.app, world.values)
    assert not unfilled, (
        f"These pages need a value for their URL arguments in tests/e2e/conftest.py "
        f"(World.values) so they are checked: {unfilled}"
    )
    context = browser.new_context(base_url=live_server.url, **VIEWPORTS[viewport])
    try:
        if role == "citizen":
            signed_in_page(world.sam.account_id, context).close()
        elif role == "worker":
            acting_for = world.sam.citizen_id
            signed_in_page(world.worker_account_id, context, acting_for=acting_for).close()
        failures: list[str] = []
        checked = []
        for path, status, page in visit_pages(context, paths):
            checked.append(f"{status} {path} -> {page.url.removeprefix(live_server.url)}")
            if status >= 500:
                failures.append(f"{path}: the server failed ({status})")
                continue
            problems = structure_problems(page)
            violations = axe_violations(page)
            if violations:
                problems.append("axe violations:\n" + describe_violations(violations))
            failures.extend(f"{path} ({page.url}) {problem}" for problem in problems)
        print(f"\n{role}, {viewport}: checked {len(checked)} pages")
        print("\n".join(checked))
        assert len(checked) >= 2, "Hardly any pages were found: is the URL map empty?"
        assert not failures, f"{role}, {viewport}:\n" + "\n".join(failures)
    finally:
        context.close()


def test_switching_to_welsh_shows_the_sign_in_page_in_welsh(
    page: Page, axe_check: Callable[[Page], None]
) -> None:
    mo = Path(__file__).resolve().parents[2] / "web/translations/cy/LC_MESSAGES/messages.mo"
    assert mo.exists(), "Compile the Welsh catalogue: pybabel compile -d web/translations"
    page.goto("/sign-in")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("link", name="Cymraeg").click()
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    expect(page.locator("html")).to_have_attribute("lang", "cy")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mewngofnodi neu greu cyfrif")
    expect(page.get_by_label("Cyfeiriad e-bost")).to_be_visible()
    axe_check(page)
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in or make an account")
