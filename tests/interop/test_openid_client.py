"""A department whose software nobody here wrote: node's openid-client against a live server.

openid-client (panva) is an OpenID-certified FAPI 2 client. ``fapi_client.mjs`` uses it as a
department would: discovery from our RFC 8414 metadata, PAR with PKCE, ``private_key_jwt``,
DPoP and ``authorization_details``, then the token, the data API, a refresh, introspection
and a revocation. The test plays Sam's browser in between (the consent page, over real
HTTP), then checks what the department got against what Sam agreed to, and what Sam's record
and the ledger say.

One run of the node program is one department's whole journey, so it is one test: each
later step only means something after the earlier ones worked.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from consent.access import access_events_for_citizen
from tests.interop.conftest import SAMS_INCOME, Browser, Citizen, LiveApp, RegisteredDepartment
from tests.oauth.harness import HOUSING_DETAILS, REDIRECT_URI
from tests.web.citizen.conftest import CANARY, csrf_of
from vault.db import session_scope
from vault.verify import verify_ledger

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = Path(__file__).with_name("fapi_client.mjs")
OPENID_CLIENT = ROOT / "node_modules" / "openid-client" / "package.json"
NODE_TIMEOUT = 20  # seconds for each wait on the node program
CASE = str(HOUSING_DETAILS["case_reference"])
OFFICER = "A. Officer"
# Sam unticks the optional income on the consent page, so only these are agreed.
AGREED = ["identity.name", "contact.address"]


class NodeClient:
    """The node program as a child process: one JSON line out, one line in, the rest at exit."""

    def __init__(self, settings: Path) -> None:
        node = shutil.which("node")
        assert node is not None
        self.process = subprocess.Popen(
            [node, str(PROGRAM), str(settings)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.pending = b""  # bytes read past the first line

    def first_line(self) -> dict[str, Any]:
        """Wait for the program's first JSON line (read from the pipe without buffering)."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + NODE_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self.pending:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise AssertionError("openid-client printed nothing in time")
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.process.wait(timeout=NODE_TIMEOUT)
                    raise AssertionError(f"openid-client stopped early: {self.stderr()}")
                self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return dict(json.loads(line))

    def finish(self, answer: str) -> tuple[int, dict[str, dict[str, Any]], str]:
        """Send one line, wait for the exit; return the exit code, the steps, and stderr."""
        assert self.process.stdin is not None
        self.process.stdin.write(answer.encode("utf-8") + b"\n")
        self.process.stdin.flush()
        out, err = self.process.communicate(timeout=NODE_TIMEOUT)
        lines = (self.pending + out).decode("utf-8").splitlines()
        steps = {step.pop("step"): step for step in map(json.loads, filter(None, lines))}
        return self.process.returncode, steps, err.decode("utf-8")

    def stderr(self) -> str:
        assert self.process.stderr is not None
        return self.process.stderr.read().decode("utf-8")

    def stop(self) -> None:
        """Make sure the program is gone, whatever happened."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate()


def say_yes(browser: Browser, authorization_url: str) -> str:
    """Sam follows the department's link, unticks the income, presses Share; return the
    redirect back to the department, as the browser was told to go there."""
    opened = browser.get(authorization_url)
    assert opened.status == 303, opened.text
    assert opened.location is not None
    page = browser.get(opened.location)
    assert page.status == 200, page.text
    assert "Anytown Council housing" in page.text
    # The Share button's own value, as a browser sends it; "keep" is left out (unticked).
    answered = browser.post(opened.location, {"csrf_token": csrf_of(page.text), "share": "Share"})
    assert answered.status == 303, answered.text
    assert answered.location is not None and answered.location.startswith(REDIRECT_URI)
    return answered.location


def test_a_certified_fapi_client_gets_exactly_what_the_person_agreed_to(
    live_app: LiveApp,
    department: RegisteredDepartment,
    sam: Citizen,
    sams_browser: Browser,
    tmp_path: Path,
) -> None:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the interoperability test drives node's openid-client")
    assert OPENID_CLIENT.exists(), "openid-client is not installed: run scripts/test (npm ci)"
    settings = tmp_path / "department.json"
    settings.write_text(
        json.dumps(
            {
                "issuer": live_app.url,
                "client_id": department.client_id,
                "private_jwk": department.private_jwk,
                "redirect_uri": REDIRECT_URI,
                "authorization_details": [HOUSING_DETAILS],
                "case_reference": CASE,
                "acting_officer": OFFICER,
            }
        )
    )

    node = NodeClient(settings)
    try:
        pushed = node.first_line()
        assert pushed["step"] == "authorize", pushed
        assert pushed["url"].startswith(live_app.url + "/oauth/authorize?")
        exit_code, steps, errors = node.finish(say_yes(sams_browser, pushed["url"]))
    finally:
        node.stop()
    assert exit_code == 0, f"openid-client refused something of ours: {errors}"

    # The token response: DPoP-bound, with the details actually granted and a grant id.
    token = steps["token"]
    assert token["token_type"].lower() == "dpop"
    assert token["has_refresh_token"]
    grant_id = token["grant_id"]
    assert grant_id
    (granted,) = token["authorization_details"]
    assert granted["type"] == "tellonce_data"
    assert granted["data_points"] == AGREED
    assert granted["case_reference"] == CASE

    # The data API: exactly the agreed facts and story, under the same grant.
    data = steps["data"]
    assert data["status"] == 200, data
    body = data["body"]
    assert body["grant_id"] == grant_id
    assert sorted(point["key"] for point in body["data_points"]) == sorted(AGREED)
    assert str(SAMS_INCOME) not in json.dumps(body)  # the unticked income never leaves
    names = [p["value"] for p in body["data_points"] if p["key"] == "identity.name"]
    assert names == [CANARY]
    assert [part["topic"] for part in body["story"]] == ["housing"]

    # Refresh: same grant, same details, and the refresh token is not rotated (FAPI 2.0).
    refreshed = steps["refresh"]
    assert refreshed["grant_id"] == grant_id
    assert refreshed["authorization_details"][0]["data_points"] == AGREED
    assert not refreshed["has_refresh_token"]
    after_refresh = steps["data_after_refresh"]
    assert after_refresh["status"] == 200, after_refresh
    assert after_refresh["body"]["fetches_left"] == body["fetches_left"] - 1

    # Introspection (RFC 7662): live, ours, bound to the client's own DPoP key.
    assert steps["introspected"] == {
        "active": True,
        "client_id": department.client_id,
        "token_type": "DPoP",
        "grant_id": grant_id,
        "bound_to_our_dpop_key": True,
    }

    # Revoking the refresh token ends every token of that authorization at once.
    assert "revoked" in steps
    assert steps["introspected_after_revoke"]["active"] is False
    assert steps["data_after_revoke"]["status"] == 401

    # Sam's record shows both fetches as served, and the ledger holding them verifies.
    with session_scope(live_app.engine) as session:
        events = access_events_for_citizen(
            session, sam.citizen_id, department_id=department.client_id
        )
        report = verify_ledger(session, live_app.vault)
    assert [event.result for event in events] == ["served", "served"]
    assert {event.grant_id for event in events} == {grant_id}
    assert {(event.case_reference, event.acting_officer) for event in events} == {(CASE, OFFICER)}
    assert all(sorted(p["key"] for p in event.data_points) == sorted(AGREED) for event in events)
    assert report.ok, report.problems
    receipts = [body["receipt"]["ledger_index"], after_refresh["body"]["receipt"]["ledger_index"]]
    assert all(index < report.size for index in receipts)
