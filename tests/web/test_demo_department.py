"""The demo department (scripts/demo_department.py) against Tell Once served on real HTTP.

The department's website runs in Flask's test client, as the person's browser sees it; its
OAuth and API calls go over real HTTP (urllib) to Tell Once on localhost, exactly as when it
runs beside `scripts/run`. Sam's browser on Tell Once is a second test client, signed in.
Tell Once's outbox worker delivers its notices into the department's test client (the
webhook over real HTTP is in tests/e2e/test_the_whole_story.py).
"""

from __future__ import annotations

import html
import json
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from joserfc.jwk import JWKRegistry
from sqlalchemy.engine import Engine
from werkzeug.serving import BaseWSGIServer, make_server

from connectors.outbox import WebhookAnswer, deliver
from consent.actors import Actor
from consent.actors import citizen as citizen_actor
from scripts.demo_department import create_app as create_department_app
from scripts.demo_department_casework import CaseworkClient
from scripts.demo_department_client import DepartmentSettings
from scripts.demo_department_events import SET_MEDIA_TYPE, Inbox
from tests.oauth.harness import answer
from tests.web.citizen.conftest import sign_in
from vault.accounts import find_account
from vault.clock import FrozenClock
from vault.keys import LocalKeyFileProvider, init_key_file
from vault.services import Vault
from web.cli import main
from web.demo import DEMO_DEPARTMENT_REDIRECT_URI, DEMO_DEPARTMENT_WEBHOOK_URL, seed_demo


@pytest.fixture
def clock() -> FrozenClock:
    # Real time: the JOSE library checks client assertions against the real clock.
    return FrozenClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def tellonce(
    engine: Engine, key_provider: LocalKeyFileProvider, clock: FrozenClock, tmp_path: Path
) -> Iterator[Flask]:
    """Tell Once serving real HTTP on a free localhost port, which is also its BASE_URL."""
    from web import create_app

    holder: dict[str, Any] = {}
    server: BaseWSGIServer = make_server(
        "localhost", 0, lambda env, start: holder["app"](env, start), threaded=True
    )
    app = create_app(
        {
            "TESTING": True,
            "ENGINE": engine,
            "KEY_PROVIDER": key_provider,
            "CLOCK": clock,
            "LEDGER_ORIGIN": "test.tellonce/ledger",
            "MAIL_DIR": str(tmp_path / "mail"),
            "SECRET_KEY": "test-secret-key",
            "BASE_URL": f"http://localhost:{server.server_port}",
        }
    )
    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield app
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Loop:
    """The department's website, Sam's signed-in browser on Tell Once, and the database."""

    department: Any
    sam: Any
    db: Any
    inbox: Inbox
    issuer: str
    client_id: str
    sam_actor: Actor
    citizen_id: str


@pytest.fixture
def loop(tellonce: Flask, db: Any, vault: Vault, tmp_path: Path) -> Loop:
    """The demo seed run (Sam, Jo and the department), both sites up, Sam signed in."""
    department_file = tmp_path / "demo-department.json"
    with db.tx() as session:
        seed_demo(session, vault, department_file)
    with db.tx() as session:
        account = find_account(session, vault, "sam@example.org")
        assert account is not None and account.citizen_id is not None
    issuer = tellonce.config["BASE_URL"]
    settings = DepartmentSettings.from_file(department_file)
    client = CaseworkClient(issuer, settings)
    inbox = Inbox(issuer, settings.client_id, client.fetch_jwks)
    sam = tellonce.test_client()
    sign_in(sam, db, vault, account.id)
    department = create_department_app(client, inbox).test_client()
    actor = citizen_actor(account.id, account.citizen_id)
    return Loop(department, sam, db, inbox, issuer, settings.client_id, actor, account.citizen_id)


def text_of(response: Any) -> str:
    """The page as a person reads it: entities such as &#39; turned back into characters,
    and line breaks and runs of spaces read as one space."""
    return " ".join(html.unescape(response.get_data(as_text=True)).split())


def _path_and_query(location: str) -> tuple[str, str]:
    parts = urlsplit(location)
    return parts.path, parts.query


def ask_and_answer(loop: Loop, button: str, **fields: Any) -> str:
    """Press the department's button, answer on Tell Once; return where Sam is sent back to."""
    asked = loop.department.post("/ask")
    assert asked.status_code == 303, text_of(asked)
    path, query = _path_and_query(asked.headers["Location"])
    assert path == "/oauth/authorize"
    opened = loop.sam.get(path, query_string=query)
    assert opened.status_code == 303, text_of(opened)
    page = loop.sam.get(opened.headers["Location"])
    assert page.status_code == 200, text_of(page)
    assert "Anytown Council housing" in text_of(page)
    back = answer(loop.sam, page, button, **fields)
    assert back.status_code == 303
    location: str = back.headers["Location"]
    assert location.startswith(DEMO_DEPARTMENT_REDIRECT_URI + "?")
    return location


def come_back(loop: Loop, location: str) -> Any:
    """Sam's browser follows Tell Once's redirect to the department's /callback."""
    path, query = _path_and_query(location)
    return loop.department.get(path, query_string=query, follow_redirects=True)


def test_the_start_page_says_what_it_will_ask_for(loop: Loop) -> None:
    page = text_of(loop.department.get("/"))
    for words in (
        "Ask Tell Once for Sam's information",
        "HOU-2291",
        "Sam's address",
        "Sam can choose not to share this",
        "at most 10 times",
        "90 days",
    ):
        assert words in page, words


def test_sam_shares_and_the_department_sees_name_address_and_receipt(loop: Loop) -> None:
    shown = come_back(loop, ask_and_answer(loop, "share", keep=["money.income_monthly"]))
    assert shown.status_code == 200
    assert shown.request.path == "/case"
    page = text_of(shown)
    for words in (
        "Sam Taylor",
        "Flat 2, 14 Mill Lane, Anytown, AN1 2TT",
        "£610.00",
        "I lost my flat in March",
        "We may look 9 more times",
        "public ledger as entry",
    ):
        assert words in page, words
    assert "Sam says this is wrong" not in page  # nothing is contested


def test_coming_back_to_the_callback_again_keeps_the_data(loop: Loop) -> None:
    location = ask_and_answer(loop, "share")
    come_back(loop, location)
    again = come_back(loop, location)  # the back button: the code must not be sent twice
    assert again.request.path == "/case"
    refetched = loop.department.post("/fetch-again", follow_redirects=True)
    assert "We may look 8 more times" in text_of(refetched)


def test_what_sam_leaves_out_is_shown_as_not_shared(loop: Loop) -> None:
    page = text_of(come_back(loop, ask_and_answer(loop, "share", keep=[])))
    assert "Sam chose not to share: Sam's income each month." in page
    assert "£610.00" not in page
    assert "Sam Taylor" in page


def test_fetch_again_counts_down(loop: Loop) -> None:
    come_back(loop, ask_and_answer(loop, "share"))
    again = loop.department.post("/fetch-again", follow_redirects=True)
    assert again.request.path == "/case"
    page = text_of(again)
    assert "We may look 8 more times" in page
    assert "Sam Taylor" in page


def test_fetch_again_after_the_access_token_ran_out_uses_the_refresh_token(
    loop: Loop, clock: FrozenClock
) -> None:
    come_back(loop, ask_and_answer(loop, "share"))
    loop.db.execute(
        "UPDATE oauth_token SET expires_at = :past", past=clock() - timedelta(seconds=1)
    )
    again = loop.department.post("/fetch-again", follow_redirects=True)
    assert again.request.path == "/case", text_of(again)
    assert "We may look 8 more times" in text_of(again)


def test_dont_share_shows_that_sam_said_no(loop: Loop) -> None:
    shown = come_back(loop, ask_and_answer(loop, "decline"))
    assert shown.status_code == 200
    page = text_of(shown)
    assert "Sam said no" in page
    assert "Sam Taylor" not in page


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("state", "someone-elses-state", "This answer is not for a request we started here."),
        ("iss", "http://localhost:1", "This answer did not come from the Tell Once we asked."),
        ("iss", None, "This answer did not come from the Tell Once we asked."),
    ],
    ids=["other state", "other issuer", "no issuer"],
)
def test_a_callback_that_does_not_match_is_refused(
    loop: Loop, name: str, value: str | None, message: str
) -> None:
    location = ask_and_answer(loop, "share")
    path, query = _path_and_query(location)
    params = dict(parse_qsl(query))
    if value is None:
        del params[name]
    else:
        params[name] = value
    shown = loop.department.get(path, query_string=params)
    assert shown.status_code == 400
    page = text_of(shown)
    assert message in page
    assert "Sam Taylor" not in page


def test_a_callback_in_another_browser_is_refused(loop: Loop) -> None:
    path, query = _path_and_query(ask_and_answer(loop, "share"))
    another_browser = loop.department.application.test_client()  # without the visit's cookie
    shown = another_browser.get(path, query_string=query)
    assert shown.status_code == 400
    assert "We did not start this request in this browser" in text_of(shown)


# --- Decisions, challenges and reviews from the case page ----------------------------------

FETCHED = ["identity.name@1", "contact.address@1", "money.income_monthly@1"]
NEW_ADDRESS = "Room 4, 9 Station Road, Anytown, AN1 5RR"


def shared(loop: Loop) -> str:
    """Sam shares everything; return the department's case page."""
    location = ask_and_answer(loop, "share", keep=["money.income_monthly"])
    return text_of(come_back(loop, location))


def decide(loop: Loop, **changes: Any) -> str:
    """The caseworker sends the "Record a decision" form as the page fills it in."""
    form: dict[str, Any] = {
        "title": "Emergency housing",
        "outcome": "You can stay at Elm House from tonight.",
        "reasons": "You have nowhere safe to stay.",
        "automated": "yes",
        "algorithm_name": "Priority need screener",
        "algorithm_version": "2.3.1",
        "officer_name": "Priya Shah",
        "officer_role": "Head of Housing Options",
        "used": FETCHED,
        **changes,
    }
    return text_of(loop.department.post("/decisions", data=form, follow_redirects=True))


def decision_row(loop: Loop) -> dict[str, Any]:
    """The newest version of the one decision Tell Once holds, as the department sees it."""
    with loop.db.engine.connect() as connection:
        row = connection.exec_driver_sql(
            "SELECT id, version, kind, data_points_used FROM decision ORDER BY version DESC"
        ).first()
    assert row is not None
    used = row[3] if not isinstance(row[3], str) else json.loads(row[3])
    return {"id": row[0], "version": row[1], "kind": row[2], "used": used}


def sam_challenges_the_address(loop: Loop, vault: Vault, decision_id: str) -> str:
    """Sam says the address a decision used is wrong (as the citizen pages do it)."""
    from consent.challenges import open_challenge

    with loop.db.tx() as session:
        return open_challenge(
            session,
            vault,
            loop.sam_actor,
            decision_id=decision_id,
            reason="I moved out of Mill Lane in May.",
            data_point=("contact.address", 1),
        ).id


def test_the_decision_form_offers_what_was_just_fetched_and_the_accountable_officer(
    loop: Loop,
) -> None:
    shared(loop)
    page = loop.department.get("/case")
    source = page.get_data(as_text=True)
    for used in FETCHED:
        assert f'value="{used}" checked' in source, used
    assert 'value="Priya Shah"' in source
    assert 'value="Head of Housing Options"' in source
    assert "Sam has not said that anything we used is wrong." in text_of(page)


def test_a_decision_is_recorded_with_exactly_the_versions_fetched(loop: Loop) -> None:
    shared(loop)
    page = decide(loop)
    recorded = decision_row(loop)
    assert f"We recorded the decision (Tell Once's id {recorded['id']})." in page
    assert recorded["version"] == 1 and recorded["kind"] == "original"
    assert recorded["used"] == [
        {"key": "identity.name", "version": 1},
        {"key": "contact.address", "version": 1},
        {"key": "money.income_monthly", "version": 1},
    ]
    assert "Emergency housing (version 1: original)" in page
    assert "Used: Sam's name version 1, Sam's address version 1" in page


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"algorithm_name": " "}, "Tell Once refused our decision: algorithm.name:"),
        ({"officer_name": ""}, "Tell Once refused our decision: accountable_officer.name:"),
        ({"used": ["contact.address@7"]}, "contact.address version 7"),
    ],
    ids=["automated without a system name", "no accountable officer", "a version never served"],
)
def test_a_decision_tell_once_refuses_is_not_kept_and_its_reason_is_shown(
    loop: Loop, changes: dict[str, Any], reason: str
) -> None:
    shared(loop)
    page = decide(loop, **changes)
    assert "Tell Once refused our decision:" in page
    assert reason in page
    assert "Decisions we recorded" not in page
    assert loop.db.scalar("SELECT count(*) FROM decision") == 0


def test_a_challenge_is_answered_corrected_and_the_decision_reviewed(
    loop: Loop, vault: Vault
) -> None:
    shared(loop)
    decide(loop)
    decision_id = decision_row(loop)["id"]
    challenge_id = sam_challenges_the_address(loop, vault, decision_id)

    page = text_of(loop.department.get("/case"))
    assert "Challenges from people" in page
    assert "Sam's address (version 1)" in page
    assert "Sam says: I moved out of Mill Lane in May." in page

    answered = loop.department.post(
        f"/challenges/{challenge_id}/answer",
        data={
            "key": "contact.address",
            "outcome": "corrected",
            "value": NEW_ADDRESS,
            "reasons": "Checked with the landlord.",
        },
        follow_redirects=True,
    )
    page = text_of(answered)
    assert "We sent our answer. Tell Once shows it to Sam." in page
    assert "corrected (now version 2)" in page
    from vault.records import current_data_points

    with loop.db.tx() as session:
        (address,) = current_data_points(session, vault, loop.citizen_id, ["contact.address"])
    assert address.version == 2
    assert address.source == f"department:{loop.client_id}"
    assert address.value == {
        "lines": ["Room 4", "9 Station Road"],
        "town": "Anytown",
        "postcode": "AN1 5RR",
    }

    reviewed = loop.department.post(
        f"/decisions/{decision_id}/review",
        data={
            "kind": "overturned",
            "reviewer_name": "Tom Okafor",
            "reviewer_role": "Senior Housing Officer",
            "reasons": "The address used was out of date.",
            "outcome": "We will find you a room near Station Road.",
        },
        follow_redirects=True,
    )
    page = text_of(reviewed)
    assert "We recorded the review: the decision is now version 2." in page
    assert "Emergency housing (version 2: overturned)" in page
    assert "We will find you a room near Station Road." in page
    assert decision_row(loop)["kind"] == "overturned"


def test_a_review_by_the_accountable_officer_is_refused(loop: Loop) -> None:
    shared(loop)
    decide(loop)
    decision_id = decision_row(loop)["id"]
    reviewed = loop.department.post(
        f"/decisions/{decision_id}/review",
        data={
            "kind": "upheld",
            "reviewer_name": "Priya Shah",
            "reviewer_role": "Head of Housing Options",
            "reasons": "Checked again.",
        },
        follow_redirects=True,
    )
    page = text_of(reviewed)
    assert "Tell Once refused our review:" in page
    assert "someone other than the accountable officer" in page
    assert decision_row(loop)["version"] == 1


def test_a_corrected_answer_with_an_address_tell_once_cannot_read_is_refused(
    loop: Loop, vault: Vault
) -> None:
    shared(loop)
    decide(loop)
    challenge_id = sam_challenges_the_address(loop, vault, decision_row(loop)["id"])
    answered = loop.department.post(
        f"/challenges/{challenge_id}/answer",
        data={"key": "contact.address", "outcome": "corrected", "value": "Station Road"},
        follow_redirects=True,
    )
    page = text_of(answered)
    assert "Tell Once refused our answer:" in page
    assert loop.db.scalar("SELECT status FROM challenge") == "open"


# --- Notices from Tell Once at /tellonce/events ---------------------------------------------


def into(loop: Loop) -> Any:
    """The outbox's POST, made into the department's test client instead of over HTTP."""

    def post(url: str, token: str) -> WebhookAnswer:
        answered = loop.department.post(urlsplit(url).path, data=token, content_type=SET_MEDIA_TYPE)
        return WebhookAnswer(answered.status_code)

    return post


def test_notices_from_the_outbox_are_verified_and_shown_on_the_case_page(
    loop: Loop, engine: Engine, vault: Vault
) -> None:
    shared(loop)
    decide(loop)
    sam_challenges_the_address(loop, vault, decision_row(loop)["id"])
    report = deliver(engine, vault, loop.issuer, now=datetime.now(UTC), post=into(loop))
    assert (report.sent, report.failed) == (3, 0)
    assert sorted(notice.event for notice in loop.inbox.notices()) == [
        "challenge_opened",
        "data_point_contested",
        "decision_review_requested",
    ]
    page = text_of(loop.department.get("/case"))
    assert "Messages from Tell Once" in page
    assert "Sam says Sam's address (version 1) is wrong." in page
    assert "Sam challenged Sam's address (version 1). We must answer within a month." in page
    assert "review our decision, because Sam says information it used is wrong." in page


def test_stopping_sharing_reaches_the_department_as_a_message(
    loop: Loop, engine: Engine, vault: Vault
) -> None:
    from consent.grants import grants_for_citizen, revoke_grant

    shared(loop)
    with loop.db.tx() as session:
        (grant,) = grants_for_citizen(session, loop.citizen_id)
        revoke_grant(session, vault, loop.sam_actor, grant.id)
    assert deliver(engine, vault, loop.issuer, now=datetime.now(UTC), post=into(loop)).sent == 1
    page = text_of(loop.department.get("/case"))
    assert "Sam stopped sharing with us: we cannot look again" in page


def _message(loop: Loop, vault: Vault, **changes: Any) -> Any:
    from connectors.outbox_models import OutboxMessage

    now = vault.clock()
    fields: dict[str, Any] = {
        "department_id": loop.client_id,
        "event": "grant_revoked",
        "citizen_id": loop.citizen_id,
        "details": {"grant_id": "g-1"},
        "created_at": now,
        "next_attempt_at": now,
        **changes,
    }
    return OutboxMessage(**fields)


def test_the_same_notice_twice_is_accepted_and_kept_once(loop: Loop, vault: Vault) -> None:
    from connectors.set_tokens import make_set

    token = make_set(vault, loop.issuer, _message(loop, vault), now=vault.clock())
    for _ in range(2):
        answered = loop.department.post("/tellonce/events", data=token, content_type=SET_MEDIA_TYPE)
        assert answered.status_code == 202
    assert len(loop.inbox.notices()) == 1


def _other_key_token(loop: Loop, vault: Vault) -> str:
    from joserfc import jws
    from joserfc.jwk import ECKey

    from connectors.set_tokens import set_claims

    claims = set_claims(vault, loop.issuer, _message(loop, vault), now=vault.clock())
    key = ECKey.generate_key("P-256")
    header = {"alg": "ES256", "kid": key.thumbprint(), "typ": "secevent+jwt"}
    return jws.serialize_compact(header, json.dumps(claims), key)


def _not_a_set(loop: Loop, vault: Vault) -> str:
    from joserfc import jws

    from connectors.set_tokens import set_claims
    from consent.receipts import server_signing_jwk

    claims = set_claims(vault, loop.issuer, _message(loop, vault), now=vault.clock())
    key = server_signing_jwk(vault)
    return jws.serialize_compact(
        {"alg": "ES256", "kid": key.kid, "typ": "JWT"}, json.dumps(claims), key
    )


def _made_by_tell_once(issuer: str | None = None, **changes: Any) -> Any:
    def make(loop: Loop, vault: Vault) -> str:
        from connectors.set_tokens import make_set

        message = _message(loop, vault, **changes)
        return make_set(vault, issuer or loop.issuer, message, now=vault.clock())

    return make


@pytest.mark.parametrize(
    ("make", "err"),
    [
        (lambda loop, vault: "not.a.token", "invalid_key"),
        (_other_key_token, "invalid_key"),
        (_not_a_set, "invalid_request"),
        (_made_by_tell_once(issuer="http://localhost:1"), "invalid_issuer"),
        (_made_by_tell_once(department_id="someone-else"), "invalid_audience"),
    ],
    ids=["not a token", "signed by another key", "not a SET", "other issuer", "other audience"],
)
def test_a_notice_that_does_not_verify_is_refused_and_not_kept(
    loop: Loop, vault: Vault, make: Any, err: str
) -> None:
    answered = loop.department.post(
        "/tellonce/events", data=make(loop, vault), content_type=SET_MEDIA_TYPE
    )
    assert answered.status_code == 400
    assert answered.get_json()["err"] == err
    assert answered.get_json()["description"]
    assert loop.inbox.notices() == []


def test_a_notice_not_sent_as_a_security_event_token_is_refused(loop: Loop, vault: Vault) -> None:
    from connectors.set_tokens import make_set

    token = make_set(vault, loop.issuer, _message(loop, vault), now=vault.clock())
    answered = loop.department.post("/tellonce/events", data=token, content_type="text/plain")
    assert answered.status_code == 400
    assert answered.get_json()["err"] == "invalid_request"
    assert loop.inbox.notices() == []


def test_without_tell_onces_keys_a_notice_is_answered_503_so_it_comes_again(
    loop: Loop, vault: Vault, tmp_path: Path
) -> None:
    from connectors.set_tokens import make_set

    settings = DepartmentSettings.from_file(tmp_path / "demo-department.json")
    unreachable = CaseworkClient("http://127.0.0.1:9", settings)
    inbox = Inbox(loop.issuer, settings.client_id, unreachable.fetch_jwks)
    department = create_department_app(unreachable, inbox).test_client()
    token = make_set(vault, loop.issuer, _message(loop, vault), now=vault.clock())
    answered = department.post("/tellonce/events", data=token, content_type=SET_MEDIA_TYPE)
    assert answered.status_code == 503
    assert inbox.notices() == []


# --- The seed -------------------------------------------------------------------------------


def run(env: dict[str, str], *args: str) -> Result:
    result = CliRunner().invoke(main, list(args), env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def env(tmp_path: Path, engine: Engine) -> dict[str, str]:
    """Settings for the fixture database and a key file in a temporary folder, tables made."""
    folder = tmp_path / "instance"
    settings = {
        "DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "TELLONCE_KEY_FILE": str(folder / "keys.json"),
        "TELLONCE_INSTANCE": str(folder),
        "TELLONCE_MAIL_DIR": str(folder / "mail"),
        "TELLONCE_SQLITE_SYNCHRONOUS": "OFF",
    }
    init_key_file(settings["TELLONCE_KEY_FILE"])
    assert run(settings, "db", "upgrade").exit_code == 0
    return settings


def _departments(db: Any) -> list[tuple[str, bool]]:
    with db.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT id, disabled_at IS NULL FROM department ORDER BY id"
        ).all()
    return [(row[0], bool(row[1])) for row in rows]


def _registered_thumbprints(db: Any, client_id: str) -> set[str]:
    metadata = db.scalar("SELECT client_metadata FROM department WHERE id = :id", id=client_id)
    if isinstance(metadata, str):
        metadata = json.loads(metadata)
    return {JWKRegistry.import_key(jwk).thumbprint() for jwk in metadata["jwks"]["keys"]}


def _key_file_of(env: dict[str, str]) -> Path:
    return Path(env["TELLONCE_KEY_FILE"]).parent / "demo-department.json"


def test_seeding_twice_registers_the_department_once_with_a_private_key_file(
    env: dict[str, str], db: Any
) -> None:
    assert run(env, "demo", "seed").output == "Added the demo data.\n"
    assert run(env, "demo", "seed").output == "The demo data is already there.\n"
    assert _departments(db) == [("anytown-housing", True)]
    path = _key_file_of(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = DepartmentSettings.from_file(path)
    assert settings.client_id == "anytown-housing"
    assert settings.redirect_uri == "http://localhost:5001/callback"
    assert settings.signing_key.thumbprint() in _registered_thumbprints(db, "anytown-housing")
    assert "d" in json.loads(path.read_text())["signing_key"]  # the private half, for signing
    webhook = db.scalar("SELECT webhook_url FROM department WHERE id = 'anytown-housing'")
    assert webhook == DEMO_DEPARTMENT_WEBHOOK_URL == "http://localhost:5001/tellonce/events"


def test_a_lost_key_file_means_a_new_registration_and_the_ledger_still_verifies(
    env: dict[str, str], db: Any
) -> None:
    run(env, "demo", "seed")
    _key_file_of(env).unlink()
    seeded = run(env, "demo", "seed")
    assert seeded.exit_code == 0
    assert seeded.output.splitlines() == [
        f"The demo department's key file {_key_file_of(env)} was missing or did not match, so "
        "it was registered again as anytown-housing-2 with a new key (anytown-housing is now "
        "disabled).",
        "Added the demo data.",
    ]
    assert _departments(db) == [("anytown-housing", False), ("anytown-housing-2", True)]
    settings = DepartmentSettings.from_file(_key_file_of(env))
    assert settings.client_id == "anytown-housing-2"
    assert settings.signing_key.thumbprint() in _registered_thumbprints(db, "anytown-housing-2")
    assert stat.S_IMODE(_key_file_of(env).stat().st_mode) == 0o600
    assert run(env, "ledger", "verify").exit_code == 0
