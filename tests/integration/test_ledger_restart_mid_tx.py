"""A ledger that stops between recording an anchor transaction and seeing it mined neither
double-anchors nor stalls: the next leader settles the very same signed transaction.

The ledger's components run in-process here (against a real NATS and Ganache) so the crash can be
placed exactly: after the pending record is written, before or after the broadcast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from chainchat_ledger.app import MIGRATIONS, Ledger, build_ledger
from chainchat_ledger.models import AnchorRecord
from chainchat_ledger.settings import LedgerSettings
from chainchat_service.bus import Bus
from chainchat_service.db import Database
from chainchat_testing.ledger import connect, make_entries, onchain_head_count
from devstack.components import Chain, NatsServer
from devstack.process import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def components(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NatsServer, Chain]]:
    root = Path(tmp_path_factory.mktemp("midtx"))
    nats = NatsServer(root / "nats", port=free_port(), monitor_port=free_port())
    chain = Chain(root / "chain", port=free_port())
    nats.start()
    chain.start()
    yield nats, chain
    chain.stop()
    nats.stop()


@pytest.fixture
async def bus(components: tuple[NatsServer, Chain]) -> AsyncIterator[Bus]:
    client = await connect(components[0].client_url("ledger"))
    yield client
    await client.close()


async def start_ledger(tmp_path: Path, components: tuple[NatsServer, Chain], bus: Bus, name: str) -> Ledger:
    nats, chain = components
    settings = LedgerSettings(
        environment="test", nats_url=nats.client_url("ledger"), chain_rpc_url=chain.rpc_url, instance_id=name,
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}", leader_bucket=f"lease_{tmp_path.name}"[:60],
        anchor_interval_s=0.1, ledger_private_key=chain.dev_private_key,
    )  # fmt: skip
    db = Database(settings.sqlalchemy_url())
    await db.migrate(MIGRATIONS)
    ledger = build_ledger(settings, db, bus)
    await ledger.tlog.open()
    assert await ledger.lease.renew_or_acquire(), f"{name} should hold the lease"
    return ledger


async def crash(ledger: Ledger) -> None:
    """What a kill leaves behind: nothing in memory, the lease free after its TTL."""
    await ledger.lease.release()
    await ledger.chain.close()
    await ledger.db.close()


async def record_pending_anchor(ledger: Ledger, *, broadcast: bool) -> AnchorRecord:
    """The first half of Anchorer.anchor: sign and record (and maybe broadcast), then 'crash'."""
    deployment = await ledger.anchorer.deployments.ensure()
    assert deployment.contract_address is not None
    size = ledger.tlog.committed_size
    nonce = await ledger.chain.next_nonce()
    signed = await ledger.chain.sign_anchor(deployment.contract_address, size, ledger.tlog.root(), nonce)
    record = await ledger.book.add(AnchorRecord(
        epoch=deployment.epoch, contract_address=deployment.contract_address, tree_size=size,
        root_hash=ledger.tlog.root().hex(), tx_hash=signed.tx_hash, nonce=nonce, raw_tx=signed.raw,
    ))  # fmt: skip
    if broadcast:
        await ledger.chain.send_raw(signed.raw)
    return record


@pytest.mark.parametrize("broadcast", [False, True], ids=["crash-before-send", "crash-after-send"])
async def test_restart_settles_the_recorded_transaction(
    tmp_path: Path, components: tuple[NatsServer, Chain], bus: Bus, broadcast: bool
) -> None:
    first = await start_ledger(tmp_path, components, bus, "first")
    await first.tlog.append(make_entries(10))
    await first.anchorer.step()  # deploys the contract and anchors head 0
    head = await first.book.latest_head()
    assert head is not None
    assert head.tree_size == 10
    await first.tlog.append(make_entries(5))
    pending = await record_pending_anchor(first, broadcast=broadcast)
    await crash(first)

    second = await start_ledger(tmp_path, components, bus, "second")
    await second.anchorer.step()
    settled = await second.book.by_tx_hash(pending.tx_hash)
    assert settled is not None
    assert settled.status == "confirmed", "the same signed transaction was settled"
    assert settled.head_index == 1
    head = await second.book.latest_head()
    assert head is not None
    assert head.tree_size == 15
    assert head.tx_hash == pending.tx_hash
    assert onchain_head_count(components[1].rpc_url, head.contract_address) == 2, "no double anchor"
    await second.tlog.append(make_entries(1))
    second.anchorer._last_anchor_at = float("-inf")  # due now, without waiting an interval
    await second.anchorer.step()
    assert onchain_head_count(components[1].rpc_url, head.contract_address) == 3, "no stall"
    await crash(second)
