"""Anytown Council housing: a small department website that asks Tell Once for Sam's information.

Start Tell Once first (scripts/run), then, in another terminal in the project folder:

    .venv/bin/python scripts/demo_department.py [--port 5001] [--tellonce http://localhost:5000]

and open http://localhost:5001. It reads its client id, redirect URI and private signing key
from demo-department.json beside Tell Once's key file (instance/ unless TELLONCE_KEY_FILE or
TELLONCE_INSTANCE say otherwise), which `tellonce demo seed` writes. Tokens are kept in this
process's memory, keyed by a random cookie: it is a demo, and forgets everything when stopped.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import threading
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask import Flask, Response, make_response, redirect, render_template, request  # noqa: E402
from jinja2 import DictLoader  # noqa: E402

from scripts.demo_department_client import (  # noqa: E402
    ASKED_FOR,
    AccessDenied,
    DepartmentSettings,
    TellOnceClient,
    TellOnceProblem,
    Visit,
)

COOKIE = "anytown_visit"
DEFAULT_TELLONCE = "http://localhost:5000"
# Our own words for what we ask for (Tell Once sends its labels with the data too).
WHAT_WE_ASK = {
    "identity.name": "Sam's name",
    "contact.address": "Sam's address",
    "money.income_monthly": "Sam's income each month",
}

BASE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}{% endblock %} - Anytown Council housing</title>
<style>
 body{font-family:Arial,sans-serif;margin:0;color:#0b0c0c;line-height:1.4}
 header{background:#1d4f91;color:#fff;padding:12px 20px;font-weight:bold;font-size:20px}
 main{max-width:780px;margin:0 auto;padding:20px}
 table{border-collapse:collapse;width:100%;margin-bottom:20px}
 th,td{text-align:left;border-bottom:1px solid #b1b4b6;padding:6px 8px;vertical-align:top}
 button{background:#00703c;color:#fff;border:0;padding:10px 16px;font-size:18px;cursor:pointer}
 .note{border-left:6px solid #1d4f91;padding:6px 12px;background:#f3f2f1}
 .contested{color:#d4351c;font-weight:bold}
 code{word-break:break-all}
</style></head>
<body><header>Anytown Council &middot; Housing options</header>
<main>{% block main %}{% endblock %}</main></body></html>"""

START = """{% extends "base.html" %}{% block title %}Ask Tell Once{% endblock %}{% block main %}
<h1>Ask Tell Once for Sam's information</h1>
<p>Sam has asked us for help to find somewhere safe to stay (case {{ asked.case_reference }}).
Sam keeps their information in Tell Once, so they do not have to tell us everything again.</p>
<p>When you press the button, Tell Once will show Sam what we are asking for, and Sam decides.
We are asking for:</p>
<ul>{% for key in asked.data_points %}<li>{{ what_we_ask[key] }}
{%- if key in asked.optional %} (Sam can choose not to share this){% endif %}</li>{% endfor %}
<li>what Sam has written about housing</li></ul>
<p>We ask to see it for {{ asked.duration_days }} days, at most {{ asked.max_fetches }} times,
and we will keep what we get for {{ asked.data_life_days }} days. Sam can stop this at any time,
and every look we take is written in Tell Once's public ledger.</p>
<form method="post" action="/ask"><button>Ask Tell Once for Sam's information</button></form>
{% endblock %}"""

CASE = """{% extends "base.html" %}{% block title %}Case {{ data.case_reference }}{% endblock %}
{% block main %}
<h1>What Sam shared with us</h1>
<p>Case {{ data.case_reference }}. Sam is known to us as <code>{{ data.subject }}</code>
(an id only we get).</p>
<table><thead><tr><th>What</th><th>Value</th><th>Version</th><th>Source</th><th>Contested</th>
</tr></thead>
<tbody>{% for point in data.data_points %}<tr><td>{{ point.label }}</td>
<td>{{ show(point.key, point.value) }}</td><td>{{ point.version }}</td><td>{{ point.source }}</td>
<td>{% if point.contested %}<span class="contested">Yes: Sam says this is wrong</span>
{%- else %}No{% endif %}</td></tr>
{% endfor %}</tbody></table>
{% for part in data.story %}
<h2>What Sam wrote about {{ part.topic }} (version {{ part.version }})</h2>
<p>{{ part.text }}</p>{% endfor %}
{% if left_out %}<p class="note">Sam chose not to share: {{ left_out | join(", ") }}.</p>
{% endif %}
<p>We may look {{ data.fetches_left }} more times, until {{ when(data.ends_at) }}.</p>
<p>Tell Once wrote this look in its public ledger as entry {{ data.receipt.ledger_index }}
(<a href="{{ issuer }}/ledger/entries?start={{ data.receipt.ledger_index }}&amp;end={{
data.receipt.ledger_index + 1 }}">see it</a>), access id <code>{{ data.receipt.access_id }}</code>,
leaf hash <code>{{ data.receipt.leaf_hash }}</code>.</p>
<form method="post" action="/fetch-again"><button>Fetch again</button></form>
<p><a href="/">Start again</a></p>
{% endblock %}"""

SAID_NO = """{% extends "base.html" %}{% block title %}Sam said no{% endblock %}{% block main %}
<h1>Sam said no</h1>
<p>Sam chose not to share their information with us through Tell Once, so we cannot see it.
That is Sam's choice to make. We can still help: ask Sam what they would like to tell us.</p>
<p><a href="/">Start again</a></p>
{% endblock %}"""

PROBLEM = """{% extends "base.html" %}{% block title %}Something went wrong{% endblock %}
{% block main %}<h1>Something went wrong</h1><p>{{ message }}</p>
<p><a href="/">Start again</a></p>{% endblock %}"""

TEMPLATES = {
    "base.html": BASE,
    "start.html": START,
    "case.html": CASE,
    "said_no.html": SAID_NO,
    "problem.html": PROBLEM,
}


def show(key: str, value: Any) -> str:
    """A value from Tell Once in plain words: addresses on one line, money in pounds."""
    if isinstance(value, dict):
        parts = [*value.get("lines", []), *(value[k] for k in ("town", "postcode") if k in value)]
        return ", ".join(str(part) for part in parts) if parts else str(value)
    if key.startswith("money.") and isinstance(value, int):
        return f"£{value / 100:,.2f}"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def when(value: str) -> str:
    """An ISO date and time from Tell Once as a plain date."""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{moment.day} {moment:%B %Y}"


def left_out(visit: Visit) -> list[str]:
    """What we asked for and Sam did not share, in our own words."""
    granted = {
        key
        for detail in (visit.tokens.authorization_details if visit.tokens else [])
        for key in detail.get("data_points", [])
    }
    words = [WHAT_WE_ASK[key] for key in ASKED_FOR["data_points"] if key not in granted]
    # Story parts Sam asked to be checked with first come back as "withheld", not granted.
    withheld = (visit.received or {}).get("withheld", [])
    words += [f"what Sam wrote about {item.removeprefix('story:')}" for item in withheld]
    return words


class Visits:
    """Each browser's trip through the flow, in memory, by a random cookie value."""

    def __init__(self) -> None:
        self._visits: dict[str, Visit] = {}
        self._lock = threading.Lock()

    def find(self, cookie: str | None) -> Visit | None:
        """The visit behind a cookie value, if any."""
        with self._lock:
            return self._visits.get(cookie or "")

    def start(self) -> tuple[str, Visit]:
        """A new visit and the cookie value that finds it."""
        cookie, visit = secrets.token_urlsafe(32), Visit()
        with self._lock:
            self._visits[cookie] = visit
        return cookie, visit


def create_app(client: TellOnceClient) -> Flask:
    """The department's website, asking the Tell Once that ``client`` talks to."""
    app = Flask(__name__)
    app.jinja_loader = DictLoader(TEMPLATES)
    app.jinja_env.globals.update(
        asked=ASKED_FOR, what_we_ask=WHAT_WE_ASK, show=show, when=when, issuer=client.issuer
    )
    visits = Visits()

    def problem(message: str, status: int = 400) -> tuple[str, int]:
        return render_template("problem.html", message=message), status

    def current() -> Visit | None:
        return visits.find(request.cookies.get(COOKIE))

    @app.get("/")
    def start() -> str:
        return render_template("start.html")

    @app.post("/ask")
    def ask() -> Any:
        cookie, visit = visits.start()
        try:
            location = client.start(visit)
        except TellOnceProblem as error:
            return problem(error.message, 502)
        response: Response = make_response(redirect(location, code=303))
        # Lax: the cookie must come back on the top-level redirect from Tell Once to /callback.
        response.set_cookie(COOKIE, cookie, httponly=True, samesite="Lax")
        return response

    @app.get("/callback")
    def callback() -> Any:
        visit = current()
        if visit is None:
            return problem("We did not start this request in this browser. Start again.")
        if visit.tokens is not None:
            # Already answered (the back button): sending the code again would make Tell Once
            # revoke what it gave us, as it must when a code is used twice.
            return redirect("/case", code=303)
        try:
            client.finish(visit, request.args.to_dict())
            client.fetch(visit)
        except AccessDenied:
            return render_template("said_no.html")
        except TellOnceProblem as error:
            return problem(error.message)
        # Show the result on its own page, so reloading it never sends the code twice.
        return redirect("/case", code=303)

    @app.get("/case")
    def case() -> Any:
        visit = current()
        if visit is None or visit.received is None:
            return redirect("/", code=303)
        return render_template("case.html", data=visit.received, left_out=left_out(visit))

    @app.post("/fetch-again")
    def fetch_again() -> Any:
        visit = current()
        if visit is None or visit.tokens is None:
            return redirect("/", code=303)
        try:
            client.fetch(visit)
        except TellOnceProblem as error:
            return problem(error.message)
        return redirect("/case", code=303)

    return app


def default_department_file() -> Path:
    """demo-department.json beside Tell Once's key file, found as Tell Once finds that file."""
    instance = Path(os.environ.get("TELLONCE_INSTANCE", ROOT / "instance"))
    key_file = Path(os.environ.get("TELLONCE_KEY_FILE", instance / "keys.json"))
    return key_file.parent / "demo-department.json"


def main(argv: list[str] | None = None) -> None:
    """Read the options and serve the demo department until Ctrl+C."""
    parser = argparse.ArgumentParser(description="Anytown Council housing, a demo department.")
    parser.add_argument("--port", type=int, default=None, help="default: the redirect URI's port")
    parser.add_argument("--tellonce", default=DEFAULT_TELLONCE, help="Tell Once's address")
    parser.add_argument("--department-file", type=Path, default=default_department_file())
    options = parser.parse_args(argv)
    try:
        settings = DepartmentSettings.from_file(options.department_file)
    except TellOnceProblem as error:
        raise SystemExit(error.message) from None
    registered_port = urlsplit(settings.redirect_uri).port or 80
    port = options.port or registered_port
    if port != registered_port:
        print(
            f"Note: Tell Once sends people back to {settings.redirect_uri} (as registered), "
            f"not to port {port}.",
            file=sys.stderr,
        )
    app = create_app(TellOnceClient(options.tellonce, settings))
    print(f"Anytown Council housing is at http://localhost:{port} (asking {options.tellonce}).")
    print("Sign in to Tell Once as sam@example.org when it asks. Ctrl+C stops it.")
    app.run(host="localhost", port=port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
