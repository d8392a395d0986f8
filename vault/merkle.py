"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and verifiers.

Only section 2.1 of the RFC is implemented: SHA-256 with the 0x00 leaf and 0x01 node
prefixes, inclusion proofs (PATH) and consistency proofs (SUBPROOF), and their
verifiers. Nothing here touches a database: the storage layer persists the node
hashes that `TreeBuilder.append` reports and answers `get_node(level, index)`.

Node addressing: the perfect subtree at `level` L and `index` i covers the leaves
[i * 2**L, (i + 1) * 2**L). A leaf hash is the node at level 0.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from vault.errors import InvalidValue

HASH_SIZE = 32

# Bound at import so the hot loops below do one local lookup, not two attribute ones.
_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT: bytes = _sha256(b"").digest()

NodeAddress = tuple[int, int]
Plan = list[list[NodeAddress]]


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf's bytes: SHA-256(0x00 || data)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two child hashes into their parent: SHA-256(0x01 || left || right)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """Return the RFC's split point k: the largest power of two strictly below n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: bytes, what: str) -> None:
    """Raise InvalidValue unless value is a 32-byte hash."""
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise InvalidValue(f"The {what} must be a {HASH_SIZE}-byte hash.")


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash (MTH) of already-hashed leaves."""
    if not leaf_hashes:
        return EMPTY_ROOT
    # Level by level, left to right: pairing adjacent nodes and carrying an odd last
    # node up unchanged gives exactly the RFC's "split at the largest power of two"
    # shape, without recursion or list slicing.
    level = list(leaf_hashes)
    sha = _sha256
    while len(level) > 1:
        paired = [
            sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return bytes(level[0])


def combine_range(hashes: Sequence[bytes]) -> bytes:
    """Fold the perfect-node hashes of one proof element, right to left, into its hash."""
    if not hashes:
        raise InvalidValue("A range needs at least one node hash to combine.")
    # The RFC's MTH of a right-edge range splits off the largest perfect subtree on the
    # left each time, so the rightmost node is the deepest: fold from the right.
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


def range_nodes(start: int, end: int) -> list[NodeAddress]:
    """Return the perfect subtrees (level, index) that tile leaves [start, end), left to right."""
    if start < 0 or end < start:
        raise InvalidValue(f"The leaf range [{start}, {end}) is not a valid range.")
    # combine_range over this tiling equals the RFC's MTH(D[start:end]) only when the
    # range is a node of the RFC tree (start aligned to a power of two >= its width),
    # which every range the proof plans ask for is.
    nodes: list[NodeAddress] = []
    while start < end:
        # The biggest block that is both aligned at `start` and fits before `end`.
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while (1 << level) > end - start:
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def inclusion_proof_plan(index: int, size: int) -> Plan:
    """Return, per element of the RFC 9162 inclusion proof, the perfect nodes that make it."""
    if size <= 0:
        raise InvalidValue(f"Tree size {size} has no inclusion proofs.")
    if not 0 <= index < size:
        raise InvalidValue(f"Index {index} is outside a tree of size {size}.")
    # Walk PATH(m, D[start:end]) from the root down; the RFC lists siblings from the
    # leaf up, so the collected steps are reversed at the end.
    steps: Plan = []
    start, end = 0, size
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            steps.append(range_nodes(start + k, end))
            end = start + k
        else:
            level = k.bit_length() - 1
            steps.append([(level, start >> level)])
            start += k
    steps.reverse()
    return steps


def consistency_proof_plan(old_size: int, new_size: int) -> Plan:
    """Return, per element of the RFC 9162 consistency proof, the perfect nodes that make it."""
    if old_size <= 0:
        raise InvalidValue(f"Tree size {old_size} has no consistency proofs (it must be above 0).")
    if old_size > new_size:
        raise InvalidValue(
            f"The old tree size {old_size} is larger than the new tree size {new_size}."
        )
    # SUBPROOF(m, D[start:start+n], b), unrolled. Only a left step keeps b true, and
    # a left step always leaves a perfect n, so the final node (when b is false) is
    # a single perfect subtree.
    steps: Plan = []
    start, m, n, whole = 0, old_size, new_size, True
    while m != n:
        k = _largest_power_of_two_below(n)
        if m <= k:
            steps.append(range_nodes(start + k, start + n))
            n = k
        else:
            level = k.bit_length() - 1
            steps.append([(level, start >> level)])
            start += k
            m -= k
            n -= k
            whole = False
    steps.reverse()
    if not whole:
        steps.insert(0, range_nodes(start, start + n))
    return steps


def _fetch(plan: Plan, get_node: Callable[[int, int], bytes]) -> list[bytes]:
    """Resolve a plan into proof hashes through the storage callback."""
    return [combine_range([get_node(level, i) for level, i in element]) for element in plan]


def inclusion_proof(index: int, size: int, get_node: Callable[[int, int], bytes]) -> list[bytes]:
    """Build the RFC 9162 inclusion proof of leaf `index` in a tree of `size` leaves."""
    return _fetch(inclusion_proof_plan(index, size), get_node)


def consistency_proof(
    old_size: int, new_size: int, get_node: Callable[[int, int], bytes]
) -> list[bytes]:
    """Build the RFC 9162 consistency proof between trees of `old_size` and `new_size`."""
    return _fetch(consistency_proof_plan(old_size, new_size), get_node)


def _all_hashes(*values: object) -> bool:
    """Tell whether every value is a 32-byte bytes object."""
    return all(isinstance(v, bytes) and len(v) == HASH_SIZE for v in values)


def _is_int(value: object) -> bool:
    """Tell whether value is a real int (bool is an int subclass but never a size)."""
    return isinstance(value, int) and not isinstance(value, bool)


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check an inclusion proof exactly per RFC 9162 section 2.1.3.2; never raises."""
    try:
        if not (_is_int(index) and _is_int(size) and 0 <= index < size):
            return False
        path = list(proof)
        if not _all_hashes(leaf_hash, root, *path):
            return False
        fn, sn = index, size - 1
        r = leaf_hash
        for p in path:
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                r = node_hash(p, r)
                if not fn & 1:
                    while not (fn & 1 or fn == 0):
                        fn >>= 1
                        sn >>= 1
            else:
                r = node_hash(r, p)
            fn >>= 1
            sn >>= 1
        return sn == 0 and r == root
    except (TypeError, ValueError):
        # Junk inside the proof (a non-iterable, non-bytes members) is a failed proof.
        return False


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """Check a consistency proof exactly per RFC 9162 section 2.1.4.2; never raises."""
    try:
        if not (_is_int(old_size) and _is_int(new_size)):
            return False
        path = list(proof)
        if not _all_hashes(old_root, new_root, *path):
            return False
        # The RFC only defines proofs for 0 < m; an empty old tree proves nothing.
        if old_size <= 0 or old_size > new_size:
            return False
        if old_size == new_size:
            # Same size: nothing to prove, the heads must simply be the same.
            return not path and old_root == new_root
        # Steps 1-2: empty proof fails; a perfect old tree is its own first element.
        if not path:
            return False
        if old_size & (old_size - 1) == 0:
            path.insert(0, old_root)
        # Steps 3-5.
        fn, sn = old_size - 1, new_size - 1
        while fn & 1:
            fn >>= 1
            sn >>= 1
        fr = sr = path[0]
        # Step 6.
        for c in path[1:]:
            if sn == 0:
                return False
            if fn & 1 or fn == sn:
                fr = node_hash(c, fr)
                sr = node_hash(c, sr)
                if not fn & 1:
                    while not (fn & 1 or fn == 0):
                        fn >>= 1
                        sn >>= 1
            else:
                sr = node_hash(sr, c)
            fn >>= 1
            sn >>= 1
        # Step 7.
        return fr == old_root and sr == new_root and sn == 0
    except (TypeError, ValueError):
        return False


class TreeBuilder:
    """Streaming Merkle tree over leaf hashes that keeps only the O(log n) frontier."""

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        """Start an empty tree."""
        self._size = 0
        # Roots of the perfect subtrees given by the set bits of _size, biggest first.
        self._stack: list[bytes] = []

    @classmethod
    def from_frontier(cls, size: int, frontier_hashes: Sequence[bytes]) -> TreeBuilder:
        """Resume a tree of `size` leaves from its perfect-subtree roots, left to right."""
        if not _is_int(size) or size < 0:
            raise InvalidValue(f"Tree size {size} is not a whole number of leaves.")
        hashes = list(frontier_hashes)
        expected = size.bit_count()
        if len(hashes) != expected:
            raise InvalidValue(
                f"A tree of size {size} has {expected} frontier hashes, not {len(hashes)}."
            )
        for h in hashes:
            _check_hash(h, "frontier hash")
        builder = cls()
        builder._size = size
        builder._stack = [bytes(h) for h in hashes]
        return builder

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def frontier(self) -> list[bytes]:
        """Perfect-subtree roots covering every leaf so far, left to right."""
        return list(self._stack)

    def frontier_nodes(self) -> list[NodeAddress]:
        """The (level, index) addresses of `frontier`, in the same order."""
        return range_nodes(0, self._size)

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return every perfect node (level, index, hash) it completed."""
        if type(leaf_hash) is not bytes or len(leaf_hash) != HASH_SIZE:
            _check_hash(leaf_hash, "leaf hash")
            leaf_hash = bytes(leaf_hash)
        stack = self._stack
        n = self._size
        h = leaf_hash
        completed = [(0, n, h)]
        level = 0
        # Each trailing 1 bit of the old size is a perfect subtree of the same height
        # waiting on the left: merge with it, and the merged node is complete too.
        while n & 1:
            h = _sha256(b"\x01" + stack.pop() + h).digest()
            n >>= 1
            level += 1
            completed.append((level, n, h))
        stack.append(h)
        self._size += 1
        return completed

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Add many leaf hashes without reporting nodes: the fast path for re-verifying."""
        stack = self._stack
        pop = stack.pop
        push = stack.append
        sha = _sha256
        size = self._size
        try:
            for h in leaf_hashes:
                if type(h) is not bytes or len(h) != HASH_SIZE:
                    # Checked before any pop, so a bad leaf never leaves a half merge.
                    _check_hash(h, "leaf hash")
                    h = bytes(h)
                n = size
                while n & 1:
                    h = sha(b"\x01" + pop() + h).digest()
                    n >>= 1
                push(h)
                size += 1
        finally:
            # Keep the builder consistent with what was absorbed, even on a bad leaf.
            self._size = size

    def extend_reporting(self, leaf_hashes: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
        """Add many leaf hashes; return each inner node (level, index, hash) they complete."""
        stack = self._stack
        pop = stack.pop
        push = stack.append
        sha = _sha256
        size = self._size
        completed: list[tuple[int, int, bytes]] = []
        add = completed.append
        try:
            for h in leaf_hashes:
                if type(h) is not bytes or len(h) != HASH_SIZE:
                    _check_hash(h, "leaf hash")
                    h = bytes(h)
                n = size
                level = 0
                while n & 1:
                    h = sha(b"\x01" + pop() + h).digest()
                    n >>= 1
                    level += 1
                    add((level, n, h))
                push(h)
                size += 1
        finally:
            self._size = size
        return completed

    def root(self) -> bytes:
        """Return the root of all leaves appended so far, leaving the state untouched."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        h = stack[-1]
        for left in reversed(stack[:-1]):
            h = node_hash(left, h)
        return h
