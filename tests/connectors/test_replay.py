"""The shared replay cache: a one-time id is accepted once, by whichever worker sees it first."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from connectors.models import SeenJti
from connectors.replay import MAX_KEY_LENGTH, purge_expired, remember_jti
from vault.clock import FrozenClock


def _stored_keys_in(session: Any) -> list[str]:
    return list(session.execute(select(col(SeenJti.key))).scalars())


def _stored_keys(db: Any) -> list[str]:
    with db.tx() as session:
        return _stored_keys_in(session)


def test_a_new_id_is_accepted(db: Any, clock: FrozenClock) -> None:
    with db.tx() as session:
        assert remember_jti(session, "dpop:abc:1", clock() + timedelta(minutes=1)) is True


def test_the_same_id_again_is_a_replay(db: Any, clock: FrozenClock) -> None:
    expires = clock() + timedelta(minutes=1)
    with db.tx() as session:
        assert remember_jti(session, "dpop:abc:1", expires) is True
        assert remember_jti(session, "dpop:abc:1", expires) is False


def test_a_replay_to_another_worker_is_caught(db: Any, clock: FrozenClock) -> None:
    expires = clock() + timedelta(minutes=1)
    with db.tx() as first_worker:
        assert remember_jti(first_worker, "dpop:abc:1", expires) is True
    with db.tx() as second_worker:
        assert remember_jti(second_worker, "dpop:abc:1", expires) is False


def test_different_ids_do_not_block_each_other(db: Any, clock: FrozenClock) -> None:
    expires = clock() + timedelta(minutes=1)
    with db.tx() as session:
        assert remember_jti(session, "dpop:abc:1", expires) is True
        assert remember_jti(session, "dpop:abc:2", expires) is True


def test_a_replay_leaves_the_transaction_usable(db: Any, clock: FrozenClock) -> None:
    # On PostgreSQL a failed INSERT would abort the whole transaction; ON CONFLICT must not.
    expires = clock() + timedelta(minutes=1)
    with db.tx() as session:
        remember_jti(session, "dpop:abc:1", expires)
    with db.tx() as session:
        assert remember_jti(session, "dpop:abc:1", expires) is False
        assert remember_jti(session, "dpop:abc:2", expires) is True
    assert sorted(_stored_keys(db)) == ["dpop:abc:1", "dpop:abc:2"]


def test_an_id_is_not_used_up_if_the_callers_work_fails(db: Any, clock: FrozenClock) -> None:
    expires = clock() + timedelta(minutes=1)
    with pytest.raises(RuntimeError), db.tx() as session:
        remember_jti(session, "dpop:abc:1", expires)
        raise RuntimeError("the rest of the request failed")
    with db.tx() as session:
        assert remember_jti(session, "dpop:abc:1", expires) is True


def test_long_ids_are_stored_hashed_and_still_caught(db: Any, clock: FrozenClock) -> None:
    expires = clock() + timedelta(minutes=1)
    long_key = "dpop:" + "a" * 300
    with db.tx() as session:
        assert remember_jti(session, long_key, expires) is True
        assert remember_jti(session, long_key + "b", expires) is True
    with db.tx() as session:
        assert remember_jti(session, long_key, expires) is False
    keys = _stored_keys(db)
    assert len(keys) == 2
    assert all(len(key) <= MAX_KEY_LENGTH for key in keys)


@pytest.mark.parametrize("awkward", ["dpop:\x00nul", "dpop:\ud800lone-surrogate", "dpop:café"])
def test_ids_with_characters_a_database_dislikes_still_work(
    db: Any, clock: FrozenClock, awkward: str
) -> None:
    expires = clock() + timedelta(minutes=1)
    with db.tx() as session:
        assert remember_jti(session, awkward, expires) is True
    with db.tx() as session:
        assert remember_jti(session, awkward, expires) is False


def test_a_short_id_that_looks_hashed_cannot_collide_with_a_hash(
    db: Any, clock: FrozenClock
) -> None:
    expires = clock() + timedelta(minutes=1)
    long_key = "x" * 200
    with db.tx() as session:
        assert remember_jti(session, long_key, expires) is True
        (stored,) = _stored_keys_in(session)
        # Someone sends, as their own id, exactly what the long one was stored as.
        assert remember_jti(session, stored, expires) is True


def test_racing_workers_accept_an_id_exactly_once(db: Any, clock: FrozenClock) -> None:
    workers = 20
    expires = clock() + timedelta(minutes=1)
    start = threading.Barrier(workers)
    results: list[bool] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            with db.tx() as session:
                results.append(remember_jti(session, "dpop:abc:race", expires))
        except BaseException as error:  # reported below, so a failure is not lost in a thread
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [False] * (workers - 1) + [True]


def test_purge_removes_only_expired_ids(db: Any, clock: FrozenClock) -> None:
    now = clock()
    with db.tx() as session:
        remember_jti(session, "expired-long-ago", now - timedelta(hours=1))
        remember_jti(session, "expired-just-now", now - timedelta(seconds=1))
        remember_jti(session, "expires-this-instant", now)
        remember_jti(session, "still-live", now + timedelta(seconds=30))
    with db.tx() as session:
        assert purge_expired(session, now) == 2
    assert sorted(_stored_keys(db)) == ["expires-this-instant", "still-live"]


def test_a_purged_id_can_be_used_again(db: Any, clock: FrozenClock) -> None:
    # Safe because a proof old enough to be purged is refused by its iat before this point.
    with db.tx() as session:
        remember_jti(session, "dpop:abc:1", clock() + timedelta(seconds=65))
    clock.advance(seconds=66)
    with db.tx() as session:
        assert remember_jti(session, "dpop:abc:1", clock() + timedelta(seconds=65)) is False
        purge_expired(session, clock())
        assert remember_jti(session, "dpop:abc:1", clock() + timedelta(seconds=65)) is True
