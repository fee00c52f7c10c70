"""RFC 9162 Merkle tree math over stored perfect subtrees; no I/O.

Hashing is RFC 9162 §2.1.1 with SHA-256: leaf = H(0x00 || d), node = H(0x01 || l || r),
empty tree = H(""). Proof contents follow §2.1.3.1 (PATH) and §2.1.4.1 (PROOF/SUBPROOF);
verification follows §2.1.3.2 and §2.1.4.2 step by step.

Storage keeps every perfect aligned subtree: node (level L, index i) is the hash of leaves
[i·2^L, (i+1)·2^L). Every hash a proof or root needs is of a range the §2.1.1 split rule
produces, so it decomposes into O(log n) such nodes and one batched read serves a request.
All leaves in this API are already leaf hashes (see ``service.ledger.envelope.leaf_hash``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TypeAlias

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeId: TypeAlias = tuple[int, int]
NodeReader: TypeAlias = Callable[[Sequence[NodeId]], Mapping[NodeId, bytes]]
Range: TypeAlias = tuple[int, int]


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2): the RFC 9162 §2.1.1 split point."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    n = len(leaf_hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaf_hashes[0]
    k = _split(n)
    return node_hash(root_of(leaf_hashes[:k]), root_of(leaf_hashes[k:]))


# --- which leaf ranges a proof is made of ------------------------------------------------


def inclusion_ranges(index: int, size: int) -> list[Range]:
    if not 0 <= index < size:
        msg = f"leaf index {index} is outside a tree of size {size}"
        raise ValueError(msg)
    # Walking PATH(m, D[n]) from the root yields siblings root-side first; the proof
    # lists them leaf-side first, so collect and reverse.
    siblings: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            siblings.append((start + k, end))
            end = start + k
        else:
            siblings.append((start, start + k))
            start += k
    siblings.reverse()
    return siblings


def consistency_ranges(old: int, new: int) -> list[Range]:
    if old < 1 or old > new:
        msg = f"no consistency proof from size {old} to size {new}: need 1 <= old <= new"
        raise ValueError(msg)
    if old == new:
        return []
    # SUBPROOF(m, D[n], b) iteratively: each step appends the sibling it recurses past,
    # root-side first; the innermost subtree (when b turned false) comes first in the proof.
    siblings: list[Range] = []
    start, end, m, complete = 0, new, old, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            siblings.append((start + k, end))
            end = start + k
        else:
            siblings.append((start, start + k))
            start, m, complete = start + k, m - k, False
    siblings.reverse()
    return siblings if complete else [(start, end), *siblings]


# --- hashing ranges from perfect nodes --------------------------------------------------


def _perfect(start: int, end: int) -> NodeId | None:
    n = end - start
    if n > 0 and n & (n - 1) == 0 and start & (n - 1) == 0:
        level = n.bit_length() - 1
        return level, start >> level
    return None


def _check_range(start: int, end: int) -> None:
    if not 0 <= start <= end:
        msg = f"leaf range [{start}, {end}) is not a range of leaves"
        raise ValueError(msg)


def _decompose(start: int, end: int) -> Iterator[NodeId]:
    """Perfect nodes whose hashes build MTH(D[start:end]) by the split rule, left to right."""
    node = _perfect(start, end)
    if node is not None:
        yield node
    elif end - start > 1:
        k = _split(end - start)
        yield from _decompose(start, start + k)
        yield from _decompose(start + k, end)


def perfect_nodes_for(ranges: Sequence[Range]) -> list[NodeId]:
    needed: dict[NodeId, None] = {}  # dict keeps first-seen order: deterministic and deduplicated
    for start, end in ranges:
        _check_range(start, end)
        needed.update(dict.fromkeys(_decompose(start, end)))
    return list(needed)


def range_hash(start: int, end: int, nodes: Mapping[NodeId, bytes]) -> bytes:
    _check_range(start, end)
    if start == end:
        return EMPTY_ROOT
    node = _perfect(start, end)
    if node is not None:
        return _lookup(nodes, node)
    k = _split(end - start)
    return node_hash(range_hash(start, start + k, nodes), range_hash(start + k, end, nodes))


def _lookup(nodes: Mapping[NodeId, bytes], node: NodeId) -> bytes:
    try:
        return nodes[node]
    except KeyError:
        msg = f"perfect node {node} is missing from storage"
        raise LookupError(msg) from None


def _fetch(read: NodeReader, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
    # Nothing to read is common (size-1 trees, empty batches): skip the round trip.
    return read(ids) if ids else {}


def _hash_ranges(ranges: Sequence[Range], read: NodeReader) -> list[bytes]:
    nodes = _fetch(read, perfect_nodes_for(ranges))
    return [range_hash(start, end, nodes) for start, end in ranges]


# --- proofs and roots from storage -------------------------------------------------------


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    return _hash_ranges(inclusion_ranges(index, size), read)


def consistency_proof(old: int, new: int, read: NodeReader) -> list[bytes]:
    return _hash_ranges(consistency_ranges(old, new), read)


def tree_root(size: int, read: NodeReader) -> bytes:
    if size < 0:
        msg = f"tree size {size} is negative"
        raise ValueError(msg)
    if size == 0:
        return EMPTY_ROOT
    return _hash_ranges([(0, size)], read)[0]


# --- appending -------------------------------------------------------------------------


def _frontier_needed(size: int, count: int) -> list[NodeId]:
    """Right-edge left siblings of a size-leaf tree that appending count leaves completes."""
    needed: list[NodeId] = []
    for level in range(size.bit_length()):
        if size >> level & 1:
            index = (size >> level) - 1  # always even: a left child waiting for its sibling
            if (index + 2) << level <= size + count:
                needed.append((level, index))
    return needed


def new_perfect_nodes(size: int, new_leaves: Sequence[bytes],
                      read: NodeReader) -> list[tuple[int, int, bytes]]:
    if size < 0:
        msg = f"tree size {size} is negative"
        raise ValueError(msg)
    for position, leaf in enumerate(new_leaves, start=size):
        if len(leaf) != HASH_SIZE:
            msg = f"leaf {position} is {len(leaf)} bytes, not a {HASH_SIZE}-byte leaf hash"
            raise ValueError(msg)
    ids = _frontier_needed(size, len(new_leaves))
    stored = _fetch(read, ids)
    pending = {level: _lookup(stored, (level, index)) for level, index in ids}
    created: list[tuple[int, int, bytes]] = []
    for position, leaf in enumerate(new_leaves, start=size):
        created.append((0, position, leaf))
        level, index, digest = 0, position, leaf
        # A right child completes its parent; children are emitted before their parents.
        while index & 1:
            digest = node_hash(pending.pop(level), digest)
            level, index = level + 1, index >> 1
            created.append((level, index, digest))
        pending[level] = digest
    return created


# --- verification --------------------------------------------------------------------


def _hashes_ok(*hashes: bytes) -> bool:
    # Verifiers face untrusted input: reject rather than raise on anything but 32 bytes.
    return all(isinstance(h, bytes | bytearray) and len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> bool:
    if not 0 <= index < size or not _hashes_ok(leaf, root, *proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(r, root)


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    if not 1 <= old <= new or not _hashes_ok(old_root, new_root, *proof):
        return False
    if old == new:
        # Outside §2.1.4.2's 0 < first < second: the only proof of equal sizes is none.
        return not proof and hmac.compare_digest(old_root, new_root)
    if not proof:
        return False
    path = [old_root, *proof] if old & (old - 1) == 0 else list(proof)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and hmac.compare_digest(fr, old_root) and hmac.compare_digest(sr, new_root)
