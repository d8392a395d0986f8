"""The world the authorization matrix runs in: two people, their helpers, two departments.

Citizens A and B each have a name, a story (one part marked "ask me each time"), grants to
department D1, a decision D1 recorded through the API, a challenge to it, a helper, an open
invitation code, a passkey and a consent request open in their browser. Their values hold
distinct canary words (``CANARIES``). Every actor of ``matrix.py`` is a fixed set of
credentials: cookies and a CSRF token for a browser, a DPoP-bound access token (and the
department's client key) for a department's software.

Time: the world starts at the real time (client assertions are checked against it), builds
what must have ended (a one-day grant, an hour-long helper), then moves the frozen clock a
day on, so a D1 access token refreshed a minute before its grant ended is still live.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col

from connectors.departments import register_department
from connectors.models import OAuthToken
from connectors.tokens import find_token
from consent.actors import SCOPES
from consent.challenges import open_challenge
from consent.delegations import give_delegation, revoke_delegation
from consent.grants import revoke_grant
from consent.invitations import ALPHABET, create_invitation
from consent.models import Delegation, Invitation
from tests.conftest import Database
from tests.connectors.dpop_client import make_proof, new_key
from tests.oauth.harness import HOUSING_DETAILS, DepartmentSide, registration, whole_flow
from tests.security.matrix import SEND, Send
from tests.web.citizen.conftest import Person, csrf_of, grant_for, sign_in
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.clock import FrozenClock
from vault.records import record_data_point, record_story_section
from vault.services import Vault
from vault.signin_models import Passkey, WebSession
from web.signin_state import cookie_name

# One unusual word per kind of value, per person (matrix.MAY_SEE says who may see which).
CANARIES = {
    "a.name": "Xylocanary",
    "a.story": "storycanaryalpha",
    "a.secret": "secretcanaryalpha",
    "a.told": "toldcanaryalpha",
    "b.name": "Zephcanary",
    "b.story": "storycanarybeta",
    "b.secret": "secretcanarybeta",
    "b.told": "toldcanarybeta",
}
HOUSING = {**HOUSING_DETAILS, "max_fetches": 100}
BENEFITS = {
    "type": "tellonce_data",
    "purpose": "housing_benefit",
    "data_points": ["identity.name", "money.income_monthly"],
    "optional": [],
    "story_topics": [],
    "case_reference": "HOU-2291",
    "duration_days": 30,
    "data_life_days": 90,
    "max_fetches": 100,
}
PURPOSES = [
    {
        "code": "emergency_housing",
        "description": "To find you somewhere safe to stay and help you keep it.",
        "data_points": ["identity.name", "contact.address", "money.income_monthly"],
        "story_topics": ["housing", "health"],
    },
    {
        "code": "housing_benefit",
        "description": "To work out the help with rent you can get.",
        "data_points": ["identity.name", "money.income_monthly"],
        "story_topics": [],
    },
]
_ARGUMENT = re.compile(r"<(?:\w+:)?(\w+)>")


@dataclass
class Actor:
    """One actor's fixed credentials; every request it sends carries exactly these."""

    name: str
    cookies: dict[str, str]
    csrf: str
    session_hash: str | None = None  # its server-side session, to put back after a cell
    acting_for: str | None = None
    department: DepartmentSide | None = None  # a department's software: its keys
    token: str | None = None  # and the access token it presents on the API


@dataclass
class World:
    """The app, the people's things by owner (``a``, ``b``, ``d``) and every actor."""

    app: Flask
    engine: Engine
    vault: Vault
    actors: dict[str, Actor]
    things: dict[str, dict[str, str]]
    delegations: list[str]  # live ones, put back if a cell removes one
    invitations: list[str]
    passkeys: list[dict[str, Any]]
    client: Any = None
    stranger_key: Any = None

    def __post_init__(self) -> None:
        self.client = self.app.test_client(use_cookies=False)
        self.stranger_key = new_key("ES256")

    def value(self, route: str, target: str, name: str) -> str:
        """The thing a URL argument or target field gets on this row."""
        kind = SEND.get(route, Send()).args.get(name, name)
        if kind.startswith("="):
            return kind[1:]
        return self.things[target.lstrip("@")][kind]

    def send(self, route: str, target: str, actor_name: str, swap: str | None = None) -> Any:
        """Send the route's request as the actor (with ``swap`` in place of the row's id)."""
        method, rule = route.split(" ", 1)
        spec = SEND.get(route, Send())
        actor = self.actors[actor_name]

        def argument(match: re.Match[str]) -> str:
            name = match.group(1)
            literal = spec.args.get(name, "=").startswith("=")
            return swap if swap is not None and not literal else self.value(route, target, name)

        path = _ARGUMENT.sub(argument, rule)
        headers = dict(spec.headers)
        if actor.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in actor.cookies.items())
        form = None if spec.form is None else dict(spec.form)
        if spec.target is not None and form is not None:
            form[spec.target] = swap if swap is not None else self.value(route, target, spec.target)
        side = actor.department
        if spec.client_auth:
            if side is not None and form is not None:
                form.update(side.auth_fields())
            if spec.dpop:
                # Anyone can make a DPoP key: it is no credential, so everyone sends a proof.
                key = side.dpop_key if side is not None else self.stranger_key
                url = self.app.config["BASE_URL"] + path
                headers["DPoP"] = make_proof(key, method, url, iat=self.vault.clock())
        else:
            if form is not None:
                form["csrf_token"] = actor.csrf
            if side is not None and actor.token is not None:
                headers["Authorization"] = f"DPoP {actor.token}"
                headers["DPoP"] = side.proof(method, path, access_token=actor.token)
        return self.client.open(
            path,
            method=method,
            headers=headers,
            query_string=spec.query or None,
            data=form,
            json=spec.json,
        )

    def random_value(self, route: str) -> str:
        """Something shaped like the row's id that belongs to nobody."""
        spec = SEND.get(route, Send())
        if spec.target == "code":
            return "-".join("".join(secrets.choice(ALPHABET) for _ in range(4)) for _ in range(3))
        if spec.target == "token":
            return secrets.token_urlsafe(32)
        return str(uuid.uuid4())

    def token_revoked(self, token: str) -> bool:
        """Whether a D1 token has been revoked."""
        with Database(self.engine).tx() as session:
            found = find_token(session, token)
            assert found is not None
            return found[0].revoked_at is not None

    def put_back(self, actor_name: str, restore: bool) -> None:
        """Undo what a cell changed: the actor's session, and (``restore``) removed things."""
        actor = self.actors[actor_name]
        with Database(self.engine).tx() as session:
            if actor.session_hash is not None:
                session.execute(
                    update(WebSession)
                    .where(col(WebSession.token_hash) == actor.session_hash)
                    .values(acting_for=actor.acting_for, ended_at=None)
                )
            if not restore:
                return
            session.execute(
                update(Delegation)
                .where(col(Delegation.id).in_(self.delegations))
                .values(revoked_at=None, revoked_by=None)
            )
            session.execute(
                update(Invitation)
                .where(col(Invitation.id).in_(self.invitations))
                .values(revoked_at=None)
            )
            session.execute(
                update(OAuthToken)
                .where(col(OAuthToken.id) == self.things["d"]["token_id"])
                .values(revoked_at=None)
            )
            for passkey in self.passkeys:
                if session.get(Passkey, passkey["id"]) is None:
                    session.add(Passkey(**passkey))


# ---- Building it ---------------------------------------------------------------------------


def _department(app: Flask, db: Database, vault: Vault, **tellonce: Any) -> DepartmentSide:
    key = new_key("ES256")
    with db.tx() as session:
        registered = register_department(session, vault, registration(key, **tellonce))
    return DepartmentSide(
        app.test_client(),
        app.config["BASE_URL"],
        registered.department.id,
        key,
        clock=app.config["CLOCK"],
    )


def _person(db: Database, vault: Vault, side: str, email: str, first: str) -> Person:
    with db.tx() as session:
        citizen = create_citizen(session, vault)
        account = create_account(session, vault, email, citizen_id=citizen.id)
        by = f"citizen:{account.id}"
        name = f"{first} {CANARIES[side + '.name']}"
        record_data_point(session, vault, citizen.id, "identity.name", name, recorded_by=by)
        address = {"lines": ["10 High Street"], "town": "Leeds", "postcode": "LS1 1AA"}
        record_data_point(session, vault, citizen.id, "contact.address", address, recorded_by=by)
        record_data_point(session, vault, citizen.id, "money.income_monthly", 1250, recorded_by=by)
        story = f"I sleep on a sofa ({CANARIES[side + '.story']})."
        record_story_section(session, vault, citizen.id, "housing", story, recorded_by=by)
        secret = f"Panic attacks ({CANARIES[side + '.secret']})."
        record_story_section(
            session,
            vault,
            citizen.id,
            "health",
            secret,
            recorded_by=by,
            sensitivity="ask_me_each_time",
        )
        return Person(citizen.id, account.id)


def _account(db: Database, vault: Vault, email: str) -> str:
    with db.tx() as session:
        return create_account(session, vault, email).id


def _helps(db: Database, vault: Vault, person: Person, worker: str, scopes: Any, days: Any) -> str:
    with db.tx() as session:
        given = give_delegation(session, vault, person.actor, worker, scopes, vault.clock() + days)
        return given.id


def _browser(app: Flask, db: Database, vault: Vault, account_id: str | None = None) -> Any:
    client = app.test_client()
    if account_id is not None:
        sign_in(client, db, vault, account_id)
    return client


def _decide(side: DepartmentSide, token: str, who: str) -> str:
    """D1 fetches the person's information, then records an automated decision using it."""
    served = side.fetch(token)
    assert served.status_code == 200, served.get_json()
    used = [{"key": p["key"], "version": p["version"]} for p in served.get_json()["data_points"]]
    body = {
        "case_reference": "HOU-2291",
        "title": "Emergency housing",
        "outcome": f"Priority need accepted ({CANARIES[who + '.told']}).",
        "reasons": "No safe place to stay tonight.",
        "automated": True,
        "algorithm": {"name": "Priority need screener", "version": "2.3.1"},
        "accountable_officer": {"name": "Priya Shah", "role": "Head of Housing Options"},
        "data_points_used": used,
    }
    path = "/api/v1/decisions"
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": side.proof("POST", path, access_token=token),
        "Acting-Officer": "A. Officer",
    }
    made = side.client.post(path, json=body, headers=headers)
    assert made.status_code == 201, made.get_json()
    return str(made.get_json()["id"])


def _challenge(db: Database, vault: Vault, person: Person, decision_id: str, who: str) -> str:
    with db.tx() as session:
        return open_challenge(
            session,
            vault,
            person.actor,
            decision_id=decision_id,
            reason=f"I moved in May ({CANARIES[who + '.told']}).",
            data_point=("contact.address", 1),
        ).id


def _invitation(db: Database, vault: Vault, person: Person) -> tuple[str, str]:
    with db.tx() as session:
        made = create_invitation(
            session, vault, person.actor, ["view"], vault.clock() + timedelta(days=30)
        )
        return made.invitation.id, made.code


def _passkey(db: Database, vault: Vault, person: Person) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "account_id": person.account_id,
        "credential_id": secrets.token_bytes(16),
        "public_key": secrets.token_bytes(32),
        "name": "Phone",
        "created_at": vault.clock(),
    }
    with db.tx() as session:
        session.add(Passkey(**row))
    return row


def _open_consent(browser: Any, side: DepartmentSide) -> str:
    """D1 asks; the person's browser follows the link; the id of the consent page it opened."""
    pushed = side.par(HOUSING)
    assert pushed.status_code == 201, pushed.get_json()
    query = {"client_id": side.client_id, "request_uri": pushed.get_json()["request_uri"]}
    opened = browser.get("/oauth/authorize", query_string=query)
    assert opened.status_code == 303, opened.get_data(as_text=True)
    return urlsplit(opened.headers["Location"]).path.rsplit("/", 1)[1]


def _client_credentials(side: DepartmentSide) -> str:
    answer = side.client_credentials("challenges")
    assert answer.status_code == 200, answer.get_json()
    return str(answer.get_json()["access_token"])


def _freeze(app: Flask, name: str, browser: Any, acting_for: str | None = None) -> Actor:
    """The browser's cookies and CSRF token, fixed from now on."""
    page = browser.get("/sign-in")
    assert page.status_code == 200
    csrf = csrf_of(page.get_data(as_text=True))
    cookies = {}
    session_hash = None
    for cookie in (cookie_name(app), app.config["SESSION_COOKIE_NAME"]):
        found = browser.get_cookie(cookie)
        if found is not None:
            cookies[cookie] = found.value
    if cookie_name(app) in cookies:
        session_hash = hashlib.sha256(cookies[cookie_name(app)].encode()).hexdigest()
    return Actor(name, cookies, csrf, session_hash=session_hash, acting_for=acting_for)


def build_world(app: Flask, engine: Engine, vault: Vault, clock: FrozenClock) -> World:
    """Everyone and everything the matrix needs, at a moment when some of it has ended."""
    db = Database(engine)
    d1 = _department(app, db, vault, purposes=PURPOSES)
    d2 = _department(app, db, vault)
    a = _person(db, vault, "a", "anna@example.org", "Anna")
    b = _person(db, vault, "b", "bert@example.org", "Bert")
    workers = {
        name: _account(db, vault, f"{name}@example.org")
        for name in ("view", "answer_requests", "manage_story", "challenge", "expired", "revoked")
    }
    workers["b"] = _account(db, vault, "worker-b@example.org")

    # What has ended by "now": a one-day grant (its token refreshed just before the end) and
    # an hour-long helper.
    early = _browser(app, db, vault, a.account_id)
    ending = whole_flow(early, d1, {**HOUSING, "duration_days": 1})
    _helps(db, vault, a, workers["expired"], SCOPES, timedelta(hours=1))
    clock.advance(days=1, minutes=-1)
    refreshed = d1.refresh(ending["refresh_token"])
    assert refreshed.status_code == 200, refreshed.get_json()
    expired_token = refreshed.get_json()["access_token"]
    clock.advance(minutes=2)

    browsers = {"a": _browser(app, db, vault, a.account_id)}
    browsers["b"] = _browser(app, db, vault, b.account_id)
    housing = whole_flow(browsers["a"], d1, HOUSING)
    benefits = whole_flow(browsers["a"], d1, BENEFITS, keep=[])
    stopping = whole_flow(browsers["a"], d1, HOUSING)
    b_housing = whole_flow(browsers["b"], d1, HOUSING)
    b_stopped = grant_for(db, vault, b, department=d1.client_id)
    with db.tx() as session:
        revoke_grant(session, vault, a.actor, stopping["grant_id"])
        revoke_grant(session, vault, b.actor, b_stopped)

    decisions = {"a": _decide(d1, housing["access_token"], "a")}
    decisions["b"] = _decide(d1, b_housing["access_token"], "b")
    spare = _client_credentials(d1)
    with db.tx() as session:
        found = find_token(session, spare)
        assert found is not None
        spare_id = found[0].id

    month = timedelta(days=30)
    helpers = {
        scope: _helps(db, vault, a, workers[scope], [scope], month)
        for scope in ("view", "answer_requests", "manage_story", "challenge")
    }
    removed = _helps(db, vault, a, workers["revoked"], SCOPES, month)
    with db.tx() as session:
        revoke_delegation(session, vault, a.actor, removed)
    helpers["b"] = _helps(db, vault, b, workers["b"], SCOPES, month)
    invitations = {"a": _invitation(db, vault, a), "b": _invitation(db, vault, b)}
    passkeys = {"a": _passkey(db, vault, a), "b": _passkey(db, vault, b)}
    pushed = {side: _open_consent(browsers[side], d1) for side in ("a", "b")}

    people = {"a": a, "b": b}
    stopped = {"a": stopping["grant_id"], "b": b_stopped}
    grants = {"a": housing["grant_id"], "b": b_housing["grant_id"]}
    things: dict[str, dict[str, str]] = {
        side: {
            "challenge": _challenge(db, vault, people[side], decisions[side], side),
            "decision": decisions[side],
            "delegation": helpers["view" if side == "a" else "b"],
            "invitation": invitations[side][0],
            "code": invitations[side][1],
            "passkey": passkeys[side]["id"],
            "pushed": pushed[side],
            "grant": grants[side],
            "stopped_grant": stopped[side],
        }
        for side in ("a", "b")
    }
    things["d"] = {"token": spare, "token_id": spare_id}

    actors = {
        "citizen_a": _freeze(app, "citizen_a", browsers["a"]),
        "citizen_b": _freeze(app, "citizen_b", browsers["b"]),
    }
    for name, account, person in [
        ("worker_a_view", workers["view"], a),
        ("worker_a_answer_requests", workers["answer_requests"], a),
        ("worker_a_manage_story", workers["manage_story"], a),
        ("worker_a_challenge", workers["challenge"], a),
        ("worker_a_expired", workers["expired"], a),
        ("worker_a_revoked", workers["revoked"], a),
        ("worker_b", workers["b"], b),
    ]:
        browser = app.test_client()
        sign_in(browser, db, vault, account, acting_for=person.citizen_id)
        actors[name] = _freeze(app, name, browser, acting_for=person.citizen_id)
    for name in ("anonymous", "operator"):
        actors[name] = _freeze(app, name, app.test_client())
    tokens = {
        "dept_grant_a_housing": (d1, housing["access_token"]),
        "dept_grant_a_benefits": (d1, benefits["access_token"]),
        "dept_grant_a_expired": (d1, expired_token),
        "dept_grant_a_revoked": (d1, stopping["access_token"]),
        "dept_grant_b": (d1, b_housing["access_token"]),
        "dept_client_credentials": (d1, _client_credentials(d1)),
        "other_department": (d2, _client_credentials(d2)),
    }
    for name, (side, token) in tokens.items():
        actor = _freeze(app, name, app.test_client())
        actor.department, actor.token = side, token
        actors[name] = actor

    live = [helpers[scope] for scope in ("view", "answer_requests", "manage_story", "challenge")]
    return World(
        app=app,
        engine=engine,
        vault=vault,
        actors=actors,
        things=things,
        delegations=[*live, helpers["b"]],
        invitations=[invitations["a"][0], invitations["b"][0]],
        passkeys=[passkeys["a"], passkeys["b"]],
    )
