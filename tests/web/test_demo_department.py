"""The demo department (scripts/demo_department.py) against Tell Once served on real HTTP.

The department's website runs in Flask's test client, as the person's browser sees it; its
OAuth calls go over real HTTP (urllib) to Tell Once on localhost, exactly as when it runs
beside `scripts/run`. Sam's browser on Tell Once is a second test client, signed in.
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

from scripts.demo_department import create_app as create_department_app
from scripts.demo_department_client import DepartmentSettings, TellOnceClient
from tests.oauth.harness import answer
from tests.web.citizen.conftest import sign_in
from vault.accounts import find_account
from vault.clock import FrozenClock
from vault.keys import LocalKeyFileProvider, init_key_file
from vault.services import Vault
from web.cli import main
from web.demo import DEMO_DEPARTMENT_REDIRECT_URI, seed_demo


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


@pytest.fixture
def loop(tellonce: Flask, db: Any, vault: Vault, tmp_path: Path) -> Loop:
    """The demo seed run (Sam, Jo and the department), both sites up, Sam signed in."""
    department_file = tmp_path / "demo-department.json"
    with db.tx() as session:
        seed_demo(session, vault, department_file)
    with db.tx() as session:
        account = find_account(session, vault, "sam@example.org")
        assert account is not None
    client = TellOnceClient(
        tellonce.config["BASE_URL"], DepartmentSettings.from_file(department_file)
    )
    sam = tellonce.test_client()
    sign_in(sam, db, vault, account.id)
    return Loop(create_department_app(client).test_client(), sam, db)


def text_of(response: Any) -> str:
    """The page as a person reads it (entities such as &#39; turned back into characters)."""
    return html.unescape(response.get_data(as_text=True))


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
