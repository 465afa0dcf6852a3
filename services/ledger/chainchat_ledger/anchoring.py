"""The anchoring loop: one transaction per interval anchors the whole current tree head.

Only the lease holder runs it. Each anchor transaction is signed locally and recorded as
``pending`` (hash, nonce, signed bytes) before it is broadcast; until it is settled no other anchor
is made, so the nonce sequence cannot fork. Settling means: find the receipt; if there is none,
broadcast the same bytes again (same tree head, same nonce — a restart or a second instance can
never double-anchor); if its nonce was consumed by something else, drop it and anchor afresh.
When the chain is down, appends continue and the next successful anchor covers all of them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta

from chainchat_ledger import metrics
from chainchat_ledger.anchors import AnchorBook
from chainchat_ledger.chain import ChainClient, ChainRejected, ChainUnavailable, Receipt
from chainchat_ledger.deployment import ConfigurationError, DeploymentManager
from chainchat_ledger.events import AnchoredPublisher
from chainchat_ledger.leader import LeaderLease
from chainchat_ledger.log import TransparencyLog
from chainchat_ledger.models import AnchorRecord, ChainDeployment
from chainchat_ledger.settings import LedgerSettings
from chainchat_service.db import as_utc, utcnow
from chainchat_service.logging import get_logger
from chainchat_service.loops import Backoff, supervise

log = get_logger(__name__)

CHAIN_CHECK_INTERVAL_S = 5.0
MAX_BACKOFF_S = 10.0


@dataclass(eq=False)
class Anchorer:
    settings: LedgerSettings
    tlog: TransparencyLog
    book: AnchorBook
    chain: ChainClient
    deployments: DeploymentManager
    lease: LeaderLease
    publisher: AnchoredPublisher
    anchored_size: int = field(default=0, init=False)
    _last_anchor_at: float = field(default=float("-inf"), init=False)
    _last_check_at: float = field(default=float("-inf"), init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _state: str = field(default="starting", init=False)

    def wake(self) -> None:
        """Called after appends: anchor early when ANCHOR_MAX_LEAVES are waiting."""
        if self.tlog.committed_size - self.anchored_size >= self.settings.anchor_max_leaves:
            self._wake.set()

    async def run(self, *, stop: asyncio.Event | None = None) -> None:
        """Loop for the life of the service, with bounded back-off on any failure."""
        poll: float = min(0.25, self.settings.anchor_interval_s / 4)

        async def round_() -> float:
            if self.lease.is_leader:
                await self.step()
                self._set_state("anchoring")
                # wake when the interval is up rather than up to a poll later: an entry waits for
                # the next anchor half an interval on average, and no longer than it must
                until_due: float = self._last_anchor_at + self.settings.anchor_interval_s - time.monotonic()
                return min(poll, until_due) if until_due > 0 else poll
            self._set_state("standby")
            return poll

        await supervise("ledger-anchorer", round_, backoff=Backoff(0.5, MAX_BACKOFF_S), wake=self._wake,
                        stop=stop, on_error=self._failed)  # fmt: skip

    def _failed(self, exc: Exception) -> float | None:
        """The state the failure puts the loop in; a refusal waits at least 2 s."""
        metrics.LOOP_ERRORS.labels("anchor").inc()
        if isinstance(exc, ChainUnavailable):
            self._set_state("chain_unreachable", error=str(exc))
        elif isinstance(exc, ChainRejected | ConfigurationError):
            self._set_state("chain_error", error=str(exc))
            return 2.0
        else:  # a bug: the loop outlives it, logged with its trace
            log.exception("anchor_loop_failed")
        return None

    def _set_state(self, state: str, **detail: object) -> None:
        if state != self._state:
            level = log.warning if state in ("chain_unreachable", "chain_error") else log.info
            level("anchor_state_changed", state=state, previous=self._state, **detail)
            self._state = state

    def _due(self, committed: int) -> bool:
        grown = committed - self.anchored_size
        if grown <= 0:
            return False
        waited = time.monotonic() - self._last_anchor_at
        return waited >= self.settings.anchor_interval_s or grown >= self.settings.anchor_max_leaves

    async def step(self) -> None:
        """One pass: settle an in-flight anchor, or anchor the current head when it is due."""
        committed = await self.tlog.sync()
        checking = time.monotonic() - self._last_check_at >= CHAIN_CHECK_INTERVAL_S
        if not (self._due(committed) or checking or self.chain.up is False):
            return
        deployment = await self.deployments.ensure()
        self._last_check_at = time.monotonic()
        pending = await self.book.pending(deployment.epoch)
        if pending is not None:
            await self.settle(deployment, pending)
            return
        latest = await self.book.latest_confirmed(deployment.epoch)
        self._set_anchored(latest.tree_size if latest else 0, committed)
        if self._due(committed):
            await self.anchor(deployment, committed)

    def _set_anchored(self, size: int, committed: int) -> None:
        self.anchored_size = size
        metrics.ANCHORED_SIZE.set(size)
        metrics.PENDING_LEAVES.set(max(committed - size, 0))

    async def anchor(self, deployment: ChainDeployment, tree_size: int) -> None:
        """Sign, record, then broadcast ``anchor(tree_size, root)``; settle it."""
        address = deployment.contract_address
        assert address is not None
        root = self.tlog.root(tree_size)
        nonce = await self.chain.next_nonce()
        signed = await self.chain.sign_anchor(address, tree_size, root, nonce)
        record = await self.book.add(AnchorRecord(
            epoch=deployment.epoch, contract_address=address, tree_size=tree_size,
            root_hash=root.hex(), tx_hash=signed.tx_hash, nonce=nonce, raw_tx=signed.raw,
        ))  # fmt: skip
        self._last_anchor_at = time.monotonic()
        log.info("anchor_sending", tree_size=tree_size, new_leaves=tree_size - self.anchored_size,
                 tx_hash=signed.tx_hash, nonce=nonce)  # fmt: skip
        await self.settle(deployment, record)

    async def settle(self, deployment: ChainDeployment, record: AnchorRecord) -> None:
        started = time.monotonic()
        receipt = await self.chain.receipt(record.tx_hash)
        if receipt is None:
            receipt = await self._broadcast(record)
        if receipt is None:
            return  # not mined yet (or dropped): the next step looks again
        if receipt.ok:
            await self._confirm(deployment, record, receipt)
            metrics.ANCHOR_SECONDS.observe(time.monotonic() - started)
            return
        record.status, record.error, record.raw_tx = "failed", "transaction reverted", None
        record.block_number, record.gas_used = receipt.block_number, receipt.gas_used
        await self.book.save(record)
        metrics.ANCHOR_TXS.labels("reverted").inc()
        log.error("anchor_reverted", tx_hash=record.tx_hash, tree_size=record.tree_size)

    async def _broadcast(self, record: AnchorRecord) -> Receipt | None:
        timeout = timedelta(seconds=self.settings.anchor_tx_timeout_s)
        if record.sent_at is None or utcnow() - as_utc(record.sent_at) > timeout:
            assert record.raw_tx is not None
            try:
                await self.chain.send_raw(record.raw_tx)
            except ChainRejected as exc:
                receipt = await self.chain.receipt(record.tx_hash)
                if receipt is not None:
                    return receipt
                if await self.chain.mined_nonce() > record.nonce:
                    record.status, record.error = "dropped", f"nonce used elsewhere: {exc}"[:500]
                    await self.book.save(record)
                    metrics.ANCHOR_TXS.labels("dropped").inc()
                    log.warning("anchor_dropped", tx_hash=record.tx_hash, nonce=record.nonce)
                    return None
                log.warning("anchor_broadcast_rejected", tx_hash=record.tx_hash, error=str(exc))
            if record.sent_at is not None:
                metrics.ANCHOR_TXS.labels("rebroadcast").inc()
            record.sent_at = utcnow()
            await self.book.save(record)
        wait = min(self.settings.anchor_tx_timeout_s, 10.0)
        return await self.chain.wait_receipt(record.tx_hash, wait)

    async def _confirm(self, deployment: ChainDeployment, record: AnchorRecord, receipt: Receipt) -> None:
        address = deployment.contract_address
        assert address is not None
        previous = await self.book.latest_confirmed(deployment.epoch)
        event = self.chain.anchored_event(address, receipt)
        head_index = event.index if event else await self.chain.head_count(address) - 1
        record.status, record.head_index, record.raw_tx = "confirmed", head_index, None
        record.block_number, record.gas_used = receipt.block_number, receipt.gas_used
        record.confirmed_at = utcnow()
        await self.book.save(record)
        metrics.ANCHOR_TXS.labels("confirmed").inc()
        metrics.ANCHOR_GAS.inc(receipt.gas_used)
        prev_size = previous.tree_size if previous else 0
        self._set_anchored(record.tree_size, self.tlog.committed_size)
        log.info("anchored", head_index=head_index, tree_size=record.tree_size,
                 covered=record.tree_size - prev_size, tx_hash=record.tx_hash,
                 block_number=receipt.block_number, gas_used=receipt.gas_used)  # fmt: skip
        await self.publisher.publish(deployment, record, prev_size)
