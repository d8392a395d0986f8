"""``ledger.leaf_bytes`` builds the named leaf from the members either side of "citizen"; it must
give, byte for byte, the canonical JSON of the whole body with the name put in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import vault.events
from vault import ledger
from vault.rows import canonical_json, event_kind, row_digest

KEY = ledger.CitizenLedgerKey(b"k" * 32)
KIND = vault.events.DATA_POINT_RECORDED.name
ROW = SimpleNamespace(
    id="7f0c3c1e-1a55-4a53-9a77-1f3a4b5c6d7e",
    citizen_id="c1",
    key="identity.name",
    version=3,
    ciphertext=b"sealed",
    source="self",
    recorded_by="citizen:c1",
    recorded_at=datetime(2026, 11, 26, 8, 0, tzinfo=UTC),
    status="current",
)


def reference_leaf(event: ledger.LedgerEvent) -> bytes:
    """The leaf as format 2 defines it: the body, then the body with the person's name in it."""
    kind = event_kind(event.kind)
    body: dict[str, Any] = {
        **event.details,
        "v": ledger.LEAF_FORMAT,
        "kind": kind.name,
        "at": event.at.isoformat(),
        "ref": {"table": kind.table, "id": str(event.row.id)},  # type: ignore[attr-defined]
        "row_sha256": row_digest(kind, event.row),
    }
    if event.citizen_key is None:
        return canonical_json(body)
    return canonical_json({**body, "citizen": event.citizen_key.name_for(canonical_json(body))})


# Keys that sort on both sides of "citizen" (and next to it), values of every JSON shape,
# nested objects whose own keys could be mistaken for top-level ones.
names = st.sampled_from(["a", "ask", "b", "ch", "citizem", "citizen_", "cj", "key", "z", "é"])
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.sampled_from(['"', "\\", "\n"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names | st.text(), inner),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    details=st.dictionaries(names.filter(lambda n: n not in ("citizen",)), values, max_size=5),
    named=st.booleans(),
    seconds=st.integers(0, 10**9),
)
def test_leaf_bytes_match_the_format(details: dict[str, Any], named: bool, seconds: int) -> None:
    event = ledger.LedgerEvent(
        KIND,
        ROW,  # type: ignore[arg-type]
        datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds),
        citizen_key=KEY if named else None,
        details=details,
    )
    leaf = ledger.leaf_bytes(event)
    assert leaf == reference_leaf(event)
    assert ledger.is_about(KEY, leaf) is named
