"""Many workers, one truth: gunicorn with 4 sync workers, hammered by departments and people
at once over real HTTP, keeps one gap-free ledger, refuses every replay and never serves a
grant after its revocation was acknowledged.

Everything that must be shared between workers lives in the database or Redis: the DPoP and
client-assertion replay caches (connectors/replay.py), rate limits (web/limits.py, Redis
here), and the ledger sequence (vault/ledger.py). Replays are just sent again: the next
request lands on whichever worker accepts it first, usually another one.

Each journey is a whole consent, done for real: PAR (private_key_jwt, PKCE, DPoP), the
person's browser answering the consent page, the token, a fetch; then fetchers hammer the data
API while the person stops sharing (or the department revokes its token). Four journeys run at
a time, each with two fetchers, so the four workers are always busy.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
from sqlalchemy import text

from tests.connectors.dpop_client import new_key
from tests.scale.checks import leaf_indexes, ledger_problems
from tests.scale.live import Answer, Deployment, Person, Server, details, say_yes, stop_sharing
from web.limits import OAUTH_REFUSED_PER_IP

pytestmark = pytest.mark.slow

CLIENT_THREADS = 4
JOURNEYS_PER_THREAD = 3
FETCHERS = 2  # per journey, racing the revocation
MAX_FETCHES_PER_FETCHER = 150  # a backstop: a fetcher stops once it is refused after the revoke
# Replayed assertions (401s) count towards this per-address limit on PAR and on the token
# endpoint: the journeys send one of each per journey, well under it.
REFUSED_PER_MINUTE = int(OAUTH_REFUSED_PER_IP.split("/")[0])


@dataclass
class Journey:
    """One consent from PAR to revocation, and everything the department saw on the way."""

    case: str
    revoke: str  # "grant": the person stops sharing; "token": the department revokes (RFC 7009)
    grant_id: str = ""
    acknowledged_at: float | None = None  # when the revoke's answer came back
    fetches: list[Answer] = field(default_factory=list)
    replays: list[tuple[str, Answer]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def served(self) -> list[Answer]:
        return [a for a in self.fetches if a.status_code == 200]


def run_journey(deployment: Deployment, person: Person, journey: Journey) -> None:
    """Consent, token, fetch, replays, then fetches racing the revocation."""
    side = deployment.department()
    browser = deployment.browser(person)
    assertion = side.assertion()
    pushed = side.par(details(journey.case), client_assertion=assertion)
    assert pushed.status_code == 201, pushed.body
    verifier = side.verifier
    journey.replays.append(("client assertion, PAR", side.par(client_assertion=assertion)))
    code = say_yes(browser, side, pushed.get_json()["request_uri"])
    token_assertion = side.assertion()
    tokens = side.token(code, verifier=verifier, client_assertion=token_assertion)
    assert tokens.status_code == 200, tokens.body
    access, refresh = tokens.get_json()["access_token"], tokens.get_json()["refresh_token"]
    journey.grant_id = tokens.get_json()["grant_id"]
    replayed = side.client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            **side.auth_fields(token_assertion),
        },
        headers={"DPoP": side.proof("POST", "/oauth/token")},
    )
    journey.replays.append(("client assertion, token", replayed))
    proof = side.proof("GET", "/api/v1/data", access_token=access)
    first = side.fetch(access, case_reference=journey.case, proof=proof)
    assert first.status_code == 200, first.body
    journey.fetches.append(first)
    again = side.fetch(access, case_reference=journey.case, proof=proof)
    journey.replays.append(("DPoP proof, data", again))

    def fetcher() -> None:
        for _ in range(MAX_FETCHES_PER_FETCHER):
            answer = side.fetch(access, case_reference=journey.case)
            with journey.lock:
                journey.fetches.append(answer)
                done = journey.acknowledged_at is not None
                after = done and answer.sent_at > (journey.acknowledged_at or 0)
            if after and answer.status_code != 200:
                return

    threads = [threading.Thread(target=fetcher) for _ in range(FETCHERS)]
    for thread in threads:
        thread.start()
    try:
        threading.Event().wait(random.uniform(0.05, 0.4))
        if journey.revoke == "grant":
            acknowledged = stop_sharing(browser, journey.grant_id)
        else:
            revoked = side.revoke(access)
            assert revoked.status_code == 200, revoked.body
            acknowledged = revoked.received_at
        with journey.lock:
            journey.acknowledged_at = acknowledged
    finally:
        if journey.acknowledged_at is None:  # the revoke failed: let the fetchers finish
            journey.acknowledged_at = 0.0
        for thread in threads:
            thread.join(timeout=120)


def journey_problems(journey: Journey) -> list[str]:
    """What the department saw that it must not have: a replay let in, a fetch served late."""
    problems = []
    for what, answer in journey.replays:
        if answer.status_code != 401:
            problems.append(f"{journey.case}: replayed {what} answered {answer.status_code}")
    acknowledged = journey.acknowledged_at or 0.0
    for answer in journey.fetches:
        if answer.status_code == 200 and answer.sent_at > acknowledged:
            problems.append(f"{journey.case}: a fetch sent after the revoke was served")
        if answer.status_code not in (200, 401, 403):
            problems.append(f"{journey.case}: a fetch answered {answer.status_code}")
    if not any(a.sent_at > acknowledged and a.status_code != 200 for a in journey.fetches):
        problems.append(f"{journey.case}: no fetch was refused after the revoke")
    return problems


def served_after_revocation(deployment: Deployment, journeys: list[Journey]) -> list[str]:
    """The ledger's order is the commit order: no served leaf may follow the grant's revocation.

    This covers every served access in the database, also those whose answers the department
    got only after the revoke returned (they must have been committed before it).
    """
    problems = []
    revoked = leaf_indexes(
        deployment.engine, "grant", "grant.revoked", (j.grant_id for j in journeys)
    )
    with deployment.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT a.grant_id, e.idx FROM access_event a JOIN ledger_entry e"
                " ON e.row_table = 'access_event' AND e.row_id = a.id"
                " WHERE a.result = 'served'"
            )
        ).all()
    for journey in journeys:
        if journey.revoke != "grant":
            continue
        if journey.grant_id not in revoked:
            problems.append(f"{journey.case}: the acknowledged revocation is not in the ledger")
            continue
        at = revoked[journey.grant_id]
        late = [idx for grant, idx in rows if grant == journey.grant_id and idx > at]
        if late:
            problems.append(f"{journey.case}: served at ledger index {late}, revoked at {at}")
    return problems


def receipts_problems(deployment: Deployment, journeys: list[Journey]) -> list[str]:
    """Every served answer has its access event, and no access was served unseen."""
    with deployment.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT grant_id, id FROM access_event WHERE result = 'served'")
        ).all()
    stored: dict[str, set[str]] = {}
    for grant_id, access_id in rows:
        stored.setdefault(str(grant_id), set()).add(str(access_id))
    problems = []
    for journey in journeys:
        seen = {a.get_json()["receipt"]["access_id"] for a in journey.served()}
        held = stored.get(journey.grant_id, set())
        if seen != held:
            problems.append(
                f"{journey.case}: {len(seen - held)} served answers have no access event,"
                f" {len(held - seen)} access events were served to nobody"
            )
    return problems


def tries_until_limited(deployment: Deployment) -> int:
    """Send PARs with a forged client assertion until one is refused as too many (429).

    The refused-authentication limit counts per address across every worker only if the
    count lives in Redis; in each worker's memory it would take about four times as many.
    """
    side = deployment.department()
    for tries in range(1, 4 * REFUSED_PER_MINUTE):
        answer = side.par(client_assertion=side.assertion(key=new_key("ES256")))
        if answer.status_code == 429:
            return tries
        assert answer.status_code == 401, answer.body
    return 4 * REFUSED_PER_MINUTE


def test_four_workers_keep_one_ledger_refuse_replays_and_honour_revocations(
    deployment: Deployment,
) -> None:
    deployment.populate(people=CLIENT_THREADS)
    env = deployment.env(TELLONCE_RATELIMIT_STORAGE="redis://127.0.0.1:6379")
    server = Server(env, deployment.port, deployment.folder / "gunicorn.log", workers=4)
    journeys = [
        Journey(case=f"MW-{t}-{n}", revoke=("grant", "token")[(t + n) % 2])
        for t in range(CLIENT_THREADS)
        for n in range(JOURNEYS_PER_THREAD)
    ]

    def client_thread(t: int) -> None:
        for journey in journeys[t * JOURNEYS_PER_THREAD : (t + 1) * JOURNEYS_PER_THREAD]:
            run_journey(deployment, deployment.people[t], journey)

    server.start()
    try:
        with ThreadPoolExecutor(CLIENT_THREADS) as pool:
            futures = [pool.submit(client_thread, t) for t in range(CLIENT_THREADS)]
        failures = [future.exception() for future in futures]
        limited_after = tries_until_limited(deployment)
    finally:
        server.stop()
    assert not [f for f in failures if f], f"{failures}\n{server.tail()}"

    problems = [p for journey in journeys for p in journey_problems(journey)]
    problems += served_after_revocation(deployment, journeys)
    problems += receipts_problems(deployment, journeys)
    problems += ledger_problems(deployment.engine, deployment.vault())
    assert not problems, "\n".join(problems)
    # Rate limits are shared too: the limit was reached within one worker's allowance.
    assert limited_after <= REFUSED_PER_MINUTE + 1, limited_after
    assert sum(len(j.served()) for j in journeys) > len(journeys)  # the race really ran
