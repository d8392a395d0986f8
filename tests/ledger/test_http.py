"""The public ledger API, used the way an outside auditor would use it."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest

from tests.ledger.builders import build_log
from vault import ledger, merkle, note

SIZE = 1_234


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@pytest.fixture
def log(db: Any, vault: Any) -> int:
    """A log longer than one page of entries."""
    with db.tx() as session:
        build_log(session, vault, SIZE)
    return SIZE


def signed_checkpoint(client: Any) -> note.Checkpoint:
    response = client.get("/ledger/checkpoint")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.headers["Cache-Control"] == "no-store"
    key = client.get("/ledger/public-key")
    assert key.status_code == 200 and key.mimetype == "text/plain"
    text = note.open_note(response.get_data(as_text=True), key.get_data(as_text=True).strip())
    return note.parse_checkpoint(text)


def all_entries(client: Any, size: int) -> list[bytes]:
    leaves: list[bytes] = []
    while len(leaves) < size:
        response = client.get(f"/ledger/entries?start={len(leaves)}&end={size + 5_000}")
        assert response.status_code == 200
        page = response.get_json()["entries"]
        assert 0 < len(page) <= 1_000
        assert [e["index"] for e in page] == list(range(len(leaves), len(leaves) + len(page)))
        leaves += [e["leaf"].encode("utf-8") for e in page]
    return leaves


def test_checkpoint_is_a_signed_note_for_the_whole_log(client: Any, log: int) -> None:
    checkpoint = signed_checkpoint(client)
    assert checkpoint.origin == "test.tellonce/ledger"
    assert checkpoint.size == log
    leaves = all_entries(client, log)
    assert len(leaves) == log
    # An auditor who fetched every entry gets the signed root by hashing them.
    assert merkle.root_of([merkle.leaf_hash(leaf) for leaf in leaves]) == checkpoint.root_hash


def test_checkpoint_catches_up_with_new_entries(client: Any, db: Any, vault: Any, log: int) -> None:
    first = signed_checkpoint(client)
    with db.tx() as session:
        build_log(session, vault, 3, citizens=1)
    second = signed_checkpoint(client)
    assert (first.size, second.size) == (log, log + 3)
    proof = client.get(f"/ledger/proof/consistency?from={first.size}&to={second.size}").get_json()
    assert b64(proof["from_root_hash"]) == first.root_hash
    assert b64(proof["to_root_hash"]) == second.root_hash
    path = [b64(h) for h in proof["consistency_path"]]
    assert merkle.verify_consistency(
        first.size, second.size, first.root_hash, second.root_hash, path
    )


def test_a_page_of_entries_holds_at_most_1000(client: Any, log: int) -> None:
    response = client.get("/ledger/entries?start=0&end=5000")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_json()["entries"]
    assert len(page) == 1_000
    assert [e["index"] for e in page] == list(range(1_000))
    tail = client.get(f"/ledger/entries?start=1200&end={log}").get_json()["entries"]
    assert [e["index"] for e in tail] == list(range(1_200, log))
    one = client.get("/ledger/entries?start=7&end=8").get_json()["entries"]
    assert [e["index"] for e in one] == [7]


def test_entries_hash_to_the_leaves_their_inclusion_proofs_prove(client: Any, log: int) -> None:
    checkpoint = signed_checkpoint(client)
    leaves = all_entries(client, log)
    for index in sorted({0, 1, 511, 512, 999, 1_000, 1_023, 1_024, log - 1, *range(3, log, 97)}):
        for size in (index + 1, log):
            response = client.get(f"/ledger/proof/inclusion?index={index}&tree_size={size}")
            assert response.status_code == 200
            body = response.get_json()
            assert (body["index"], body["tree_size"]) == (index, size)
            leaf_hash = b64(body["leaf_hash"])
            assert leaf_hash == hashlib.sha256(b"\x00" + leaves[index]).digest()
            root = b64(body["root_hash"])
            path = [b64(h) for h in body["inclusion_path"]]
            assert merkle.verify_inclusion(leaf_hash, index, size, path, root)
            if size == log:
                assert root == checkpoint.root_hash


def test_consistency_proofs_verify(client: Any, log: int) -> None:
    for old, new in [(1, 1), (1, 2), (7, 8), (512, 1_024), (600, log), (1_000, 1_001), (3, log)]:
        response = client.get(f"/ledger/proof/consistency?from={old}&to={new}")
        assert response.status_code == 200
        body = response.get_json()
        assert (body["from"], body["to"]) == (old, new)
        path = [b64(h) for h in body["consistency_path"]]
        old_root, new_root = b64(body["from_root_hash"]), b64(body["to_root_hash"])
        assert merkle.verify_consistency(old, new, old_root, new_root, path), (old, new)


def test_public_key_is_the_ledgers_verifier_key(client: Any, vault: Any) -> None:
    response = client.get("/ledger/public-key")
    assert response.get_data(as_text=True) == ledger.verifier_key(vault) + "\n"


HUGE = "9" * 30
BAD_REQUESTS = [
    # entries
    "/ledger/entries",
    "/ledger/entries?start=0",
    "/ledger/entries?end=5",
    "/ledger/entries?start=&end=",
    "/ledger/entries?start=-1&end=5",
    "/ledger/entries?start=abc&end=5",
    "/ledger/entries?start=1.5&end=3",
    "/ledger/entries?start=5&end=5",
    "/ledger/entries?start=10&end=2",
    f"/ledger/entries?start={SIZE}&end={SIZE + 10}",
    f"/ledger/entries?start={HUGE}&end={HUGE}9",
    "/ledger/entries?start=0&end=-4",
    # inclusion proofs
    "/ledger/proof/inclusion",
    "/ledger/proof/inclusion?index=3",
    "/ledger/proof/inclusion?tree_size=3",
    "/ledger/proof/inclusion?index=-1&tree_size=5",
    "/ledger/proof/inclusion?index=5&tree_size=5",
    "/ledger/proof/inclusion?index=0&tree_size=0",
    "/ledger/proof/inclusion?index=0&tree_size=-3",
    f"/ledger/proof/inclusion?index=0&tree_size={SIZE + 1}",
    f"/ledger/proof/inclusion?index={HUGE}&tree_size={HUGE}",
    "/ledger/proof/inclusion?index=x&tree_size=5",
    "/ledger/proof/inclusion?index=1&tree_size=NaN",
    "/ledger/proof/inclusion?index=1e3&tree_size=2000",
    # consistency proofs
    "/ledger/proof/consistency",
    "/ledger/proof/consistency?from=1",
    "/ledger/proof/consistency?to=5",
    "/ledger/proof/consistency?from=0&to=5",
    "/ledger/proof/consistency?from=-1&to=3",
    "/ledger/proof/consistency?from=6&to=5",
    f"/ledger/proof/consistency?from=1&to={SIZE + 1}",
    f"/ledger/proof/consistency?from={HUGE}&to={HUGE}",
    "/ledger/proof/consistency?from=a&to=b",
    "/ledger/proof/consistency?from=2&to=Infinity",
]


def _plain_error(response: Any, url: str) -> None:
    assert response.status_code == 400, url
    assert response.mimetype == "application/json", url
    body = response.get_json()
    assert set(body) == {"error", "message"}, url
    message = body["message"]
    assert isinstance(message, str) and message.strip(), url
    for jargon in ("Traceback", "Exception", "marshmallow", "sqlalchemy", "_schema", "{"):
        assert jargon not in message, (url, message)


def test_bad_parameters_get_a_plain_400_never_a_500(client: Any, log: int) -> None:
    for url in BAD_REQUESTS:
        _plain_error(client.get(url), url)


def test_an_empty_ledger_answers_plainly(client: Any) -> None:
    for url in ("/ledger/entries?start=0&end=10", "/ledger/proof/inclusion?index=0&tree_size=1"):
        _plain_error(client.get(url), url)
    response = client.get("/ledger/checkpoint")
    assert response.status_code < 500
    assert set(response.get_json()) == {"error", "message"}
