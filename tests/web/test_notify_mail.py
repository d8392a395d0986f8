"""Emails telling people there is news: as often as they chose, never saying what happened."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from consent.citizen_notices import notify_citizen
from consent.decision_models import CitizenNotice, NotificationChoice
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.clock import FrozenClock
from vault.lifecycle import erase_citizen
from vault.services import Vault
from web.mail import read_outbox
from web.notify_mail import send_due_citizen_emails

BASE_URL = "https://tellonce.example"
NEWS = (
    "There is news about your information on Tell Once: a decision, or an answer to "
    "something you said was wrong.\n\nSign in to see it: https://tellonce.example/\n"
)


@pytest.fixture
def in_app(app: Any) -> Iterator[None]:
    """Mail is written to the app's MAIL_DIR, so sending needs its context."""
    with app.app_context():
        yield


@pytest.fixture
def make_citizen(db: Any, vault: Vault) -> Callable[..., str]:
    def make(email: str | None = "sam@example.org", choice: str | None = None) -> str:
        with db.tx() as session:
            citizen_id = create_citizen(session, vault).id
            if email is not None:
                create_account(session, vault, email, citizen_id=citizen_id)
            if choice is not None:
                session.add(
                    NotificationChoice(
                        citizen_id=citizen_id, choice=choice, updated_at=vault.clock()
                    )
                )
        return citizen_id

    return make


def news(db: Any, vault: Vault, citizen_id: str, count: int = 1) -> None:
    with db.tx() as session:
        for number in range(count):
            notify_citizen(session, citizen_id, "decision_recorded", f"d-{number}", vault.clock())


def send(db: Any, vault: Vault, **kwargs: Any) -> int:
    return send_due_citizen_emails(db.engine, vault, base_url=BASE_URL, **kwargs)


def emails(app: Any) -> list[Any]:
    return read_outbox(app.config["MAIL_DIR"])


def text(email: Any) -> str:
    """The email's body as the person reads it (files keep SMTP's CRLF line ends)."""
    return str(email.get_content()).replace("\r\n", "\n")


def waiting(db: Any) -> int:
    with db.tx() as session:
        found = session.execute(
            select(CitizenNotice).where(col(CitizenNotice.emailed_at).is_(None))
        )
        return len(list(found.scalars()))


def test_someone_who_chose_every_time_gets_one_email_that_says_only_there_is_news(
    db: Any, vault: Vault, app: Any, in_app: None, make_citizen: Callable[..., str]
) -> None:
    sam = make_citizen()
    news(db, vault, sam)
    assert send(db, vault) == 1
    [email] = emails(app)
    assert (email["To"], email["Subject"]) == (
        "sam@example.org",
        "News about your information on Tell Once",
    )
    assert text(email) == NEWS
    assert send(db, vault) == 0  # the same news is not emailed twice
    assert len(emails(app)) == 1


def test_several_things_at_once_make_one_email(
    db: Any, vault: Vault, app: Any, in_app: None, make_citizen: Callable[..., str]
) -> None:
    news(db, vault, make_citizen(), count=3)
    assert send(db, vault) == 1
    assert waiting(db) == 0


def test_someone_who_chose_daily_gets_one_summary_a_day(
    db: Any,
    vault: Vault,
    clock: FrozenClock,
    app: Any,
    in_app: None,
    make_citizen: Callable[..., str],
) -> None:
    sam = make_citizen(choice="daily")
    news(db, vault, sam, count=3)
    assert send(db, vault) == 1
    [summary] = emails(app)
    assert text(summary) == (
        "3 things happened today about your information on Tell Once: decisions, or answers "
        "to something you said was wrong.\n\nSign in to see them: https://tellonce.example/\n"
    )
    clock.advance(hours=23)
    news(db, vault, sam)
    assert send(db, vault) == 0  # not a second email on the same day
    clock.advance(hours=1)
    assert send(db, vault) == 1
    assert text(emails(app)[-1]).startswith("1 thing happened today")


def test_someone_who_chose_quiet_gets_no_email(
    db: Any, vault: Vault, app: Any, in_app: None, make_citizen: Callable[..., str]
) -> None:
    news(db, vault, make_citizen(choice="quiet"))
    assert send(db, vault) == 0
    assert emails(app) == []


def test_someone_without_an_email_address_is_skipped_and_marked(
    db: Any, vault: Vault, app: Any, in_app: None, make_citizen: Callable[..., str]
) -> None:
    news(db, vault, make_citizen(email=None))
    assert send(db, vault) == 0
    assert emails(app) == []
    assert waiting(db) == 0  # not looked at again on every pass


def test_an_erased_person_is_never_emailed(
    db: Any, vault: Vault, app: Any, in_app: None, make_citizen: Callable[..., str]
) -> None:
    sam = make_citizen()
    news(db, vault, sam)
    with db.tx() as session:
        erase_citizen(session, vault, sam)
    assert send(db, vault) == 0
    assert emails(app) == []


def test_when_the_mail_server_is_down_the_news_waits_for_the_next_pass(
    db: Any, vault: Vault, app: Any, in_app: None, make_citizen: Callable[..., str]
) -> None:
    news(db, vault, make_citizen("sam@example.org"))
    news(db, vault, make_citizen("alex@example.org"))
    tried: list[str] = []

    def down(to: str, subject: str, body: str) -> None:
        tried.append(to)
        raise ConnectionRefusedError

    assert send(db, vault, send=down) == 0
    assert len(tried) == 1  # the first failure stops the pass: the server is down for all
    assert waiting(db) == 2
    assert send(db, vault) == 2
    assert sorted(email["To"] for email in emails(app)) == ["alex@example.org", "sam@example.org"]
