"""Verify a ChainChat proof object (SPEC §6) against the chain itself, trusting only an RPC URL.

:func:`verify_proof_onchain` checks, in order:

1. the proof object is well formed, is about the entry asked for (``entry.kind`` and ``entry.id``:
   a tombstone's proof carries the deleted message's digest, so the digest alone is not enough),
   and is ``anchored``;
2. locally (RFC 9162): the entry hashes to the leaf, and the inclusion proof reaches ``root_hash``
   at ``tree_size`` — the same code the ledger uses;
3. the node at ``rpc_url`` is on ``chain_id`` and ``contract_address`` holds code;
4. the contract's head ``head_index`` is exactly ``(tree_size, root_hash)``;
5. the contract's own ``verifyInclusion`` accepts the proof (RFC 9162 in Solidity, sha256
   precompile), so the verdict does not rest on this library alone;
6. transaction ``tx_hash`` is mined in block ``block_number`` and emitted ``Anchored`` for that head.

Nothing from the ChainChat server is trusted: a server that rewrote history would have to rewrite
the chain as well.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import aiohttp
from pydantic import ValidationError

from chainchat.ledger_pin import LedgerPin
from chainchat_protocol.abi import ledger_abi
from chainchat_protocol.proof import ProofObject, hashes_from_hex, verify_proof_offline

with warnings.catch_warnings():
    # web3 7 imports websockets.legacy, deprecated in websockets 14
    warnings.simplefilter("ignore", DeprecationWarning)
    from web3 import AsyncHTTPProvider, AsyncWeb3
    from web3.exceptions import Web3Exception

__all__ = ["OnchainVerification", "verify_proof_onchain"]


@dataclass
class OnchainVerification:
    """The verdict and every fact it rests on. ``valid`` is True only if every check passed;
    ``reason`` names the first check that failed."""

    valid: bool = False
    reason: str | None = None
    code: str | None = None
    status: str | None = None
    kind: str | None = None
    id: str | None = None
    digest: str | None = None
    leaf_index: int | None = None
    tree_size: int | None = None
    root_hash: str | None = None
    head_index: int | None = None
    tx_hash: str | None = None
    block_number: int | None = None
    chain_id: int | None = None
    contract_address: str | None = None
    leaf_hash: str | None = None
    local_verify_inclusion: bool | None = None
    onchain_head_matches: bool | None = None
    onchain_verify_inclusion: bool | None = None
    tx_matches: bool | None = None
    anchored_at: int | None = None
    checks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the CLI's ``--json`` output)."""
        return asdict(self)

    def fail(self, reason: str, code: str = "invalid_proof") -> OnchainVerification:
        self.valid = False
        self.reason = reason
        self.code = code
        return self


async def verify_proof_onchain(
    proof: ProofObject | dict[str, Any],
    rpc_url: str,
    *,
    expect: tuple[str, str] | None = None,
    ledger: LedgerPin | None = None,
    timeout: float = 10.0,
) -> OnchainVerification:
    """Check ``proof`` locally and against the contract it names, via ``rpc_url`` only.

    ``expect`` is the ``(kind, id)`` the caller asked about; a proof of any other entry fails with
    code ``wrong_entry``; ``ledger`` is the pinned ledger, and a proof naming another chain or
    contract fails with code ``ledger_mismatch`` before the chain is asked. Never raises for a
    bad proof or an unreachable node: the result says what failed (``reason``, and ``code``).
    """
    result = OnchainVerification()
    try:
        parsed = proof if isinstance(proof, ProofObject) else ProofObject.model_validate(proof)
    except ValidationError as exc:
        return result.fail(f"not a proof object: {exc.errors()[0].get('msg', 'invalid')}")
    _copy_claims(result, parsed)
    entry = parsed.entry
    if expect is not None and entry is not None and (entry.kind, entry.id) != expect:
        return result.fail(
            f"this is the proof of {entry.kind} {entry.id}, not of {expect[0]} {expect[1]}",
            "wrong_entry",
        )
    if parsed.status != "anchored":
        return result.fail("the entry is not anchored on chain yet", "not_anchored")
    if ledger is not None and not ledger.names(parsed.chain_id, parsed.contract_address):
        return result.fail(
            f"the proof names contract {parsed.contract_address} on chain {parsed.chain_id}, "
            f"but the pinned ledger is {ledger.contract_address} "
            f"on chain {ledger.chain_id}",
            "ledger_mismatch",
        )
    offline = verify_proof_offline(parsed)
    result.leaf_hash = offline.leaf_hash
    result.local_verify_inclusion = offline.ok
    if not offline.ok:
        return result.fail(f"local RFC 9162 check failed: {offline.reason}")
    result.checks.append("local inclusion proof reaches root_hash")
    w3 = AsyncWeb3(
        AsyncHTTPProvider(rpc_url, request_kwargs={"timeout": aiohttp.ClientTimeout(total=timeout)})
    )
    try:
        return await _check_chain(w3, parsed, result)
    except (Web3Exception, OSError, ValueError, TimeoutError) as exc:
        return result.fail(f"chain check failed: {type(exc).__name__}: {str(exc)[:200]}", "chain_unreachable")
    finally:
        await _close(w3)


def _copy_claims(result: OnchainVerification, proof: ProofObject) -> None:
    result.status = proof.status
    if proof.entry is not None:
        result.kind, result.id, result.digest = proof.entry.kind, proof.entry.id, proof.entry.digest
    result.leaf_index = proof.leaf_index
    result.tree_size = proof.tree_size
    result.root_hash = proof.root_hash
    result.head_index = proof.head_index
    result.tx_hash = proof.tx_hash
    result.block_number = proof.block_number
    result.chain_id = proof.chain_id
    result.contract_address = proof.contract_address


async def _check_chain(
    w3: AsyncWeb3[AsyncHTTPProvider], proof: ProofObject, result: OnchainVerification
) -> OnchainVerification:
    assert proof.contract_address is not None
    assert proof.head_index is not None
    assert proof.leaf_index is not None
    assert proof.inclusion_proof is not None
    chain_id = int(await w3.eth.chain_id)
    if chain_id != proof.chain_id:
        return result.fail(f"the RPC node is on chain {chain_id}, the proof names chain {proof.chain_id}")
    address = AsyncWeb3.to_checksum_address(proof.contract_address)
    if len(await w3.eth.get_code(address)) == 0:
        return result.fail(f"no contract at {address} on chain {chain_id}")
    result.checks.append("contract code present on the named chain")
    contract = w3.eth.contract(address=address, abi=ledger_abi())
    count = int(await contract.functions.headCount().call())
    if proof.head_index >= count:
        return result.fail(f"the contract has {count} heads; head {proof.head_index} does not exist")
    size, root, timestamp = await contract.functions.head(proof.head_index).call()
    result.anchored_at = int(timestamp)
    result.onchain_head_matches = int(size) == proof.tree_size and bytes(root).hex() == proof.root_hash
    if not result.onchain_head_matches:
        return result.fail(f"head {proof.head_index} on chain is not (tree_size, root_hash) of the proof")
    result.checks.append("on-chain head equals the proof's tree head")
    path = hashes_from_hex(proof.inclusion_proof)
    leaf = bytes.fromhex(result.leaf_hash or "")
    verify = contract.functions.verifyInclusion(proof.head_index, proof.leaf_index, leaf, path)
    result.onchain_verify_inclusion = bool(await verify.call())
    if not result.onchain_verify_inclusion:
        return result.fail("the contract's verifyInclusion rejected the proof")
    result.checks.append("contract verifyInclusion returned true")
    result.tx_matches = await _tx_anchors_head(w3, contract, proof)
    if not result.tx_matches:
        return result.fail(f"transaction {proof.tx_hash} did not anchor head {proof.head_index}")
    result.checks.append("tx_hash anchored this head in block_number")
    result.valid, result.reason = True, None
    return result


async def _tx_anchors_head(w3: AsyncWeb3[AsyncHTTPProvider], contract: Any, proof: ProofObject) -> bool:
    receipt = await w3.eth.get_transaction_receipt(proof.tx_hash)  # type: ignore[arg-type]
    if int(receipt["status"]) != 1 or int(receipt["blockNumber"]) != proof.block_number:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # logs of other contracts in the receipt are skipped
        events = contract.events.Anchored().process_receipt(receipt)
    return any(
        str(e["address"]).lower() == str(proof.contract_address).lower()
        and int(e["args"]["index"]) == proof.head_index
        for e in events
    )


async def _close(w3: AsyncWeb3[AsyncHTTPProvider]) -> None:
    disconnect = getattr(w3.provider, "disconnect", None)
    if disconnect is not None:
        await disconnect()
