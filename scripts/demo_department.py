"""Anytown Council housing: a small department website that asks Tell Once for Sam's information.

Start Tell Once first (scripts/run), then, in another terminal in the project folder:

    .venv/bin/python scripts/demo_department.py [--port 5001] [--tellonce http://localhost:5000]

and open http://localhost:5001. It reads its client id, redirect URI and private signing key
from demo-department.json beside Tell Once's key file (instance/ unless TELLONCE_KEY_FILE or
TELLONCE_INSTANCE say otherwise), which `tellonce demo seed` writes. Tokens are kept in this
process's memory, keyed by a random cookie: it is a demo, and forgets everything when stopped.

After a fetch, the case page records decisions, lists people's challenges with a form to
answer each, and records reviews; Tell Once's signed notices arrive at /tellonce/events and
are shown there as "Messages from Tell Once".
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flask import (  # noqa: E402
    Flask,
    Response,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
)
from jinja2 import DictLoader  # noqa: E402

from scripts.demo_department_casework import (  # noqa: E402
    CaseworkClient,
    answer_from_form,
    decision_from_form,
    review_from_form,
)
from scripts.demo_department_client import (  # noqa: E402
    ASKED_FOR,
    AccessDenied,
    DepartmentSettings,
    TellOnceProblem,
    Visit,
)
from scripts.demo_department_events import (  # noqa: E402
    SET_MEDIA_TYPE,
    EventRejected,
    Inbox,
    KeysUnavailable,
    Notice,
)
from scripts.demo_department_templates import TEMPLATES  # noqa: E402

COOKIE = "anytown_visit"
DEFAULT_TELLONCE = "http://localhost:5000"
# Our own words for what we ask for (Tell Once sends its labels with the data too).
WHAT_WE_ASK = {
    "identity.name": "Sam's name",
    "contact.address": "Sam's address",
    "money.income_monthly": "Sam's income each month",
}
# As registered with Tell Once (web/demo.py): who answers for our decisions.
ACCOUNTABLE_OFFICER = {"name": "Priya Shah", "role": "Head of Housing Options"}
# Forms and notices are small; anything bigger is not for us.
MAX_REQUEST_BYTES = 64 * 1024
# Why Tell Once asks us to review a decision, in our words.
BECAUSE = {
    "data_point_contested": "Sam says information it used is wrong",
    "data_point_corrected": "information it used has been corrected",
    "decision_challenged": "Sam says the decision is wrong",
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


def at(value: float | str | None) -> str:
    """A moment (seconds since 1970, or ISO from Tell Once) as a plain date and UTC time."""
    try:
        if isinstance(value, int | float):
            moment = datetime.fromtimestamp(value, UTC)
        else:
            moment = datetime.fromisoformat(str(value)).astimezone(UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(value)
    return f"{moment.day} {moment:%B %Y} at {moment:%H:%M:%S} UTC"


def what(key: str | None) -> str:
    """A data point key in our own words."""
    return WHAT_WE_ASK.get(key or "", key or "something")


def message_words(notice: Notice) -> str:
    """What a notice from Tell Once means to us, in one sentence."""
    details = notice.details
    thing = f"{what(details.get('key'))} (version {details.get('version')})"
    if notice.event == "grant_revoked":
        return "Sam stopped sharing with us: we cannot look again, and must delete what we got."
    if notice.event == "data_point_contested":
        return f"Sam says {thing} is wrong. Do not rely on it until it is checked."
    if notice.event == "challenge_opened":
        about = thing if details.get("target") == "data_point" else "our decision"
        return f"Sam challenged {about}. We must answer within a month."
    if notice.event == "data_point_corrected":
        name = what(details.get("key"))
        return (
            f"{name[:1].upper()}{name[1:]} was corrected: version {details.get('new_version')} "
            f"replaces version {details.get('old_version')}."
        )
    if notice.event == "decision_review_requested":
        because = BECAUSE.get(str(details.get("because")), "something it used has changed")
        return f"Tell Once asks us to review our decision, because {because}."
    return f"Tell Once sent a message we do not know ({notice.event})."


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


def create_app(client: CaseworkClient, inbox: Inbox | None = None) -> Flask:
    """The department's website, asking the Tell Once that ``client`` talks to.

    ``inbox`` keeps Tell Once's notices; by default one that checks them with its keys.
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.jinja_loader = DictLoader(TEMPLATES)
    app.jinja_env.globals.update(
        asked=ASKED_FOR,
        what_we_ask=WHAT_WE_ASK,
        officer=ACCOUNTABLE_OFFICER,
        show=show,
        when=when,
        at=at,
        what=what,
        message_words=message_words,
        issuer=client.issuer,
    )
    visits = Visits()
    notices = inbox or Inbox(client.issuer, client.settings.client_id, client.fetch_jwks)

    def problem(message: str, status: int = 400) -> tuple[str, int]:
        return render_template("problem.html", message=message), status

    def current() -> Visit | None:
        return visits.find(request.cookies.get(COOKIE))

    def on_the_case(work: Callable[[Visit], str]) -> Any:
        """Do one caseworker's button on the current case; say how it went on the case page."""
        visit = current()
        if visit is None or visit.received is None:
            return redirect("/", code=303)
        try:
            visit.note = work(visit)
        except TellOnceProblem as error:
            visit.note = error.message
        return redirect("/case", code=303)

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
        subject = visit.received.get("subject")
        challenges, challenges_problem = [], None
        try:
            challenges = [c for c in client.challenges() if c.get("subject") == subject]
        except TellOnceProblem as error:
            challenges_problem = error.message
        note, visit.note = visit.note, None
        return render_template(
            "case.html",
            data=visit.received,
            left_out=left_out(visit),
            note=note,
            decisions=visit.decisions,
            challenges=challenges,
            challenges_problem=challenges_problem,
            messages=notices.notices(subject),
        )

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

    @app.post("/decisions")
    def decide() -> Any:
        def record(visit: Visit) -> str:
            body = decision_from_form(request.form, request.form.getlist("used"))
            recorded = client.record_decision(visit, body)
            return f"We recorded the decision (Tell Once's id {recorded['id']})."

        return on_the_case(record)

    @app.post("/decisions/<decision_id>/review")
    def review(decision_id: str) -> Any:
        def record(visit: Visit) -> str:
            reviewed = client.review_decision(visit, decision_id, review_from_form(request.form))
            return f"We recorded the review: the decision is now version {reviewed['version']}."

        return on_the_case(record)

    @app.post("/challenges/<challenge_id>/answer")
    def answer(challenge_id: str) -> Any:
        def send(_visit: Visit) -> str:
            client.answer_challenge(challenge_id, answer_from_form(request.form))
            return "We sent our answer. Tell Once shows it to Sam."

        return on_the_case(send)

    @app.post("/tellonce/events")
    def events() -> Any:
        """Tell Once's notices (RFC 8935 push delivery): 202 when kept, 400 if not ours."""
        if request.mimetype != SET_MEDIA_TYPE:
            description = f"Send one security event token as {SET_MEDIA_TYPE}."
            return jsonify(err="invalid_request", description=description), 400
        try:
            notices.receive(request.get_data(as_text=True).strip())
        except EventRejected as error:
            return jsonify(err=error.err, description=error.description), 400
        except KeysUnavailable as error:
            # Not the token's fault: a 5xx makes Tell Once send it again later.
            return jsonify(err="temporarily_unavailable", description=str(error)), 503
        return Response(status=202)

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
    app = create_app(CaseworkClient(options.tellonce, settings))
    print(f"Anytown Council housing is at http://localhost:{port} (asking {options.tellonce}).")
    print(f"Tell Once's notices come to http://localhost:{port}/tellonce/events.")
    print("Sign in to Tell Once as sam@example.org when it asks. Ctrl+C stops it.")
    app.run(host="localhost", port=port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
