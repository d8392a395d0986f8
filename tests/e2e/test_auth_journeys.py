"""Browser journeys for signing in: sign up by email link, passkeys, keyboard only, axe."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveServer
from web.mail import read_outbox

LINK = re.compile(r"https?://\S+/sign-in/link\?token=\S+")
Check = Callable[[Page], None]


def _emailed_link(live_server: LiveServer) -> str:
    messages = read_outbox(live_server.mail_dir)
    assert messages, "no email was sent"
    found = LINK.search(messages[-1].get_content())
    assert found, "the email has no link"
    return found.group(0)


def _tab_to(page: Page, name: str, limit: int = 40) -> None:
    """Press Tab until the element with this accessible text (or label) has focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => {
                const el = document.activeElement;
                if (!el) return "";
                const label = el.labels && el.labels[0] ? el.labels[0].innerText : "";
                return (label || el.innerText || el.value || "").trim();
            }"""
        )
        if focused.startswith(name):
            return
    raise AssertionError(f"could not reach {name!r} with the Tab key")


def test_sign_up_by_email_link(
    page: Page, live_server: LiveServer, axe_check: Check, screenshot: Any
) -> None:
    page.goto("/sign-in")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in or make an account")
    axe_check(page)
    screenshot(page, "auth-sign-in")

    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert").first).to_contain_text("Enter your email address")
    axe_check(page)
    screenshot(page, "auth-sign-in-error")

    page.get_by_label("Email address").fill("new.person@example.org")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    assert "example.org" not in page.url
    axe_check(page)
    screenshot(page, "auth-check-email")

    link = _emailed_link(live_server)
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Make your account")
    axe_check(page)
    screenshot(page, "auth-make-account")
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("link", name="Sign out")).to_be_visible()

    # The same link a second time: a plain page with a way to get a new one.
    page.goto(link)
    expect(
        page.get_by_text("This link has expired or has been used. Ask for a new one.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Get a new link")).to_be_visible()
    axe_check(page)
    screenshot(page, "auth-dead-link")


def test_add_a_passkey_and_sign_in_with_it(
    make_citizen: Any,
    signed_in_page: Callable[..., Page],
    live_server: LiveServer,
    axe_check: Check,
    screenshot: Any,
) -> None:
    sam = make_citizen()
    page = signed_in_page(sam.account_id)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    page.goto("/passkeys")
    expect(page.get_by_text("You have no passkeys yet.")).to_be_visible()
    axe_check(page)
    page.get_by_role("button", name="Add a passkey").click()
    expect(page.get_by_text("Your passkey is added.")).to_be_visible()
    expect(page.get_by_role("term")).to_have_text("Passkey 1")
    axe_check(page)
    screenshot(page, "auth-passkeys")

    page.get_by_role("link", name=re.compile("^Remove")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Remove Passkey 1?")
    axe_check(page)
    page.get_by_role("link", name="No, keep it").click()

    page.get_by_role("link", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/sign-in$"))
    expect(page.get_by_text("You have signed out.")).to_be_visible()
    page.get_by_role("button", name="Use a passkey").click()
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("link", name="Sign out")).to_be_visible()
    page.goto("/passkeys")
    expect(page.get_by_text("Last used on")).to_be_visible()


def test_the_passkey_button_stays_hidden_without_javascript(
    browser: Any, live_server: LiveServer
) -> None:
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto("/sign-in")
        expect(page.get_by_role("button", name="Use a passkey")).to_be_hidden()
        page.get_by_label("Email address").fill("sam@example.org")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    finally:
        context.close()


def test_sign_in_by_email_with_the_keyboard_only(
    page: Page, live_server: LiveServer, make_citizen: Any, axe_check: Check
) -> None:
    make_citizen("sam@example.org")
    page.goto("/sign-in")
    _tab_to(page, "Email address")
    page.keyboard.type("sam@example.org")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")

    page.goto(_emailed_link(live_server))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    axe_check(page)
    _tab_to(page, "Continue")
    page.keyboard.press("Enter")
    expect(page).to_have_url(live_server.url + "/")
    expect(page.get_by_role("link", name="Sign out")).to_be_visible()


def test_plain_refusal_pages_pass_axe(
    page: Page, live_server: LiveServer, axe_check: Check, screenshot: Any
) -> None:
    # A form sent without its hidden CSRF token: a plain "timed out" page.
    page.goto("/sign-in")
    page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
    page.get_by_label("Email address").fill("sam@example.org")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This page timed out")
    axe_check(page)

    # The rate-limited page, from an app with limits on; shown at the live server's
    # address so its styles load as they would for real.
    from web import create_app

    limited = create_app(
        {
            "TESTING": True,
            "ENGINE": live_server.engine,
            "KEY_PROVIDER": live_server.app.config["KEY_PROVIDER"],
            "MAIL_DIR": str(live_server.mail_dir),
            "SECRET_KEY": "e2e-limits",
            "RATELIMIT_ENABLED": True,
        }
    ).test_client()
    html = _too_many_html(limited)
    page.route(
        live_server.url + "/too-many-tries",
        lambda route: route.fulfill(status=429, body=html, content_type="text/html"),
    )
    page.goto("/too-many-tries")
    expect(page.get_by_text("Too many tries. Wait a few minutes and try again.")).to_be_visible()
    axe_check(page)
    screenshot(page, "auth-too-many")


def _too_many_html(client: Any) -> str:
    html = client.get("/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert token
    for n in range(11):
        answer = client.post(
            "/sign-in", data={"email": f"p{n}@example.org", "csrf_token": token.group(1)}
        )
    assert answer.status_code == 429
    return str(answer.get_data(as_text=True))
