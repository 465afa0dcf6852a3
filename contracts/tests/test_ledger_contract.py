"""ChainChatLedger on a real Ganache (and once on Anvil): roles, monotonic heads, events, and
``verifyInclusion`` agreeing with the Python RFC 9162 verifier."""

from __future__ import annotations

import random

import pytest
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError

from chainchat_protocol import merkle
from chainchat_testing.contracts import Deploy, error_selector, make_deployer, revert_data
from devstack.components import Chain

pytestmark = pytest.mark.integration

ROOT_A = b"\xaa" * 32
ROOT_B = b"\xbb" * 32
# Sizes around powers of two are where RFC 9162 paths change shape.
TREE_SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17, 31, 32, 33, 100, 255, 256, 257, 1000]


def _anchor(w3: Web3, ledger: Contract, sender: str, size: int, root: bytes) -> dict:
    tx = ledger.functions.anchor(size, root).transact({"from": sender})
    return dict(w3.eth.wait_for_transaction_receipt(tx, timeout=30))


def test_admin_is_anchorer_and_others_are_not(deploy: Deploy, accounts: list[str]) -> None:
    ledger = deploy()
    role = ledger.functions.ANCHORER_ROLE().call()
    assert role == Web3.keccak(text="ANCHORER_ROLE")
    assert ledger.functions.hasRole(role, accounts[0]).call()
    assert ledger.functions.hasRole(b"\x00" * 32, accounts[0]).call()  # DEFAULT_ADMIN_ROLE
    assert not ledger.functions.hasRole(role, accounts[1]).call()
    with pytest.raises(ContractLogicError) as caught:
        ledger.functions.anchor(1, ROOT_A).transact({"from": accounts[1]})
    assert revert_data(caught.value).startswith(
        error_selector("AccessControlUnauthorizedAccount(address,bytes32)")
    )


def test_role_management_by_admin_only(w3: Web3, deploy: Deploy, accounts: list[str]) -> None:
    ledger = deploy()
    admin, anchorer, outsider = accounts[0], accounts[1], accounts[2]
    role = ledger.functions.ANCHORER_ROLE().call()
    with pytest.raises(ContractLogicError):  # a non-admin cannot grant
        ledger.functions.grantRole(role, outsider).transact({"from": outsider})
    w3.eth.wait_for_transaction_receipt(ledger.functions.grantRole(role, anchorer).transact({"from": admin}))
    assert _anchor(w3, ledger, anchorer, 1, ROOT_A)["status"] == 1
    w3.eth.wait_for_transaction_receipt(ledger.functions.revokeRole(role, anchorer).transact({"from": admin}))
    with pytest.raises(ContractLogicError):
        ledger.functions.anchor(2, ROOT_B).transact({"from": anchorer})


def test_tree_size_must_grow(w3: Web3, deploy: Deploy, accounts: list[str]) -> None:
    ledger = deploy()
    admin = accounts[0]
    not_increasing = error_selector("TreeSizeNotIncreasing(uint64,uint64)")
    with pytest.raises(ContractLogicError) as caught:
        ledger.functions.anchor(0, ROOT_A).transact({"from": admin})  # the empty tree is no head
    assert revert_data(caught.value).startswith(not_increasing)
    _anchor(w3, ledger, admin, 5, ROOT_A)
    for size in (5, 4):
        with pytest.raises(ContractLogicError) as caught:
            ledger.functions.anchor(size, ROOT_B).transact({"from": admin})
        assert revert_data(caught.value).startswith(not_increasing)
    _anchor(w3, ledger, admin, 6, ROOT_B)
    assert ledger.functions.headCount().call() == 2


def test_heads_and_events(w3: Web3, deploy: Deploy, accounts: list[str]) -> None:
    ledger = deploy()
    with pytest.raises(ContractLogicError) as caught:
        ledger.functions.latestHead().call()
    assert revert_data(caught.value).startswith(error_selector("NoHeads()"))
    receipts = [_anchor(w3, ledger, accounts[0], n, bytes([n]) * 32) for n in (3, 10, 11)]
    assert ledger.functions.headCount().call() == 3
    for index, (n, receipt) in enumerate(zip((3, 10, 11), receipts, strict=True)):
        (event,) = ledger.events.Anchored().process_receipt(receipt)
        block = w3.eth.get_block(receipt["blockNumber"])
        assert event["args"]["index"] == index
        assert event["args"]["treeSize"] == n
        assert event["args"]["rootHash"] == bytes([n]) * 32
        assert event["args"]["timestamp"] == block["timestamp"]
        assert ledger.functions.head(index).call() == [n, bytes([n]) * 32, block["timestamp"]]
    latest = ledger.functions.latestHead().call()
    assert latest[:3] == [2, 11, bytes([11]) * 32]
    with pytest.raises(ContractLogicError):
        ledger.functions.head(3).call()


def test_anchor_gas_is_constant_and_small(w3: Web3, deploy: Deploy, accounts: list[str]) -> None:
    ledger = deploy()
    gas = [_anchor(w3, ledger, accounts[0], n, ROOT_A)["gasUsed"] for n in (1, 10_000, 10**12)]
    # The first anchor pays for creating the array length slot. Later ones cost the same whatever
    # the tree size (up to calldata byte pricing): 21k base + two new storage slots + the event.
    assert abs(gas[1] - gas[2]) < 200
    assert gas[1] < 85_000, gas


def _check_tree_against_python(ledger: Contract, w3: Web3, admin: str, rng: random.Random) -> int:
    tree = merkle.MerkleTree()
    checked = 0
    for head_index, size in enumerate(TREE_SIZES):
        while tree.size < size:
            tree.append(rng.randbytes(32))
        root = tree.root()
        _anchor(w3, ledger, admin, size, root)
        for leaf_index in {0, size - 1, *(rng.randrange(size) for _ in range(3))}:
            leaf = tree.leaf_hash_at(leaf_index)
            proof = tree.inclusion_proof(leaf_index)
            assert merkle.verify_inclusion(leaf_index, size, leaf, proof, root)
            verify = ledger.functions.verifyInclusion
            assert verify(head_index, leaf_index, leaf, proof).call() is True
            for bad in _tampered(leaf_index, size, leaf, proof, rng):
                py_ok = merkle.verify_inclusion(bad[0], size, bad[1], bad[2], root)
                chain_ok = verify(head_index, bad[0], bad[1], bad[2]).call()
                assert chain_ok == py_ok, (size, leaf_index, bad)
            checked += 1
        if head_index > 0:  # a valid proof for another head does not verify against this one
            old = TREE_SIZES[head_index - 1]
            proof = tree.inclusion_proof(0, old)
            ok = ledger.functions.verifyInclusion(head_index, 0, tree.leaf_hash_at(0), proof).call()
            assert ok is (merkle.root_from_inclusion_proof(0, size, tree.leaf_hash_at(0), proof) == root)
    return checked


def _tampered(index: int, size: int, leaf: bytes, proof: list[bytes], rng: random.Random):
    flipped = bytearray(leaf)
    flipped[rng.randrange(32)] ^= 1 << rng.randrange(8)
    yield index, bytes(flipped), proof
    if proof:
        bad = list(proof)
        bad[rng.randrange(len(bad))] = rng.randbytes(32)
        yield index, leaf, bad
        yield index, leaf, proof[:-1]
    yield index, leaf, [*proof, rng.randbytes(32)]
    yield (index + 1) % size, leaf, proof if size > 1 else [rng.randbytes(32)]
    yield size, leaf, proof  # out of range


def test_verify_inclusion_agrees_with_python(w3: Web3, deploy: Deploy, accounts: list[str]) -> None:
    ledger = deploy()
    checked = _check_tree_against_python(ledger, w3, accounts[0], random.Random(9162))
    assert checked > 60
    # unknown head and over-long proofs answer false rather than revert
    assert ledger.functions.verifyInclusion(len(TREE_SIZES), 0, ROOT_A, []).call() is False
    assert ledger.functions.verifyInclusion(0, 0, ROOT_A, [ROOT_B] * 65).call() is False


def test_verify_inclusion_gas_is_logarithmic(w3: Web3, deploy: Deploy, accounts: list[str]) -> None:
    ledger = deploy()
    tree = merkle.MerkleTree()
    tree.extend_hashes([bytes([i % 256, i // 256]) * 16 for i in range(5000)])
    _anchor(w3, ledger, accounts[0], tree.size, tree.root())
    proof = tree.inclusion_proof(1234)
    gas = ledger.functions.verifyInclusion(0, 1234, tree.leaf_hash_at(1234), proof).estimate_gas()
    assert gas < 80_000, gas  # 21k base + ~7k calldata + ~13 precompile calls


def test_contract_on_anvil(anvil: Chain) -> None:
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    admin = w3.eth.accounts[1]
    ledger = make_deployer(w3, admin)()
    rng = random.Random(7)
    assert _check_tree_against_python(ledger, w3, admin, rng) > 60
    with pytest.raises(ContractLogicError):
        ledger.functions.anchor(1, ROOT_A).transact({"from": admin})
    with pytest.raises(ContractLogicError):
        ledger.functions.anchor(2, ROOT_A).transact({"from": w3.eth.accounts[2]})
