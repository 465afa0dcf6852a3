"""Helpers for the ledger's integration tests and benchmark: an isolated stack (NATS, a chain and
ledger processes on free ports), entry factories and publishing, and polling.

Fault tests kill and restart components, so each builds its own stack instead of sharing the
session's.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from chainchat_protocol.abi import ledger_abi
from chainchat_protocol.ledger import LEDGER_INFO, LedgerInfo
from chainchat_protocol.log_entry import LogEntry, LogKind
from chainchat_protocol.rpc import Empty
from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus
from chainchat_service.outbox import ensure_ledger_stream
from devstack.stack import ServiceProcess, Stack, free_ports

T = TypeVar("T")

FAST_ENV = {
    "ANCHOR_INTERVAL_S": "1",
    "LEADER_TTL_S": "3",
    "CONSUMER_ACK_WAIT_S": "3",
    "ANCHOR_TX_TIMEOUT_S": "5",
    "CHAIN_REQUEST_TIMEOUT_S": "3",
    "LOG_LEVEL": "INFO",
}


class IsolatedLedger:
    """NATS + a chain + ledger instances, private to one test."""

    def __init__(self, var_dir: Path, *, chain_kind: str = "ganache", env: dict[str, str] | None = None):
        self.stack = Stack(
            var_dir=var_dir,
            ports=free_ports(),
            environment="test",
            chain_kind=chain_kind,
            extra_env={**FAST_ENV, **(env or {})},
        )

    @property
    def nats_url(self) -> str:
        """The NATS URL with the operator's credentials, for the test's own client."""
        return self.stack.nats.client_url()

    @property
    def rpc_url(self) -> str:
        return self.stack.chain.rpc_url

    @property
    def instances(self) -> list[ServiceProcess]:
        return self.stack.services.get("ledger", [])

    def start(self, instances: int = 1) -> IsolatedLedger:
        self.stack.nats.start()
        self.stack.chain.start()
        for _ in range(instances):
            self.add_instance()
        return self

    def add_instance(self, env: dict[str, str] | None = None) -> ServiceProcess:
        return self.stack.add_service("ledger", env=env)

    def log_text(self, index: int = 0) -> str:
        label = "ledger" if index == 0 else f"ledger{index + 1}"
        path = self.stack.var_dir / "log" / f"{label}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self.stack.stop()


def make_entries(count: int, kind: LogKind = "message", prefix: str | None = None) -> list[LogEntry]:
    """``count`` distinct entries with unique ids (a random prefix unless given)."""
    prefix = prefix or uuid.uuid4().hex[:10]
    return [
        LogEntry.create(kind, f"{prefix}-{i}", hashlib.sha256(f"{prefix}/{i}".encode()).hexdigest())
        for i in range(count)
    ]


async def connect(url: str, name: str = "ledger-test") -> Bus:
    bus = Bus(url, name)
    await bus.connect()
    await ensure_ledger_stream(bus)
    return bus


async def publish_entries(
    bus: Bus, entries: list[LogEntry], *, msg_id_suffix: str = "", in_flight: int = 64
) -> None:
    """Publish to JetStream as the outbox does (``Nats-Msg-Id`` = kind:id, plus a suffix to get
    past the stream's duplicate window and exercise the ledger's own idempotency), with up to
    ``in_flight`` publishes awaiting their acknowledgement at once."""

    async def one(entry: LogEntry) -> None:
        await bus.js.publish(
            Subject.LEDGER_ENTRY.format(kind=entry.kind),
            entry.model_dump_json().encode(),
            headers={"Nats-Msg-Id": f"{entry.kind}:{entry.id}{msg_id_suffix}"},
            timeout=10,
        )

    for start in range(0, len(entries), in_flight):
        await asyncio.gather(*(one(e) for e in entries[start : start + in_flight]))


async def ledger_info(bus: Bus, timeout: float = 5.0) -> LedgerInfo:
    return await bus.request(LEDGER_INFO, Empty(), timeout=timeout)


async def wait_for(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 30.0, interval: float = 0.2, what: str = ""
) -> T:
    """Poll ``probe`` until it returns something truthy; its exceptions count as "not yet"."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = await probe()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - a component may be restarting
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or probe}: {last!r}")
        await asyncio.sleep(interval)


def onchain_head_count(rpc_url: str, address: str) -> int:
    """``headCount()`` of the ChainChatLedger at ``address``, read straight from the chain."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # web3 7 imports websockets.legacy
        from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(rpc_url))
    contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=ledger_abi())
    return int(contract.functions.headCount().call())


async def wait_anchored(bus: Bus, tree_size: int, *, timeout: float = 30.0) -> LedgerInfo:
    """Wait until the latest anchored head covers at least ``tree_size`` leaves."""

    async def probe() -> LedgerInfo | None:
        info = await ledger_info(bus)
        head = info.latest_head
        return info if head is not None and head.tree_size >= tree_size else None

    return await wait_for(probe, timeout=timeout, what=f"an anchored head of size >= {tree_size}")
