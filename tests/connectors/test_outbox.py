"""The outbox: a notice becomes a row exactly when its cause commits, and the worker delivers
each row at least once, retrying a webhook that fails, without two workers sending one row
at the same time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import Session, col

from connectors import outbox
from connectors.models import Department
from connectors.outbox import (
    CLOCK_KEY,
    DeliveryReport,
    WebhookAnswer,
    backoff,
    claim_due,
    deliver,
    outbox_status,
)
from connectors.outbox_models import OutboxMessage
from connectors.set_tokens import read_set
from consent import notices
from consent.actors import citizen as citizen_actor
from consent.grants import give_grant, revoke_grant
from consent.notices import DepartmentNotice, tell_department
from tests.connectors.webhook import Webhook, add_department, refused_url, running_webhook
from tests.consent.factories import ask
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.clock import FrozenClock
from vault.services import Vault

HOUSING = "dept-housing"
BENEFITS = "dept-benefits"
ISSUER = "http://localhost"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with running_webhook() as hook:
        yield hook


@pytest.fixture
def citizen_id(db: Any, vault: Vault) -> str:
    with db.tx() as session:
        return create_citizen(session, vault).id


def challenge_opened(citizen_id: str | None, department_id: str = HOUSING) -> DepartmentNotice:
    return DepartmentNotice(
        department_id,
        notices.CHALLENGE_OPENED,
        citizen_id,
        {
            "challenge_id": "c-1",
            "decision_id": "d-1",
            "target": "data_point",
            "key": "contact.address",
            "version": 2,
        },
    )


def queue(db: Any, vault: Vault, *queued: DepartmentNotice) -> None:
    """Commit a unit of work that tells departments these things (on the vault's clock)."""
    with db.tx() as session:
        session.info[CLOCK_KEY] = vault.clock
        for notice in queued:
            tell_department(session, notice)


def rows(db: Any) -> list[OutboxMessage]:
    with db.tx() as session:
        found = session.execute(select(OutboxMessage).order_by(col(OutboxMessage.created_at)))
        return list(found.scalars())


def never_called(url: str, token: str) -> WebhookAnswer:
    raise AssertionError("nothing is due, so nothing may be sent")


# --- The notice becomes a row in the same transaction -------------------------------------


def test_a_committed_notice_leaves_exactly_one_row(
    db: Any, vault: Vault, clock: FrozenClock, citizen_id: str
) -> None:
    add_department(db, vault, HOUSING, "https://housing.example/events")
    queue(db, vault, challenge_opened(citizen_id))
    [row] = rows(db)
    assert (row.department_id, row.event, row.citizen_id) == (
        HOUSING,
        "challenge_opened",
        citizen_id,
    )
    assert row.details == challenge_opened(citizen_id).details
    assert row.created_at == row.next_attempt_at == clock()
    assert (row.attempts, row.delivered_at, row.claimed_until, row.last_error) == (0,) + (None,) * 3


def test_a_notice_in_a_transaction_that_rolls_back_leaves_no_row(
    db: Any, vault: Vault, citizen_id: str
) -> None:
    add_department(db, vault, HOUSING, "https://housing.example/events")
    with pytest.raises(RuntimeError), db.tx() as session:
        tell_department(session, challenge_opened(citizen_id))
        raise RuntimeError("the change failed")
    assert rows(db) == []


def test_a_rolled_back_notice_is_not_sent_by_the_next_commit_of_the_same_session(
    db: Any, vault: Vault, citizen_id: str
) -> None:
    add_department(db, vault, HOUSING, "https://housing.example/events")
    with Session(db.engine) as session:
        session.get(Department, HOUSING)  # the change the notice is about starts a transaction
        tell_department(session, challenge_opened(citizen_id))
        session.rollback()
        session.commit()
    assert rows(db) == []


@pytest.mark.parametrize(
    "webhook_url, department_id",
    [(None, HOUSING), ("", HOUSING), ("https://housing.example/events", BENEFITS)],
    ids=["no-webhook", "empty-webhook", "unknown-department"],
)
def test_a_department_without_a_webhook_gets_no_row(
    db: Any, vault: Vault, citizen_id: str, webhook_url: str | None, department_id: str
) -> None:
    add_department(db, vault, HOUSING, webhook_url)
    queue(db, vault, challenge_opened(citizen_id, department_id))
    assert rows(db) == []


def test_without_a_clock_on_the_session_rows_take_the_wall_clock(
    db: Any, vault: Vault, citizen_id: str
) -> None:
    add_department(db, vault, HOUSING, "https://housing.example/events")
    before = datetime.now(UTC)
    with db.tx() as session:
        tell_department(session, challenge_opened(citizen_id))
    [row] = rows(db)
    assert before <= row.created_at <= datetime.now(UTC)


def test_stopping_a_grant_tells_the_department_through_the_outbox(
    db: Any, vault: Vault, citizen_id: str
) -> None:
    add_department(db, vault, "dept-housing", "https://housing.example/events")
    with db.tx() as session:
        account = create_account(session, vault, "sam@example.org", citizen_id=citizen_id)
        me = citizen_actor(account.id, citizen_id)
        grant = give_grant(session, vault, me, ask()).grant
    assert rows(db) == []  # giving a grant tells nobody
    with db.tx() as session:
        session.info[CLOCK_KEY] = vault.clock
        revoke_grant(session, vault, me, grant.id)
    [row] = rows(db)
    assert (row.event, row.details) == ("grant_revoked", {"grant_id": grant.id})


# --- Claiming ------------------------------------------------------------------------------


def test_a_claimed_message_is_not_claimed_again_until_its_lease_ends(
    db: Any, vault: Vault, clock: FrozenClock, citizen_id: str
) -> None:
    add_department(db, vault, HOUSING, "https://housing.example/events")
    queue(db, vault, challenge_opened(citizen_id))
    with db.tx() as session:
        [claimed] = claim_due(session, clock(), lease=timedelta(seconds=60))
    assert claimed.claimed_until == clock() + timedelta(seconds=60)
    clock.advance(seconds=59)
    with db.tx() as session:
        assert claim_due(session, clock()) == []
    clock.advance(seconds=2)
    with db.tx() as session:
        assert [m.id for m in claim_due(session, clock())] == [claimed.id]


def test_claiming_takes_at_most_the_limit_oldest_first(
    db: Any, vault: Vault, clock: FrozenClock, citizen_id: str
) -> None:
    add_department(db, vault, HOUSING, "https://housing.example/events")
    for _ in range(3):
        queue(db, vault, challenge_opened(citizen_id))
        clock.advance(seconds=1)
    oldest = [row.id for row in rows(db)][:2]
    with db.tx() as session:
        assert [m.id for m in claim_due(session, clock(), limit=2)] == oldest


def test_a_message_waiting_for_its_retry_time_is_not_due(
    db: Any, vault: Vault, clock: FrozenClock, citizen_id: str
) -> None:
    add_department(db, vault, HOUSING, "https://housing.example/events")
    clock.advance(seconds=30)
    queue(db, vault, challenge_opened(citizen_id))
    with db.tx() as session:
        assert claim_due(session, clock() - timedelta(seconds=1)) == []
    assert deliver(
        db.engine, vault, ISSUER, now=clock() - timedelta(seconds=1), post=never_called
    ) == DeliveryReport(0, 0)


# --- Delivering ----------------------------------------------------------------------------


def test_a_webhook_that_fails_then_recovers_gets_the_same_event_again(
    db: Any, vault: Vault, clock: FrozenClock, citizen_id: str, webhook: Webhook, client: Any
) -> None:
    webhook.statuses = [500, 202]
    add_department(db, vault, HOUSING, webhook.url)
    queue(db, vault, challenge_opened(citizen_id))

    assert deliver(db.engine, vault, ISSUER) == DeliveryReport(sent=0, failed=1)
    [row] = rows(db)
    assert row.attempts == 1
    assert row.last_error == "The webhook answered with HTTP status 500."
    assert row.next_attempt_at == clock() + timedelta(seconds=10)
    assert (row.delivered_at, row.claimed_until) == (None, None)

    clock.advance(seconds=9)  # still inside the backoff: nothing is sent
    assert deliver(db.engine, vault, ISSUER) == DeliveryReport(0, 0)
    clock.advance(seconds=1)
    assert deliver(db.engine, vault, ISSUER) == DeliveryReport(sent=1, failed=0)
    [row] = rows(db)
    assert row.delivered_at == clock()
    assert deliver(db.engine, vault, ISSUER) == DeliveryReport(0, 0)  # never twice once accepted

    first, second = webhook.received
    assert first.jti == second.jti == row.id
    assert (second.content_type, second.accept) == ("application/secevent+jwt", "application/json")
    jwks = client.get("/jwks.json").get_json()
    claims = read_set(second.token, jwks, issuer=ISSUER, audience=HOUSING)
    assert claims["events"] == {"https://tellonce.example/secevent/challenge_opened": row.details}


def test_a_webhook_that_is_down_is_recorded_and_raises_nothing(
    db: Any, vault: Vault, clock: FrozenClock, citizen_id: str
) -> None:
    add_department(db, vault, HOUSING, refused_url())
    queue(db, vault, challenge_opened(citizen_id))
    assert deliver(db.engine, vault, ISSUER) == DeliveryReport(sent=0, failed=1)
    [row] = rows(db)
    assert row.last_error == "The webhook refused the connection."
    with db.tx() as session:
        status = outbox_status(session, clock())
    assert (status["pending"], status["failing"], status["delivered"]) == (1, 1, 0)
    [department] = status["departments"]
    assert department["department_id"] == HOUSING
    assert department["last_error"] == "The webhook refused the connection."


def test_a_webhook_that_does_not_answer_in_time_is_a_failure(
    db: Any,
    vault: Vault,
    citizen_id: str,
    webhook: Webhook,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbox, "POST_TIMEOUT_SECONDS", 0.2)
    webhook.delay = 1.0
    add_department(db, vault, HOUSING, webhook.url)
    queue(db, vault, challenge_opened(citizen_id))
    assert deliver(db.engine, vault, ISSUER) == DeliveryReport(sent=0, failed=1)
    assert rows(db)[0].last_error == "The webhook did not answer within 0.2 seconds."


def test_a_redirect_is_not_followed(
    db: Any, vault: Vault, citizen_id: str, webhook: Webhook
) -> None:
    webhook.statuses = [307]
    add_department(db, vault, HOUSING, webhook.url)
    queue(db, vault, challenge_opened(citizen_id))
    assert deliver(db.engine, vault, ISSUER) == DeliveryReport(sent=0, failed=1)
    assert rows(db)[0].last_error == "The webhook answered with HTTP status 307."
    assert len(webhook.received) == 1


def test_an_rfc_8935_error_keeps_its_code_but_not_its_description(
    db: Any, vault: Vault, citizen_id: str, webhook: Webhook
) -> None:
    webhook.statuses = [400]
    webhook.answer_body = {"err": "invalid_key", "description": "Sam Smith's key is wrong"}
    add_department(db, vault, HOUSING, webhook.url)
    queue(db, vault, challenge_opened(citizen_id))
    deliver(db.engine, vault, ISSUER)
    assert rows(db)[0].last_error == "The webhook answered with HTTP status 400 (invalid_key)."


def test_a_webhook_removed_after_queueing_is_a_failure_not_a_crash(
    db: Any, vault: Vault, citizen_id: str
) -> None:
    add_department(db, vault, HOUSING, "https://housing.example/events")
    queue(db, vault, challenge_opened(citizen_id))
    db.execute("UPDATE department SET webhook_url = NULL")
    assert deliver(db.engine, vault, ISSUER) == DeliveryReport(sent=0, failed=1)
    assert rows(db)[0].last_error == "The department has no webhook address now."


def test_the_wait_doubles_from_ten_seconds_up_to_an_hour() -> None:
    waits = [backoff(attempts).total_seconds() for attempts in range(1, 12)]
    assert waits == [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
    assert backoff(1000) == timedelta(hours=1)


def test_each_failure_waits_longer_and_the_message_is_never_given_up(
    db: Any, vault: Vault, clock: FrozenClock, citizen_id: str
) -> None:
    add_department(db, vault, HOUSING, "https://housing.example/events")
    queue(db, vault, challenge_opened(citizen_id))
    failing = lambda url, token: WebhookAnswer(503)  # noqa: E731
    for attempt in range(1, 15):
        assert deliver(db.engine, vault, ISSUER, post=failing) == DeliveryReport(0, 1)
        row = rows(db)[0]
        assert row.attempts == attempt
        assert row.next_attempt_at - clock() == backoff(attempt)
        clock.now = row.next_attempt_at
    assert deliver(db.engine, vault, ISSUER, post=lambda url, token: WebhookAnswer(202)) == (
        DeliveryReport(1, 0)
    )


def test_a_slow_batch_gives_back_what_it_could_not_send_within_its_lease(
    db: Any, vault: Vault, clock: FrozenClock, citizen_id: str
) -> None:
    add_department(db, vault, HOUSING, "https://housing.example/events")
    queue(db, vault, *[challenge_opened(citizen_id) for _ in range(3)])

    def slow(url: str, token: str) -> WebhookAnswer:
        time.sleep(0.15)
        return WebhookAnswer(202)

    report = deliver(db.engine, vault, ISSUER, post=slow, lease=timedelta(seconds=0.2))
    assert report == DeliveryReport(sent=1, failed=0)
    left = [row for row in rows(db) if row.delivered_at is None]
    assert len(left) == 2
    assert all(row.claimed_until is None and row.attempts == 0 for row in left)
    assert deliver(db.engine, vault, ISSUER, post=lambda url, token: WebhookAnswer(202)) == (
        DeliveryReport(2, 0)
    )


def test_two_workers_never_send_the_same_message(
    db: Any, vault: Vault, citizen_id: str, webhook: Webhook
) -> None:
    webhook.delay = 0.01  # long enough for the two workers' sends to overlap
    add_department(db, vault, HOUSING, webhook.url)
    queue(db, vault, *[challenge_opened(citizen_id) for _ in range(30)])
    start = threading.Barrier(2)
    reports: list[DeliveryReport] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            while True:
                report = deliver(db.engine, vault, ISSUER, limit=5)
                reports.append(report)
                if report == DeliveryReport(0, 0):
                    return
        except BaseException as exc:  # surfaced below: a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    counts = webhook.jtis()
    assert sorted(counts) == sorted(row.id for row in rows(db))
    assert set(counts.values()) == {1}
    assert webhook.overlapped == []
    assert sum(report.sent for report in reports) == 30
    assert all(row.delivered_at is not None for row in rows(db))


# --- What the operator sees ----------------------------------------------------------------


def test_the_status_counts_waiting_delivered_and_failing_messages(
    db: Any, vault: Vault, clock: FrozenClock, citizen_id: str
) -> None:
    with db.tx() as session:
        assert outbox_status(session, clock()) == {
            "pending": 0,
            "delivered": 0,
            "failing": 0,
            "oldest_pending_seconds": None,
            "departments": [],
        }
    add_department(db, vault, HOUSING, "https://housing.example/events")
    add_department(db, vault, BENEFITS, "https://benefits.example/events")
    queue(db, vault, challenge_opened(citizen_id))  # will be delivered
    clock.advance(seconds=5)
    queue(db, vault, challenge_opened(citizen_id, BENEFITS))  # will fail
    clock.advance(seconds=5)

    def answer(url: str, token: str) -> WebhookAnswer:
        return WebhookAnswer(202 if "housing" in url else 502)

    deliver(db.engine, vault, ISSUER, post=answer)
    queue(db, vault, challenge_opened(citizen_id))  # waiting, not tried yet
    clock.advance(seconds=90)
    with db.tx() as session:
        status = outbox_status(session, clock())
    assert (status["pending"], status["delivered"], status["failing"]) == (2, 1, 1)
    assert status["oldest_pending_seconds"] == 95
    assert status["departments"] == [
        {
            "department_id": BENEFITS,
            "name": "Department dept-benefits",
            "failing": 1,
            "last_error": "The webhook answered with HTTP status 502.",
            "next_attempt_at": clock() - timedelta(seconds=80),
        }
    ]
