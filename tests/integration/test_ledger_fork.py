"""The ledger refuses to anchor a head that does not extend the last head on chain (SPEC §11): an
operator (holding the anchorer key) anchors a forged head on the ledger's own contract; that head
is not a head of the ledger's log, so the ledger anchors nothing after it — and says so in its log
and its status (the check is ``DeploymentManager._adopt_unrecorded_heads``, before every anchor)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from web3 import Web3

from chainchat_ledger.testing import (
    IsolatedLedger,
    connect,
    ledger_info,
    make_entries,
    onchain_head_count,
    publish_entries,
    wait_anchored,
    wait_for,
)
from chainchat_protocol.abi import ledger_abi

pytestmark = pytest.mark.integration


@pytest.fixture
def isolated(tmp_path: Path) -> Iterator[IsolatedLedger]:
    stack = IsolatedLedger(tmp_path / "stack")
    yield stack
    stack.stop()


async def test_a_head_that_does_not_extend_the_chain_is_never_anchored(
    isolated: IsolatedLedger,
) -> None:
    isolated.start()
    bus = await connect(isolated.nats_url)
    try:
        await publish_entries(bus, make_entries(4))
        info = await wait_anchored(bus, 4, timeout=90)
        assert info.contract_address is not None
        w3 = Web3(Web3.HTTPProvider(isolated.rpc_url))
        anchorer = w3.eth.account.from_key(isolated.stack.chain.dev_private_key).address
        contract = w3.eth.contract(address=Web3.to_checksum_address(info.contract_address), abi=ledger_abi())
        forged_root = hashlib.sha256(b"a history that never happened").digest()
        tx = contract.functions.anchor(info.tree_size + 1, forged_root).transact({"from": anchorer})
        assert w3.eth.wait_for_transaction_receipt(tx)["status"] == 1
        heads = onchain_head_count(isolated.rpc_url, info.contract_address)

        await publish_entries(bus, make_entries(3))

        async def refused() -> bool:
            return "that is not a head of this log" in isolated.log_text()

        await wait_for(refused, timeout=60, what="the ledger refusing to anchor a fork")
        assert onchain_head_count(isolated.rpc_url, info.contract_address) == heads
        now = await ledger_info(bus)
        assert now.tree_size == info.tree_size + 3
        assert now.latest_head is not None
        assert now.latest_head.tree_size == info.tree_size
    finally:
        await bus.close()
