"""Row ids: time-ordered where the public log names the row, random where it never shows."""

from __future__ import annotations

import time
import uuid

import connectors.events  # noqa: F401  (registers the department event kinds)
import consent.events  # noqa: F401  (registers the grant, access and decision kinds)
import vault.events  # noqa: F401  (registers the citizen and record kinds)
from consent.models import AccessEvent, Grant
from vault.models import Account, Citizen, DataPoint, new_id, new_time_ordered_id
from vault.rows import event_kinds


def test_a_time_ordered_id_is_a_version_7_uuid_that_starts_with_the_time() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid.UUID(new_time_ordered_id())
    after = time.time_ns() // 1_000_000

    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after


def test_ids_made_in_a_later_millisecond_sort_after_earlier_ones() -> None:
    first = new_time_ordered_id()
    time.sleep(0.002)
    later = [new_time_ordered_id() for _ in range(50)]

    assert all(first < other for other in later)
    assert len({first, *later}) == 51  # the random part keeps ids apart within a millisecond


def test_rows_the_public_log_names_get_time_ordered_ids_and_people_keep_random_ones() -> None:
    # A leaf that names a row by id gives its time already, so an ordered id says nothing new
    # and keeps inserts at the end of the indexes. A person's or account's id never appears in
    # the public log and must not tell anyone when they joined.
    for kind in event_kinds().values():
        factory = kind.model.model_fields["id"].default_factory
        if factory is None:
            continue  # ids chosen by people, such as a department's client_id
        expected = new_time_ordered_id if kind.id_in_leaf else new_id
        assert factory is expected, kind.name

    assert Citizen.model_fields["id"].default_factory is new_id
    assert Account.model_fields["id"].default_factory is new_id
    for busiest in (DataPoint, AccessEvent, Grant):
        assert uuid.UUID(busiest().id).version == 7
    assert uuid.UUID(Citizen().id).version == 4
