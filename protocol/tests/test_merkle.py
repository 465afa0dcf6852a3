"""RFC 9162 Merkle tree: published RFC 6962 reference data, the reference recursion, and
property tests that every honest proof verifies and every tampered one fails."""

import hashlib
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainchat_protocol.merkle import (
    EMPTY_ROOT,
    MemoryNodeStore,
    MerkleTree,
    leaf_hash,
    merkle_root,
    node_hash,
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

# Reference data published with the certificate-transparency / trillian / transparency-dev merkle
# test suites (RFC 6962 hashing, identical in RFC 9162). Leaf indexes below are 0-based.
CT_LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243",
             "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]  # fmt: skip
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
H_96A2 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_5F08 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_6B47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
H_BC1A = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
H_CA85 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
H_0EBC = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
CT_INCLUSION = [
    (0, 1, []),
    (0, 8, [H_96A2, H_5F08, H_6B47]),
    (5, 8, [H_BC1A, H_CA85, CT_ROOTS[3]]),
    (2, 3, [CT_ROOTS[1]]),
    (1, 5, [CT_ROOTS[0], H_5F08, H_BC1A]),
]
CT_CONSISTENCY = [
    (1, 1, []),
    (1, 8, [H_96A2, H_5F08, H_6B47]),
    (6, 8, [H_0EBC, H_CA85, CT_ROOTS[3]]),
    (2, 5, [H_5F08, H_BC1A]),
]


@pytest.fixture(scope="module")
def ct_tree() -> MerkleTree:
    tree = MerkleTree()
    tree.extend(CT_LEAVES)
    return tree


def test_empty_tree() -> None:
    assert MerkleTree().root() == EMPTY_ROOT == hashlib.sha256(b"").digest()


def test_ct_roots(ct_tree: MerkleTree) -> None:
    for size, expected in enumerate(CT_ROOTS, start=1):
        assert ct_tree.root(size).hex() == expected
        assert merkle_root([leaf_hash(x) for x in CT_LEAVES[:size]]).hex() == expected


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_ct_inclusion(ct_tree: MerkleTree, index: int, size: int, path: list[str]) -> None:
    assert [h.hex() for h in ct_tree.inclusion_proof(index, size)] == path
    proof = [bytes.fromhex(h) for h in path]
    root = bytes.fromhex(CT_ROOTS[size - 1])
    assert verify_inclusion(index, size, leaf_hash(CT_LEAVES[index]), proof, root)


@pytest.mark.parametrize(("first", "second", "path"), CT_CONSISTENCY)
def test_ct_consistency(ct_tree: MerkleTree, first: int, second: int, path: list[str]) -> None:
    assert [h.hex() for h in ct_tree.consistency_proof(first, second)] == path
    proof = [bytes.fromhex(h) for h in path]
    r1, r2 = (bytes.fromhex(CT_ROOTS[n - 1]) for n in (first, second))
    assert verify_consistency(first, second, r1, r2, proof)


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, lh: bytes
) -> Iterator[tuple[int, int, bytes, list[bytes], bytes]]:
    """The corruptions of the CT reference verifier tests; each must fail."""
    yield index - 1, size, lh, proof, root
    yield index + 1, size, lh, proof, root
    yield index ^ 2, size, lh, proof, root
    yield index, size * 2, lh, proof, root
    yield index, size // 2, lh, proof, root
    yield index, size, leaf_hash(b"WrongLeaf"), proof, root
    yield index, size, lh, proof, EMPTY_ROOT
    yield index, size, lh, proof, SOME
    yield index, size, lh, [*proof, b""], root
    yield index, size, lh, [*proof, root], root
    yield index, size, lh, [b"", *proof], root
    yield index, size, lh, [root, *proof], root
    for i in range(len(proof)):
        yield index, size, lh, _flip(proof, i, 3), root
    if proof:
        yield index, size, lh, proof[:-1], root
    if len(proof) > 1:
        yield index, size, lh, [proof[0], SOME, *proof[1:]], root


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION[1:])
def test_ct_inclusion_corruptions_fail(index: int, size: int, path: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in path]
    root = bytes.fromhex(CT_ROOTS[size - 1])
    for probe in _inclusion_probes(index, size, proof, root, leaf_hash(CT_LEAVES[index])):
        assert not verify_inclusion(*probe), probe


@pytest.mark.parametrize(("first", "second", "path"), CT_CONSISTENCY[1:])
def test_ct_consistency_corruptions_fail(first: int, second: int, path: list[str]) -> None:
    p = [bytes.fromhex(h) for h in path]
    r1, r2 = (bytes.fromhex(CT_ROOTS[n - 1]) for n in (first, second))
    probes = [
        (first - 1, second, r1, r2, p), (first + 1, second, r1, r2, p),
        (first ^ 2, second, r1, r2, p), (first, second * 2, r1, r2, p),
        (first, second // 2, r1, r2, p), (first, second, SOME, r2, p),
        (first, second, r1, SOME, p), (first, second, r2, r1, p), (first, second, r1, r2, []),
        (first, second, r1, r2, [*p, b""]), (first, second, r1, r2, [*p, r1]),
        (first, second, r1, r2, [*p, r2]), (first, second, r1, r2, [b"", *p]),
        (first, second, r1, r2, [r1, *p]), (first, second, r1, r2, [r2, *p]),
        (first, second, r1, r2, [p[0], *p]), (first, second, r1, r2, p[:-1]),
        *((first, second, r1, r2, _flip(p, i, 4)) for i in range(len(p))),
    ]  # fmt: skip
    for probe in probes:
        assert not verify_consistency(*probe), probe


SOME = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_consistency_edge_cases() -> None:
    r1, r2 = leaf_hash(b"1"), leaf_hash(b"2")
    assert verify_consistency(0, 0, r1, r1, [])
    assert verify_consistency(0, 5, r1, r2, [])  # the empty tree is a prefix of everything
    assert verify_consistency(3, 3, r2, r2, [])
    assert not verify_consistency(1, 1, r1, r2, [])
    assert not verify_consistency(2, 1, r1, r2, [])
    assert not verify_consistency(1, 2, r1, r2, [])
    assert not verify_consistency(1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency(0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])


def test_inclusion_edge_cases() -> None:
    h = leaf_hash(b"data")
    assert verify_inclusion(0, 1, h, [], h)
    assert not verify_inclusion(0, 1, h, [], b"")
    assert not verify_inclusion(0, 1, b"", [], h)
    for index, size in ((0, 0), (1, 0), (2, 1), (-1, 4)):
        assert not verify_inclusion(index, size, SOME, [], EMPTY_ROOT)
    assert root_from_inclusion_proof(0, 2, h, []) is None


# ----- property tests on one shared tree, queried at historical sizes ---------------------------

N = 600
LEAF_HASHES = [leaf_hash(i.to_bytes(4, "big")) for i in range(N)]


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    t = MerkleTree()
    for start in range(0, N, 97):  # uneven batches exercise the frontier across calls
        t.extend_hashes(LEAF_HASHES[start : start + 97])
    return t


def test_roots_match_reference_at_every_size(tree: MerkleTree) -> None:
    for n in range(N + 1):
        assert tree.root(n) == merkle_root(LEAF_HASHES[:n])


def test_exhaustive_small_sizes(tree: MerkleTree) -> None:
    for n in range(1, 70):
        root = tree.root(n)
        for m in range(n):
            assert verify_inclusion(m, n, LEAF_HASHES[m], tree.inclusion_proof(m, n), root)
        for m in range(n + 1):
            assert verify_consistency(m, n, tree.root(m), root, tree.consistency_proof(m, n))


sizes = st.integers(1, N).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n)))
pairs = st.integers(1, N).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n)))


def _flip(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ (1 << bit)]) + out[i][1:]
    return out


@settings(max_examples=300, deadline=None)
@given(sizes, st.data())
def test_inclusion_tampering_fails(tree: MerkleTree, case: tuple[int, int], data: st.DataObject) -> None:
    m, n = case
    proof, root, lh = tree.inclusion_proof(m, n), tree.root(n), LEAF_HASHES[m]
    assert verify_inclusion(m, n, lh, proof, root)
    assert not verify_inclusion(m, n, LEAF_HASHES[m - 1] if m else LEAF_HASHES[1], proof, root)
    assert not verify_inclusion(m, n, lh, proof, tree.root(n - 1))
    assert not verify_inclusion(m, n, lh, proof + [SOME], root)
    assert not verify_inclusion(m, n, lh, [SOME, *proof], root)
    if proof:
        i = data.draw(st.integers(0, len(proof) - 1))
        assert not verify_inclusion(m, n, lh, _flip(proof, i, data.draw(st.integers(0, 7))), root)
        assert not verify_inclusion(m, n, lh, proof[:-1], root)
        other = data.draw(st.integers(0, n - 1).filter(lambda x: x != m))
        assert not verify_inclusion(other, n, lh, proof, root)
    # A size change is only detectable when it changes the path length; RFC 9162 trees do not
    # commit to their size, the signed/anchored tree head does.
    for other_size in (n // 2, n * 2, n + 1):
        if m < other_size <= N and len(tree.inclusion_proof(m, other_size)) != len(proof):
            assert not verify_inclusion(m, other_size, lh, proof, root)


@settings(max_examples=300, deadline=None)
@given(pairs, st.data())
def test_consistency_tampering_fails(tree: MerkleTree, case: tuple[int, int], data: st.DataObject) -> None:
    m, n = case
    proof, r1, r2 = tree.consistency_proof(m, n), tree.root(m), tree.root(n)
    assert verify_consistency(m, n, r1, r2, proof)
    if m == n:
        return
    assert not verify_consistency(m, n, r2, r1, proof)
    assert not verify_consistency(m, n, r1, SOME, proof)
    assert not verify_consistency(m, n, r1, r2, proof + [SOME])
    assert not verify_consistency(m, n, r1, r2, [SOME, *proof])
    assert not verify_consistency(m, n, r1, r2, proof[:-1])
    i = data.draw(st.integers(0, len(proof) - 1))
    assert not verify_consistency(m, n, r1, r2, _flip(proof, i, data.draw(st.integers(0, 7))))
    other = data.draw(st.integers(1, n).filter(lambda x: x != m))
    assert not verify_consistency(other, n, r1, r2, proof)
    for other_size in (n // 2, n * 2, n + 1):
        if m < other_size <= N and len(tree.consistency_proof(m, other_size)) != len(proof):
            assert not verify_consistency(m, other_size, r1, r2, proof)


def test_reopen_from_store_keeps_growing() -> None:
    store = MemoryNodeStore()
    first = MerkleTree(store)
    first.extend_hashes(LEAF_HASHES[:333])
    reopened = MerkleTree(store)  # e.g. a ledger restart over its SQL store
    assert reopened.size == 333
    assert reopened.root() == first.root()
    reopened.extend_hashes(LEAF_HASHES[333:])
    assert reopened.root() == merkle_root(LEAF_HASHES)


def test_single_appends_equal_batch(tree: MerkleTree) -> None:
    t = MerkleTree()
    for h in LEAF_HASHES[:130]:
        t.append_hash(h)
    assert t.root() == tree.root(130)
    assert t.append(b"raw") == 130
    assert t.leaf_hash_at(130) == leaf_hash(b"raw")


def test_store_rejects_gaps_and_missing_nodes() -> None:
    store = MemoryNodeStore()
    with pytest.raises(ValueError, match="expected index 0"):
        store.put_many(0, 1, [SOME])
    with pytest.raises(KeyError):
        store.get(0, 0)
    store.put_many(0, 0, [SOME])
    assert store.get(0, 0) == SOME
    assert store.count(0) == 1
    assert store.count(5) == 0


def test_bad_arguments(tree: MerkleTree) -> None:
    with pytest.raises(ValueError, match="tree_size"):
        tree.root(N + 1)
    with pytest.raises(ValueError, match="leaf_index"):
        tree.inclusion_proof(5, 5)
    with pytest.raises(ValueError, match="first"):
        tree.consistency_proof(7, 6)
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleTree().extend_hashes([b"short"])
    with pytest.raises(IndexError):
        tree.leaf_hash_at(N)


def test_node_hash_is_prefixed() -> None:
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert leaf_hash(b"a") == hashlib.sha256(b"\x00a").digest()
