"""The whole story, on a live Tell Once and the demo department's own website.

Tell Once serves real HTTP (``live_server``); Anytown Council housing (scripts/demo_department.py)
serves real HTTP on a second port, registered with its own redirect URI and webhook there.
Sam acts in a real browser (Playwright); the council's caseworker acts over plain HTTP on
the council's website, on the case Sam's visit opened. Tell Once's outbox worker is run by
the test (``connectors.outbox.deliver``), exactly as ``tellonce outbox run`` runs it.
"""

from __future__ import annotations

import html
import json
import re
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from joserfc.jwk import ECKey
from playwright.sync_api import Page, expect
from werkzeug.serving import BaseWSGIServer, make_server

from connectors.departments import register_department
from connectors.outbox import DeliveryReport, backoff, deliver, outbox_status, post_set
from connectors.set_tokens import read_set
from scripts.demo_department import COOKIE
from scripts.demo_department import create_app as create_department_app
from scripts.demo_department_casework import CaseworkClient
from scripts.demo_department_client import DepartmentSettings
from scripts.demo_department_events import Inbox
from tests.e2e.conftest import LiveServer
from vault import catalogue
from vault.accounts import find_account
from vault.db import session_scope
from web.demo import DEMO_CITIZEN_EMAIL, DEMO_DEPARTMENT_ID, demo_department_registration, seed_demo

WORDS = "I moved out of Mill Lane in May. I stay in a room at 9 Station Road now."
NEW_ADDRESS = "Room 4, 9 Station Road, Anytown, AN1 5RR"
REVIEWER = ("Tom Okafor", "Senior Housing Officer")


@dataclass
class Council:
    """Anytown Council housing's website on its own port; it can be stopped and started."""

    app: Any
    inbox: Inbox
    port: int
    server: BaseWSGIServer | None = None
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def start(self) -> None:
        """Serve on the registered port (again, after ``stop``), keeping what it holds."""
        self.server = make_server("localhost", self.port, self.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Take the website down: nothing listens on its port until ``start``."""
        if self.server is not None and self.thread is not None:
            self.server.shutdown()
            self.server.server_close()
            self.thread.join(timeout=5)
        self.server = None


@pytest.fixture
def council(live_server: LiveServer) -> Iterator[Council]:
    """The demo department, registered with Tell Once at this test's addresses, and serving."""
    holder: dict[str, Any] = {}
    first = make_server("localhost", 0, lambda env, start: holder["app"](env, start), threaded=True)
    port = first.server_port
    base = f"http://localhost:{port}"
    key = ECKey.generate_key("P-256")
    public = {**key.as_dict(private=False), "kid": key.thumbprint(), "alg": "ES256", "use": "sig"}
    registration = demo_department_registration(
        public, redirect_uri=f"{base}/callback", webhook_url=f"{base}/tellonce/events"
    )
    with session_scope(live_server.engine) as session:
        register_department(session, live_server.vault, registration, client_id=DEMO_DEPARTMENT_ID)
    settings = DepartmentSettings(DEMO_DEPARTMENT_ID, f"{base}/callback", key)
    client = CaseworkClient(live_server.url, settings)
    inbox = Inbox(live_server.url, DEMO_DEPARTMENT_ID, client.fetch_jwks)
    holder["app"] = create_department_app(client, inbox)
    site = Council(holder["app"], inbox, port, first)
    site.thread = threading.Thread(target=first.serve_forever, daemon=True)
    site.thread.start()
    try:
        yield site
    finally:
        site.stop()


@pytest.fixture
def sam_account_id(live_server: LiveServer) -> str:
    """The demo seed's Sam (name, address, income, a housing story); their account id."""
    with session_scope(live_server.engine) as session:
        seed_demo(session, live_server.vault)
        account = find_account(session, live_server.vault, DEMO_CITIZEN_EMAIL)
        assert account is not None
        return account.id


class Desk:
    """The caseworker's plain HTTP client on the council's website, on Sam's case."""

    def __init__(self, council: Council, page: Page) -> None:
        (visit,) = [c for c in page.context.cookies(council.url) if c["name"] == COOKIE]
        self.base = council.url
        self.cookie = f"{COOKIE}={visit['value']}"

    def _open(self, path: str, form: dict[str, Any] | None = None) -> str:
        body = urlencode(form, doseq=True).encode() if form is not None else None
        request = urllib.request.Request(  # noqa: S310 (a local test server)
            self.base + path, data=body, headers={"Cookie": self.cookie}
        )
        # A form answers 303 to /case; urllib follows it with a GET, keeping the cookie.
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return str(answer.read().decode("utf-8"))

    def source(self) -> str:
        """The case page's HTML."""
        return self._open("/case")

    def read(self, path: str = "/case", form: dict[str, Any] | None = None) -> str:
        """A page (after sending ``form`` there, if given) as a person reads it."""
        page = re.sub(r"<[^>]+>", " ", self._open(path, form))
        return " ".join(html.unescape(page).split())


def found(pattern: str, text: str) -> str:
    """The first group of ``pattern`` in ``text``, which must be there."""
    match = re.search(pattern, text)
    assert match is not None, pattern
    return match.group(1)


def share_with_the_council(page: Page, council: Council) -> None:
    """Sam, at the council's desk, lets it ask Tell Once, and says yes to everything."""
    page.goto(council.url + "/")
    page.get_by_role("button", name="Ask Tell Once for Sam's information").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Anytown Council housing")
    page.get_by_label("Your income each month").check()
    page.get_by_role("button", name="Share", exact=True).click()
    page.wait_for_url(council.url + "/case")
    expect(page.get_by_role("heading", name="What Sam shared with us")).to_be_visible()


def run_outbox(live_server: LiveServer, now: datetime | None = None) -> DeliveryReport:
    """One pass of Tell Once's outbox worker."""
    return deliver(live_server.engine, live_server.vault, live_server.url, now=now)


def shown_versions(page: Page) -> set[tuple[str, str]]:
    """The data points "What we used about you" shows: (label, version) from each card."""
    found = page.eval_on_selector_all(
        ".govuk-summary-card",
        """cards => cards.map(card => {
            const rows = [...card.querySelectorAll('.govuk-summary-list__row')];
            const version = rows.find(r => r.querySelector('dt').textContent.trim() === 'Version');
            if (!version) return null;
            const title = card.querySelector('.govuk-summary-card__title').childNodes[0];
            return [title.textContent.trim(), version.querySelector('dd').textContent.trim()];
        }).filter(Boolean)""",
    )
    return {(label, version) for label, version in found}


def test_the_whole_story(
    live_server: LiveServer,
    council: Council,
    sam_account_id: str,
    signed_in_page: Callable[..., Page],
    axe_check: Callable[[Page], None],
    screenshot: Callable[[Page, str], Any],
) -> None:
    page = signed_in_page(sam_account_id)
    share_with_the_council(page, council)
    expect(page.get_by_text("Flat 2, 14 Mill Lane, Anytown, AN1 2TT")).to_be_visible()
    screenshot(page, "story-council-case")

    # The caseworker records a decision using exactly what was just fetched.
    desk = Desk(council, page)
    used = re.findall(r'name="used"\s+value="([^"]+)" checked', desk.source())
    assert sorted(used) == ["contact.address@1", "identity.name@1", "money.income_monthly@1"]
    form = {
        "title": "Emergency housing",
        "outcome": "You can stay at Elm House from tonight.",
        "reasons": "You have nowhere safe to stay.",
        "automated": "yes",
        "algorithm_name": "Priority need screener",
        "algorithm_version": "2.3.1",
        "officer_name": "Priya Shah",
        "officer_role": "Head of Housing Options",
        "used": used,
    }
    recorded = desk.read("/decisions", form)
    decision_id = found(r"Tell Once's id (\S+)\)\.", recorded)

    # Sam sees exactly those versions on "Why this decision".
    page.goto("/decisions")
    page.get_by_role("link", name="Emergency housing").click()
    expect(page.get_by_role("heading", name="Why this decision")).to_be_visible()
    expected = {(catalogue.entry(k).label, v) for k, _, v in (u.rpartition("@") for u in used)}
    assert shown_versions(page) == expected
    expect(
        page.get_by_text("A computer decided: Priority need screener version 2.3.1.")
    ).to_be_visible()
    axe_check(page)
    screenshot(page, "story-why-this-decision")

    # Sam says the address is wrong, in their own words.
    page.get_by_role("button", name="This is wrong about your address").click()
    page.get_by_label("What is wrong?").fill(WORDS)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Check your answer")).to_be_visible()
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading", name="We have told Anytown Council housing")).to_be_visible()

    # The worker tells the council; the council checked each signature, and so do we.
    assert run_outbox(live_server) == DeliveryReport(sent=3, failed=0)
    heard = {notice.event: notice for notice in council.inbox.notices()}
    assert set(heard) == {"data_point_contested", "challenge_opened", "decision_review_requested"}
    with urllib.request.urlopen(live_server.url + "/jwks.json", timeout=10) as answer:  # noqa: S310
        keys = json.load(answer)
    for notice in heard.values():
        claims = read_set(notice.token, keys, issuer=live_server.url, audience=DEMO_DEPARTMENT_ID)
        assert claims["jti"] == notice.jti
    assert heard["data_point_contested"].details["key"] == "contact.address"
    case = desk.read()
    assert "Sam says Sam's address (version 1) is wrong." in case
    assert f"Sam says: {WORDS}" in case
    page.goto(council.url + "/case")  # the caseworker's screen, as Sam's visit left it
    expect(page.get_by_role("heading", name="Messages from Tell Once")).to_be_visible()
    screenshot(page, "story-council-challenge")

    # The council answers: corrected, with the right address.
    challenge_id = found(r'action="/challenges/([^/"]+)/answer"', desk.source())
    answer = {"key": "contact.address", "outcome": "corrected", "value": NEW_ADDRESS}
    answered = desk.read(f"/challenges/{challenge_id}/answer", {**answer, "reasons": "Checked."})
    assert "We sent our answer." in answered

    # Sam sees the new version, and the decision being checked.
    page.goto("/information")
    address = page.locator(".govuk-summary-list__row", has_text="Your address")
    expect(address).to_contain_text("9 Station Road")
    expect(address).to_contain_text("From: Anytown Council housing")
    expect(address).not_to_contain_text("Mill Lane")
    page.goto(f"/decisions/{decision_id}")
    expect(page.get_by_text("Being checked").first).to_be_visible()

    # A named reviewer, not the accountable officer, overturns the decision.
    review = {
        "kind": "overturned",
        "reviewer_name": REVIEWER[0],
        "reviewer_role": REVIEWER[1],
        "reasons": "The address it used was out of date.",
        "outcome": "We will find you a room near Station Road.",
    }
    assert "the decision is now version 2" in desk.read(f"/decisions/{decision_id}/review", review)

    # Sam sees the history: both versions, and who looked again.
    page.goto(f"/decisions/{decision_id}")
    expect(page.get_by_text("This decision was changed after a review.")).to_be_visible()
    page.get_by_role("link", name="See the newest version").click()
    expect(page.get_by_text("Version 1: The first decision")).to_be_visible()
    expect(page.get_by_text("Version 2: Turned around after a review")).to_be_visible()
    expect(page.get_by_text(f"{REVIEWER[0]}, {REVIEWER[1]}")).to_be_visible()
    expect(page.get_by_text("We will find you a room near Station Road.").first).to_be_visible()
    axe_check(page)
    screenshot(page, "story-decision-history")
    page.goto("/information/contact.address/history")
    expect(page.get_by_text("9 Station Road")).to_be_visible()
    expect(page.get_by_text("14 Mill Lane")).to_be_visible()
    page.goto("/challenges")
    expect(page.get_by_text("The right value is now version 2.")).to_be_visible()
    axe_check(page)
    screenshot(page, "story-my-challenges")

    # The council hears of the correction too.
    assert run_outbox(live_server).failed == 0
    assert "Sam's address was corrected: version 2 replaces version 1." in desk.read()


def test_a_notice_queued_while_the_webhook_is_down_arrives_once_when_it_is_back(
    live_server: LiveServer,
    council: Council,
    sam_account_id: str,
    signed_in_page: Callable[..., Page],
) -> None:
    page = signed_in_page(sam_account_id)
    share_with_the_council(page, council)
    desk = Desk(council, page)
    council.stop()

    # Sam stops sharing while the council's website is down: Sam does not wait for it.
    page.goto("/sharing")
    page.get_by_role("link", name="Stop sharing with Anytown Council housing").click()
    page.get_by_role("button", name="Yes, stop sharing").click()
    expect(page.get_by_text("You stopped sharing with Anytown Council housing.")).to_be_visible()

    assert run_outbox(live_server) == DeliveryReport(sent=0, failed=1)
    with session_scope(live_server.engine) as session:
        status = outbox_status(session, datetime.now(UTC))
    assert (status["pending"], status["failing"]) == (1, 1)
    assert status["departments"][0]["last_error"] == "The webhook refused the connection."

    council.start()
    assert run_outbox(live_server) == DeliveryReport(sent=0, failed=0)  # still waiting
    later = datetime.now(UTC) + backoff(1) + timedelta(seconds=1)
    assert run_outbox(live_server, now=later) == DeliveryReport(sent=1, failed=0)
    assert run_outbox(live_server, now=later + timedelta(hours=2)) == DeliveryReport(0, 0)
    (notice,) = council.inbox.notices()
    assert notice.event == "grant_revoked"

    # Sent again (at least once may mean twice), it is accepted and still kept once.
    assert post_set(council.url + "/tellonce/events", notice.token).status == 202
    assert [n.jti for n in council.inbox.notices()] == [notice.jti]
    assert "Sam stopped sharing with us: we cannot look again" in desk.read()
