"""Proofs served from the database verify against roots computed independently of our code,
and the signed checkpoint at the head names the same root."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from tests.ledger.builders import KEYS, bulk_data_points
from vault import catalogue, ledger, merkle, note
from vault.citizens import create_citizen
from vault.errors import InvalidValue
from vault.models import LedgerCheckpoint, LedgerEntry
from vault.records import record_data_point, record_story_section

SIZE = 70


def reference_root(hashes: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.1 MTH, written from the RFC text (not from vault.merkle)."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    left, right = reference_root(hashes[:k]), reference_root(hashes[k:])
    return hashlib.sha256(b"\x01" + left + right).digest()


@pytest.fixture
def log70(db: Any, vault: Any, clock: Any) -> list[bytes]:
    """A 70-entry log grown in uneven transactions, with checkpoints signed along the way."""
    rng = random.Random(70)
    with db.tx() as session:
        people = [create_citizen(session, vault) for _ in range(3)]
    size = 3
    while size < SIZE:
        clock.advance(seconds=rng.choice([0, 0, 2]))  # a checkpoint is due after a second
        step = min(rng.choice([1, 1, 2, 5, 9]), SIZE - size)
        with db.tx() as session:
            person = people[size % 3]
            if step == 1 and size % 2:
                record_story_section(
                    session, vault, person.id, "money", "Rent is late.", recorded_by="x"
                )
            elif step == 1:
                key = KEYS[size % len(KEYS)]
                value = catalogue.entry(key).example
                record_data_point(session, vault, person.id, key, value, recorded_by="x")
            else:
                bulk_data_points(session, vault, person, step)
        size += step
    with db.tx() as session:
        rows = session.execute(
            select(col(LedgerEntry.idx), col(LedgerEntry.leaf)).order_by(col(LedgerEntry.idx))
        ).all()
    assert [i for i, _ in rows] == list(range(SIZE))
    return [hashlib.sha256(b"\x00" + bytes(leaf)).digest() for _, leaf in rows]


def test_root_at_every_size_matches_the_rfc(db: Any, log70: list[bytes]) -> None:
    with db.tx() as session:
        for size in range(SIZE + 1):
            assert ledger.root_at(session, size) == reference_root(log70[:size]), size


def test_every_inclusion_proof_verifies(db: Any, log70: list[bytes]) -> None:
    roots = [reference_root(log70[:m]) for m in range(SIZE + 1)]
    with db.tx() as session:
        for index in range(SIZE):
            # Every index in the smallest tree that holds it, a middle one and the whole log,
            # plus every size for the indexes at the edges of perfect subtrees.
            sizes = {index + 1, (index + 1 + SIZE) // 2, SIZE}
            if index in (0, 1, 31, 32, 63, 64, 69):
                sizes = set(range(index + 1, SIZE + 1))
            for size in sorted(sizes):
                proof = ledger.inclusion_proof(session, index, size)
                leaf = log70[index]
                assert merkle.verify_inclusion(leaf, index, size, proof, roots[size]), (index, size)
                # And the same proof does not vouch for a neighbour or another tree.
                other = log70[(index + 1) % SIZE]
                assert not merkle.verify_inclusion(other, index, size, proof, roots[size])
                if size < SIZE:
                    assert not merkle.verify_inclusion(leaf, index, size, proof, roots[size + 1])


def test_consistency_proofs_verify_for_many_size_pairs(db: Any, log70: list[bytes]) -> None:
    roots = [reference_root(log70[:m]) for m in range(SIZE + 1)]
    rng = random.Random(9162)
    pairs = {(a, b) for a in range(1, SIZE + 1) for b in (a, a + 1, 64, SIZE) if a <= b <= SIZE}
    pairs |= {tuple(sorted(rng.sample(range(1, SIZE + 1), 2))) for _ in range(150)}
    assert len(pairs) > 300
    with db.tx() as session:
        for old, new in sorted(pairs):
            proof = ledger.consistency_proof(session, old, new)
            assert merkle.verify_consistency(old, new, roots[old], roots[new], proof), (old, new)
            if old < new:
                forged_old = roots[old - 1] if old > 1 else roots[new]
                assert not merkle.verify_consistency(old, new, forged_old, roots[new], proof)


def test_the_head_root_is_the_root_of_the_latest_signed_checkpoint(
    db: Any, vault: Any, log70: list[bytes]
) -> None:
    with db.tx() as session:
        made = ledger.make_checkpoint(session, vault)
    with db.tx() as session:
        latest = ledger.latest_checkpoint(session)
        head = ledger.head_size(session)
        head_root = ledger.root_at(session, head)
        stored = session.execute(select(LedgerCheckpoint)).scalars().all()
    assert made is not None and latest is not None
    signed = note.parse_checkpoint(note.open_note(latest.note, ledger.verifier_key(vault)))
    assert (signed.origin, signed.size) == (vault.ledger_origin, SIZE)
    assert head == SIZE
    assert signed.root_hash == head_root == reference_root(log70)
    # Every checkpoint signed along the way is a prefix of today's log.
    assert len(stored) >= 3
    with db.tx() as session:
        for checkpoint in stored:
            old = note.parse_checkpoint(note.open_note(checkpoint.note, ledger.verifier_key(vault)))
            assert old.root_hash == reference_root(log70[: old.size])
            if old.size < SIZE:
                proof = ledger.consistency_proof(session, old.size, SIZE)
                assert merkle.verify_consistency(
                    old.size, SIZE, old.root_hash, signed.root_hash, proof
                )


def test_proofs_outside_the_log_are_refused_plainly(db: Any, log70: list[bytes]) -> None:
    with db.tx() as session:
        for index, size in [(-1, 5), (5, 5), (0, 0), (0, SIZE + 1), (SIZE, SIZE + 1)]:
            with pytest.raises(InvalidValue, match="must be between"):
                ledger.inclusion_proof(session, index, size)
        for old, new in [(0, 5), (6, 5), (1, SIZE + 1), (-1, 3)]:
            with pytest.raises(InvalidValue, match="must be between"):
                ledger.consistency_proof(session, old, new)
