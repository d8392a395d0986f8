"""Canaries through every journey: a person's words never leak where they should not be.

A name, an address line, a story sentence, a challenge reason and a department's corrected
address line go through the citizen pages, a department's fetch, a decision, a challenge
and its answer, all over HTTP, with every log turned up to DEBUG (the root logger and
SQLAlchemy's engine). None of them may then appear in a log record, a URL the app made
(a Location header, a link, a form's action, a source), a ledger leaf, an error message, the
OpenAPI document, an outbox row or the Security Event Token made from it.

tests/vault/test_canary.py covers the vault's own doors (tables, database files, logs,
refusals); tests/web/citizen/test_pages.py the links of the citizen pages. This file covers
the journeys that cross the layers.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, unquote_plus

import pytest
from flask.testing import FlaskClient
from sqlmodel import select

from connectors.outbox_models import OutboxMessage
from connectors.set_tokens import make_set
from tests.oauth.conftest import register
from tests.oauth.harness import DepartmentSide, whole_flow
from tests.oauth.test_api_decisions import call, decision_body, department_token
from tests.web.citizen.conftest import csrf_of, sign_in
from vault import ledger
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.clock import FrozenClock
from vault.services import Vault

NAME = "Quillon Brackwhistle"
ADDRESS_LINE = "17 Zephyrine Walk"
STORY = "I slept in the Morrowdale bus shelter for nine nights."
REASON = "The Vellicant flat on Orrin Street was never mine."
CORRECTED_LINE = "3 Thistlecombe Court"
# One word of each canary that appears nowhere else: found in any case or encoding, it leaks.
MARKERS = ("Brackwhistle", "Zephyrine", "Morrowdale", "Vellicant", "Thistlecombe")
URL_IN_PAGE = re.compile(r'(?:href|action|src|formaction)="([^"]*)"')
ERROR_TEXT = re.compile(
    r'class="govuk-error-(?:summary__list|message)"[^>]*>(.*?)</(?:ul|p)>', re.DOTALL
)
WEBHOOK = "https://housing.anytown.example/events"


def leaks(text: str) -> list[str]:
    """The canary markers found in ``text``, read as it is and percent-decoded."""
    readings = {text, unquote(text), unquote_plus(text)}
    return [m for m in MARKERS if any(m.lower() in r.lower() for r in readings)]


def assert_clean(text: str, where: str) -> None:
    """No canary marker may appear in ``text``."""
    found = leaks(text)
    assert not found, f"{', '.join(found)} appears in {where}: {text[:300]!r}"


@dataclass
class Seen:
    """Every answer the app gave during a journey, to read its URLs and error messages."""

    responses: list[tuple[str, Any]] = field(default_factory=list)

    def urls(self) -> Iterator[tuple[str, str]]:
        """Each URL the app produced: Location headers, and links, actions, sources in pages."""
        for asked, response in self.responses:
            if "Location" in response.headers:
                yield f"the Location of {asked}", response.headers["Location"]
            if response.mimetype == "text/html":
                for url in URL_IN_PAGE.findall(response.get_data(as_text=True)):
                    yield f"a link on {asked}", url

    def error_messages(self) -> Iterator[tuple[str, str]]:
        """Each error message: JSON errors' messages, and the errors shown on pages."""
        for asked, response in self.responses:
            if response.is_json and response.status_code >= 400:
                body = response.get_json(silent=True) or {}
                for name in ("message", "error_description", "error"):
                    if isinstance(body, dict) and name in body:
                        yield f"the {name} of {asked}", str(body[name])
            elif response.mimetype == "text/html":
                for text in ERROR_TEXT.findall(response.get_data(as_text=True)):
                    yield f"the errors shown on {asked}", text


def recording_client(seen: Seen) -> type[FlaskClient]:
    """A test client class that keeps every response it gets."""

    class Recording(FlaskClient):
        def open(self, *args: Any, **kwargs: Any) -> Any:
            response = super().open(*args, **kwargs)
            path = args[0] if args and isinstance(args[0], str) else kwargs.get("path", "?")
            method = kwargs.get("method", "GET")
            seen.responses.append((f"{method} {path}", response))
            return response

    return Recording


@pytest.fixture
def clock() -> FrozenClock:
    """The real time, frozen: client assertions are checked against the real clock."""
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def loud_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture every log record at DEBUG: the root logger and SQLAlchemy's engine."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    return caplog


@dataclass
class Journey:
    """What the journeys left behind."""

    seen: Seen
    department: DepartmentSide
    challenge_id: str


def change(browser: Any, key: str, **answers: str) -> None:
    """Answer a question about the person's information, then confirm it on the check page."""
    page = browser.get(f"/information/{key}/change").get_data(as_text=True)
    check = browser.post(
        f"/information/{key}/change", data={"csrf_token": csrf_of(page), **answers}
    ).get_data(as_text=True)
    found = re.search(r'name="answer" value="([^"]*)"', check)
    assert found, f"no check page for {key}"
    answer = found.group(1).replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&")
    saved = browser.post(
        f"/information/{key}/check", data={"csrf_token": csrf_of(check), "answer": answer}
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)


def citizen_pages(browser: Any) -> None:
    """The person tells us their name, address and story through the pages."""
    change(browser, "identity.name", value=NAME)
    change(browser, "contact.address", line_1=ADDRESS_LINE, town="Leeds", postcode="LS1 1AA")
    page = browser.get("/story/housing/write").get_data(as_text=True)
    written = {"csrf_token": csrf_of(page), "text": STORY, "sensitivity": "normal"}
    saved = browser.post("/story/housing/check", data=written)
    assert saved.status_code == 302, saved.get_data(as_text=True)


def refusals(browser: Any, department: DepartmentSide, token: str) -> None:
    """Wrong answers that carry canaries: the messages that refuse them must not repeat them."""
    page = browser.get("/information/contact.address/change").get_data(as_text=True)
    browser.post(
        "/information/contact.address/change",
        data={"csrf_token": csrf_of(page), "line_1": ADDRESS_LINE, "postcode": "NOPE"},
    )
    page = browser.get("/information/identity.date_of_birth/change").get_data(as_text=True)
    browser.post(
        "/information/identity.date_of_birth/change",
        data={"csrf_token": csrf_of(page), "day": NAME, "month": STORY, "year": "x"},
    )
    # (Only the person's own fields: what a department types as its officer's name or its
    # case reference is its own, kept as given.)
    too_long = {"title": NAME * 20, "reasons": STORY * 200, "outcome": REASON * 200}
    for name, value in too_long.items():
        body = decision_body({"data_points": []}, **{name: value})
        call(department, "POST", "/api/v1/decisions", token, json=body)


def challenge(browser: Any, decision_id: str, version: int) -> None:
    """The person says the address the decision used is wrong, in their own words."""
    path = f"/decisions/{decision_id}/wrong?key=contact.address&version={version}"
    page = browser.get(path).get_data(as_text=True)
    long_reason = {"csrf_token": csrf_of(page), "reason": REASON * 100}
    browser.post(path, data=long_reason)  # too long: refused, and must not be repeated
    page = browser.get(path).get_data(as_text=True)
    asked = browser.post(path, data={"csrf_token": csrf_of(page), "reason": REASON})
    assert asked.status_code == 302, asked.get_data(as_text=True)
    check = asked.headers["Location"]
    page = browser.get(check).get_data(as_text=True)
    sent = browser.post(check, data={"csrf_token": csrf_of(page)})
    assert sent.status_code == 302, sent.get_data(as_text=True)


def walk_pages(app: Any, browser: Any, values: dict[str, str]) -> None:
    """Open every page of the app the person can reach with these values."""
    skip = ("/api/", "/assets/", "/static/", "/govuk/", "/language/", "/oauth/", "/sign-out")
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.rule.startswith(skip):
            continue
        if all(name in values for name in rule.arguments):
            path = rule.rule
            for name in rule.arguments:
                path = re.sub(rf"<(?:[a-z]+:)?{name}>", values[name], path)
            browser.get(path)


@pytest.fixture
def journey(app: Any, db: Any, vault: Vault, loud_logs: pytest.LogCaptureFixture) -> Journey:
    """Every journey, over HTTP, with every answer recorded and every log captured."""
    seen = Seen()
    app.test_client_class = recording_client(seen)
    with db.tx() as session:
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, "quillon@example.org", citizen_id=citizen.id)
    browser = app.test_client()
    sign_in(browser, db, vault, account.id)
    citizen_pages(browser)
    department = register(app, db, vault, webhook_url=WEBHOOK)
    tokens = whole_flow(browser, department)
    fetched = department.fetch(tokens["access_token"])
    assert fetched.status_code == 200, fetched.get_json()
    served = fetched.get_json()
    assert NAME in json.dumps(served) and STORY in json.dumps(served)  # they were shared
    decided = call(
        department, "POST", "/api/v1/decisions", tokens["access_token"], json=decision_body(served)
    )
    assert decided.status_code == 201, decided.get_json()
    address = next(p for p in served["data_points"] if p["key"] == "contact.address")
    challenge(browser, decided.get_json()["id"], address["version"])
    listed = call(department, "GET", "/api/v1/challenges", department_token(department))
    (opened,) = [c for c in listed.get_json()["challenges"] if c["key"] == "contact.address"]
    assert opened["reason"] == REASON  # the department reads the person's own words
    corrected = {"lines": [CORRECTED_LINE], "town": "Leeds", "postcode": "LS1 1AA"}
    answered = call(
        department,
        "POST",
        f"/api/v1/challenges/{opened['id']}/answer",
        department_token(department),
        json={"outcome": "corrected", "reasons": "Checked the tenancy.", "value": corrected},
    )
    assert answered.status_code == 200, answered.get_json()
    refusals(browser, department, tokens["access_token"])
    values = {
        "decision_id": decided.get_json()["id"],
        "challenge_id": opened["id"],
        "grant_id": served["grant_id"],
        "key": "contact.address",
        "topic": "housing",
    }
    walk_pages(app, browser, values)
    return Journey(seen, department, opened["id"])


def test_canaries_reach_no_log_url_leaf_message_document_row_or_token(
    app: Any, db: Any, vault: Vault, journey: Journey, loud_logs: pytest.LogCaptureFixture
) -> None:
    records = loud_logs.get_records("setup") + loud_logs.records
    logged = "\n".join(record.getMessage() for record in records)
    # The logs were really on: the engine logged the statements that stored the canaries.
    assert "INSERT INTO challenge" in logged and "INSERT INTO story_section" in logged
    for record in records:
        assert_clean(record.getMessage(), f"a log record of {record.name}")
        assert_clean(repr(record.args), f"the arguments of a log record of {record.name}")
        if record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
            assert_clean(trace, f"the traceback logged by {record.name}")

    urls = list(journey.seen.urls())
    assert any("/decisions/" in url for _, url in urls)  # the pages were really read
    for where, url in urls:
        assert_clean(url, where)

    with db.tx() as session:
        leaves = ledger.entries(session, 0, ledger.head_size(session))
        rows = list(session.exec(select(OutboxMessage)).all())
    assert leaves, "the journeys left no ledger entries"
    for index, leaf in leaves:
        assert_clean(leaf.decode("utf-8"), f"ledger leaf {index}")

    messages = list(journey.seen.error_messages())
    assert len(messages) >= 4, messages  # the refusals were really made and read
    for where, message in messages:
        assert_clean(message, where)

    document = app.test_client().get("/api/v1/openapi.json").get_data(as_text=True)
    assert_clean(document, "the OpenAPI document")

    events = {row.event for row in rows}
    assert {"challenge_opened", "data_point_contested"} <= events, events
    for row in rows:
        assert_clean(json.dumps(row.model_dump(), default=str), f"outbox row {row.event}")
        token = make_set(vault, app.config["BASE_URL"], row, now=vault.clock())
        payload = token.split(".")[1]
        claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        assert_clean(claims, f"the SET for {row.event}")
