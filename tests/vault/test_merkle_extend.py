"""``TreeBuilder.extend_reporting`` (the ledger's batch append) reports exactly the inner nodes
that ``append`` reports one leaf at a time, and leaves the builder in the same state."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from vault import merkle


def _leaf(n: int) -> bytes:
    return hashlib.sha256(n.to_bytes(8, "big")).digest()


@settings(max_examples=60, deadline=None)
@given(before=st.integers(0, 300), batch=st.integers(0, 300))
def test_a_batch_completes_the_nodes_single_appends_do(before: int, batch: int) -> None:
    one_by_one = merkle.TreeBuilder()
    for n in range(before):
        one_by_one.append(_leaf(n))
    batched = merkle.TreeBuilder.from_frontier(before, one_by_one.frontier)
    expected = [
        node
        for n in range(before, before + batch)
        for node in one_by_one.append(_leaf(n))
        if node[0] > 0
    ]
    assert batched.extend_reporting(_leaf(n) for n in range(before, before + batch)) == expected
    assert (batched.size, batched.frontier) == (one_by_one.size, one_by_one.frontier)
    assert batched.root() == merkle.root_of([_leaf(n) for n in range(before + batch)])
