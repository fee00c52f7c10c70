"""RFC 9162 Merkle math: published vectors, tampering, and a naive RFC reference."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.ledger.envelope import leaf_hash
from service.ledger.merkle import (
    NodeId,
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    new_perfect_nodes,
    node_hash,
    perfect_nodes_for,
    range_hash,
    root_of,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from service.ledger.verify_log import CompactRange

# --- known answers ---------------------------------------------------------------------
# Copied from transparency-dev/merkle proof/verify_test.go (vars leaves, roots,
# inclusionProofs, consistencyProofs); google/certificate-transparency-go
# merkletree/merkle_verifier_test.go carries the same values.

INPUTS = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
)]

ROOTS = [bytes.fromhex(h) for h in (  # ROOTS[n - 1] is the root of the first n inputs
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]

# (0-based leaf index, tree size, proof); the Go source lists 1-based leaf numbers.
INCLUSION_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (0, 1, []),
    (0, 8, [bytes.fromhex(h) for h in (
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    )]),
    (5, 8, [bytes.fromhex(h) for h in (
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    )]),
    (2, 3, [bytes.fromhex(
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (1, 5, [bytes.fromhex(h) for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    )]),
]

# (old size, new size, proof)
CONSISTENCY_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (1, 8, [bytes.fromhex(h) for h in (
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    )]),
    (6, 8, [bytes.fromhex(h) for h in (
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    )]),
    (2, 5, [bytes.fromhex(h) for h in (
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    )]),
    (6, 7, [bytes.fromhex(h) for h in (
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    )]),
]

LEAVES = [leaf_hash(d) for d in INPUTS]
EMPTY = hashlib.sha256(b"").digest()
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


# --- a counting node store, filled only through new_perfect_nodes -----------------------


class Store:
    def __init__(self) -> None:
        self.nodes: dict[NodeId, bytes] = {}
        self.size = 0
        self.reads: list[list[NodeId]] = []

    def read(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        self.reads.append(list(ids))
        return {i: self.nodes[i] for i in ids if i in self.nodes}

    def append(self, leaves: Sequence[bytes]) -> None:
        before = len(self.reads)
        created = new_perfect_nodes(self.size, leaves, self.read)
        calls = self.reads[before:]
        assert len(calls) <= 1
        assert all(len(call) <= self.size.bit_length() for call in calls)
        assert [(i, h) for lvl, i, h in created if lvl == 0] == list(
            enumerate(leaves, start=self.size))
        for level, index, digest in created:
            assert (level, index) not in self.nodes
            if level > 0:  # both children must already be insertable
                left = self.nodes[(level - 1, 2 * index)]
                right = self.nodes[(level - 1, 2 * index + 1)]
                assert digest == node_hash(left, right)
            self.nodes[(level, index)] = digest
        self.size += len(leaves)

    def since(self, mark: int) -> list[list[NodeId]]:
        return self.reads[mark:]


def filled(leaves: Sequence[bytes]) -> Store:
    store = Store()
    for leaf in leaves:
        store.append([leaf])
    return store


# --- a naive reference written from RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1 ---------------


def ref_split(n: int) -> int:
    k = 1
    while 2 * k < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]  # the inputs are already leaf hashes
    k = ref_split(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = ref_split(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_split(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return ref_subproof(m, d, True)


def ref_perfect_nodes(d: Sequence[bytes]) -> dict[NodeId, bytes]:
    out: dict[NodeId, bytes] = {}
    level = 0
    while 1 << level <= len(d):
        for index in range(len(d) >> level):
            out[(level, index)] = ref_mth(d[index << level:(index + 1) << level])
        level += 1
    return out


def log_bound(n: int) -> int:
    return 2 * (n - 1).bit_length() + 2


def flip(h: bytes, byte: int = 0, bit: int = 3) -> bytes:
    return h[:byte] + bytes([h[byte] ^ (1 << bit)]) + h[byte + 1:]


# --- hashing ---------------------------------------------------------------------------


def test_hasher_known_answers() -> None:
    # transparency-dev/merkle rfc6962/rfc6962_test.go, TestRFC6962Hasher
    assert root_of([]) == bytes.fromhex(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert leaf_hash(b"") == bytes.fromhex(
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == bytes.fromhex(
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    assert node_hash(b"N123", b"N456") == bytes.fromhex(
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")


@pytest.mark.parametrize("n", range(1, 9))
def test_roots_known_answers(n: int) -> None:
    assert root_of(LEAVES[:n]) == ROOTS[n - 1]
    store = filled(LEAVES[:n])
    mark = len(store.reads)
    assert tree_root(n, store.read) == ROOTS[n - 1]
    assert len(store.since(mark)) == 1


def test_empty_tree_root_needs_no_read() -> None:
    store = Store()
    assert tree_root(0, store.read) == EMPTY
    assert store.reads == []


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_inclusion_known_answers(index: int, size: int, proof: list[bytes]) -> None:
    store = filled(LEAVES)
    assert inclusion_proof(index, size, store.read) == proof
    assert verify_inclusion(index, size, LEAVES[index], proof, ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS)
def test_consistency_known_answers(old: int, new: int, proof: list[bytes]) -> None:
    store = filled(LEAVES)
    assert consistency_proof(old, new, store.read) == proof
    assert verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)


def test_ranges_of_known_proofs() -> None:
    assert inclusion_ranges(5, 8) == [(4, 5), (6, 8), (0, 4)]
    assert inclusion_ranges(1, 5) == [(0, 1), (2, 4), (4, 5)]
    assert inclusion_ranges(0, 1) == []
    assert consistency_ranges(6, 8) == [(4, 6), (6, 8), (0, 4)]
    assert consistency_ranges(2, 5) == [(2, 4), (4, 5)]
    assert consistency_ranges(3, 7) == [(2, 3), (3, 4), (0, 2), (4, 7)]
    assert consistency_ranges(4, 4) == []


def test_right_edge_ranges_hash_from_perfect_nodes() -> None:
    store = filled(LEAVES[:7])
    ids = perfect_nodes_for([(4, 7), (0, 7), (4, 7)])
    assert ids == [(1, 2), (0, 6), (2, 0)]
    nodes = store.read(ids)
    assert range_hash(4, 7, nodes) == root_of(LEAVES[4:7])
    assert range_hash(0, 7, nodes) == ROOTS[6]
    # Unaligned ranges never occur in RFC proofs but must still hash as MTH of the slice.
    assert perfect_nodes_for([(1, 3), (1, 5)]) == [(0, 1), (0, 2), (0, 3), (0, 4)]
    assert range_hash(1, 5, store.read([(0, i) for i in range(1, 5)])) == root_of(LEAVES[1:5])
    with pytest.raises(LookupError, match=r"\(2, 0\)"):
        range_hash(0, 7, {k: v for k, v in nodes.items() if k != (2, 0)})


# --- tampering with known-good proofs ------------------------------------------------

# A proof binds the root, not the tree size: these (index or old size, size, size +/- 1)
# cases walk the verifier through the same left/right steps, so they verify against the
# right root under a wrong size. No log signs that pair (checked below: the real tree of the
# wrong size has another root), which is why checkpoints must sign size and root together.
INCLUSION_SIZE_ALIASES = {(0, 8, 7), (5, 8, 7), (1, 5, 6)}
CONSISTENCY_SIZE_ALIASES = {(1, 8, 7), (6, 8, 7), (2, 5, 6), (6, 7, 8)}


def proof_mutations(proof: list[bytes], extra: bytes) -> dict[str, list[bytes]]:
    out = {
        "appended element": [*proof, extra],
        "prepended element": [extra, *proof],
        "appended empty": [*proof, b""],
        "prepended short": [extra[:31], *proof],
    }
    if proof:
        out |= {"empty proof": [], "missing last": proof[:-1], "missing first": proof[1:],
                "duplicated first": [proof[0], *proof]}
    for i in range(len(proof)):
        for byte, bit in ((0, 3), (31, 0)):
            out[f"bit {bit} of byte {byte} of [{i}]"] = [
                *proof[:i], flip(proof[i], byte, bit), *proof[i + 1:]]
        out[f"short [{i}]"] = [*proof[:i], proof[i][:31], *proof[i + 1:]]
    return out


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_tampered_inclusion_fails(index: int, size: int, proof: list[bytes]) -> None:
    leaf, root = LEAVES[index], ROOTS[size - 1]
    for wrong in (size - 1, size + 1):
        accepted = verify_inclusion(index, wrong, leaf, proof, root)
        assert accepted == ((index, size, wrong) in INCLUSION_SIZE_ALIASES), wrong
        if accepted:
            assert ROOTS[wrong - 1] != root
    for wrong in (index - 1, index + 1):
        assert not verify_inclusion(wrong, size, leaf, proof, root), wrong
    for what, bad in proof_mutations(proof, root).items():
        assert not verify_inclusion(index, size, leaf, bad, root), what
    for bad_root in (flip(root), EMPTY, SOME_HASH, root[:31], root + b"\x00"):
        assert not verify_inclusion(index, size, leaf, proof, bad_root)
    for bad_leaf in (flip(leaf, 31, 7), LEAVES[(index + 1) % 8], INPUTS[index], b""):
        assert not verify_inclusion(index, size, bad_leaf, proof, root)


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_VECTORS[1:])
def test_tampered_consistency_fails(old: int, new: int, proof: list[bytes]) -> None:
    r1, r2 = ROOTS[old - 1], ROOTS[new - 1]
    for wrong in (new - 1, new + 1):
        accepted = verify_consistency(old, wrong, r1, r2, proof)
        assert accepted == ((old, new, wrong) in CONSISTENCY_SIZE_ALIASES), wrong
        if accepted:
            assert ROOTS[wrong - 1] != r2
    for wrong in (old - 1, old + 1):
        assert not verify_consistency(wrong, new, r1, r2, proof), wrong
    for what, bad in proof_mutations(proof, r2).items():
        assert not verify_consistency(old, new, r1, r2, bad), what
    assert not verify_consistency(old, new, r1, r2, [r1, *proof])
    assert not verify_consistency(old, new, r2, r1, proof)
    for bad_root in (flip(r1), EMPTY, r1[:31]):
        assert not verify_consistency(old, new, bad_root, r2, proof)
        assert not verify_consistency(old, new, r1, bad_root, proof)


def test_degenerate_consistency() -> None:
    root = ROOTS[2]
    assert verify_consistency(3, 3, root, root, [])
    assert not verify_consistency(3, 3, root, ROOTS[3], [])
    assert not verify_consistency(3, 3, root, root, [root])
    assert not verify_consistency(0, 3, EMPTY, root, [])
    assert not verify_consistency(0, 0, EMPTY, EMPTY, [])
    assert not verify_consistency(4, 3, ROOTS[3], root, [])


def test_single_leaf_inclusion_is_the_root() -> None:
    leaf = LEAVES[0]
    assert verify_inclusion(0, 1, leaf, [], leaf)
    assert not verify_inclusion(0, 1, leaf, [], b"")
    assert not verify_inclusion(0, 1, b"", [], b"")
    for index, size in ((0, 0), (1, 0), (1, 1), (2, 1), (-1, 1)):
        assert not verify_inclusion(index, size, leaf, [], leaf)
    # Leaf 4's proof in the 5-tree hashes to ROOTS[4] from the left; once sn reaches 0 the
    # RFC stops, so it must not pass as a proof for a 1-leaf tree.
    assert verify_inclusion(4, 5, LEAVES[4], [ROOTS[3]], ROOTS[4])
    assert not verify_inclusion(0, 1, LEAVES[4], [ROOTS[3]], ROOTS[4])


# --- argument errors -------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size"), [(0, 0), (8, 8), (9, 8), (-1, 5)])
def test_inclusion_out_of_range(index: int, size: int) -> None:
    store = Store()
    with pytest.raises(ValueError, match="outside"):
        inclusion_ranges(index, size)
    with pytest.raises(ValueError, match="outside"):
        inclusion_proof(index, size, store.read)
    assert store.reads == []


@pytest.mark.parametrize(("old", "new"), [(0, 0), (0, 5), (-1, 5), (6, 5)])
def test_consistency_out_of_range(old: int, new: int) -> None:
    with pytest.raises(ValueError, match="1 <= old <= new"):
        consistency_ranges(old, new)
    with pytest.raises(ValueError, match="1 <= old <= new"):
        consistency_proof(old, new, Store().read)


def test_other_bad_arguments() -> None:
    store = Store()
    with pytest.raises(ValueError, match="negative"):
        tree_root(-1, store.read)
    with pytest.raises(ValueError, match="negative"):
        new_perfect_nodes(-1, [], store.read)
    with pytest.raises(ValueError, match="leaf 3 is 31 bytes"):
        new_perfect_nodes(2, [LEAVES[0], LEAVES[1][:31]], store.read)
    with pytest.raises(ValueError, match="range"):
        range_hash(5, 4, {})
    with pytest.raises(ValueError, match="range"):
        perfect_nodes_for([(-1, 2)])
    assert store.reads == []


def test_appender_reads_only_the_frontier_it_merges() -> None:
    store = filled(LEAVES[:7])
    before = len(store.reads)
    assert new_perfect_nodes(7, [], store.read) == []
    created = new_perfect_nodes(7, [LEAVES[7]], store.read)
    assert store.reads[before:] == [[(0, 6), (1, 2), (2, 0)]]
    assert [(lvl, i) for lvl, i, _ in created] == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert created[-1][2] == ROOTS[7]
    # Size 6 has frontier (1, 2) and (2, 0); one more leaf completes neither.
    before = len(store.reads)
    assert new_perfect_nodes(6, [LEAVES[6]], store.read) == [(0, 6, LEAVES[6])]
    assert store.reads[before:] == []


# --- storage-backed functions against the reference ---------------------------------


def check_tree(store: Store, d: list[bytes], indices: Sequence[int], olds: Sequence[int]) -> None:
    n = len(d)
    assert store.nodes == ref_perfect_nodes(d)
    root = ref_mth(d)
    assert root_of(d) == root
    mark = len(store.reads)
    assert tree_root(n, store.read) == root
    reads = store.since(mark)
    assert len(reads) == 1
    assert len(reads[0]) <= n.bit_length()
    for index in indices:
        mark = len(store.reads)
        proof = inclusion_proof(index, n, store.read)
        reads = store.since(mark)
        assert proof == ref_path(index, d)
        assert len(reads) == (1 if proof else 0)
        assert all(len(r) <= log_bound(n) for r in reads)
        assert verify_inclusion(index, n, d[index], proof, root)
        assert not verify_inclusion(index + 1, n, d[index], proof, root)
        assert not verify_inclusion(index - 1, n, d[index], proof, root)
        if proof:
            assert not verify_inclusion(index, n, d[index], [flip(proof[-1]), *proof[1:]], root)
    for old in olds:
        mark = len(store.reads)
        proof = consistency_proof(old, n, store.read)
        reads = store.since(mark)
        assert proof == ref_proof(old, d)
        assert len(reads) == (1 if proof else 0)
        assert all(len(r) <= log_bound(n) for r in reads)
        old_root = ref_mth(d[:old])
        assert verify_consistency(old, n, old_root, root, proof)
        assert not verify_consistency(old + 1, n, old_root, root, proof)
        assert not verify_consistency(old - 1, n, old_root, root, proof)
        if proof:
            assert not verify_consistency(old, n, old_root, root, [*proof[:-1], flip(proof[-1])])


def leaves_of(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(8, "big")) for i in range(n)]


@pytest.mark.parametrize("n", range(1, 34))
def test_small_trees_exhaustively(n: int) -> None:
    d = leaves_of(n)
    check_tree(filled(d), d, range(n), range(1, n + 1))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_storage_agrees_with_reference(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 300), label="size")
    d = leaves_of(n)
    store = Store()
    while store.size < n:
        batch = data.draw(st.integers(1, min(70, n - store.size)), label="batch")
        store.append(d[store.size:store.size + batch])
    indices = data.draw(st.lists(st.integers(0, n - 1), max_size=6), label="indices")
    olds = data.draw(st.lists(st.integers(1, n), max_size=6), label="olds")
    check_tree(store, d, [0, n - 1, *indices], [1, n, *olds])


# --- the compact range verify-log folds (leaf by leaf, or a block's subtree at once) ----


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=4), min_size=1, max_size=12))
def test_compact_range_folds_subtrees_as_their_leaves(levels: list[int]) -> None:
    """Appending aligned perfect subtrees gives the root and the nodes above them that
    appending their leaves one by one gives (verify-log folds whole blocks by their root)."""
    by_leaf, by_subtree = CompactRange(), CompactRange()
    leaves: list[bytes] = []
    for level in levels:
        while by_subtree.size % (1 << level):  # pad with single leaves to the alignment
            leaf = hashlib.sha256(len(leaves).to_bytes(4, "big")).digest()
            leaves.append(leaf)
            assert by_subtree.append(leaf) == by_leaf.append(leaf)
        chunk = [hashlib.sha256(i.to_bytes(4, "big")).digest()
                 for i in range(len(leaves), len(leaves) + (1 << level))]
        leaves += chunk
        from_leaves = [node for leaf in chunk for node in by_leaf.append(leaf)]
        from_root = by_subtree.append_subtree(level, root_of(chunk))
        assert from_root == [(node, digest) for node, digest in from_leaves
                             if node[0] > level]
        assert by_subtree.size == by_leaf.size == len(leaves)
        assert by_subtree.root() == by_leaf.root() == root_of(leaves)


def test_compact_range_refuses_an_unaligned_subtree() -> None:
    tree = CompactRange()
    tree.append(node_hash(b"a", b"b"))
    with pytest.raises(ValueError, match="cannot start at leaf 1"):
        tree.append_subtree(1, node_hash(b"c", b"d"))
    assert tree.size == 1
