"""The ledger service process: the log, its stream consumer, the anchoring loop, the NATS API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from chainchat_ledger.anchoring import Anchorer
from chainchat_ledger.anchors import AnchorBook
from chainchat_ledger.chain import ChainClient
from chainchat_ledger.deployment import DeploymentManager
from chainchat_ledger.events import AnchoredPublisher
from chainchat_ledger.handlers import LedgerHandlers
from chainchat_ledger.leader import LeaderLease
from chainchat_ledger.log import TransparencyLog
from chainchat_ledger.proofs import ProofService
from chainchat_ledger.settings import LedgerSettings
from chainchat_service.bus import Bus
from chainchat_service.db import Database
from chainchat_service.runtime import ServiceRuntime
from chainchat_service.web import create_service_app

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass
class Ledger:
    """Everything one ledger instance runs, wired together (also used by tests in-process)."""

    settings: LedgerSettings
    db: Database
    tlog: TransparencyLog
    book: AnchorBook
    chain: ChainClient
    lease: LeaderLease
    anchorer: Anchorer
    proofs: ProofService
    handlers: LedgerHandlers


def build_ledger(settings: LedgerSettings, db: Database, bus: Bus) -> Ledger:
    tlog = TransparencyLog(db)
    book = AnchorBook(db)
    chain = ChainClient(settings)
    lease = LeaderLease(bus, settings.leader_bucket, settings.instance_id, settings.leader_ttl_s)
    deployments = DeploymentManager(settings, chain, book, tlog)
    publisher = AnchoredPublisher(bus, tlog)
    anchorer = Anchorer(settings, tlog, book, chain, deployments, lease, publisher)
    proofs = ProofService(settings, tlog, book, chain)
    handlers = LedgerHandlers(tlog, proofs, lease, settings, on_appended=anchorer.wake)
    return Ledger(settings, db, tlog, book, chain, lease, anchorer, proofs, handlers)


async def setup(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Open the database (migrations), load the tree, then start the loops once NATS is up."""
    settings: LedgerSettings = app.state.settings
    db = Database(settings.sqlalchemy_url())
    await db.migrate(MIGRATIONS)
    ledger = build_ledger(settings, db, runtime.bus)
    await ledger.tlog.open()
    app.state.ledger = ledger
    runtime.add_check("database", db.ping)

    async def on_connected(bus: Bus) -> None:
        await ledger.handlers.register(bus)
        runtime.spawn(ledger.lease.run(), "ledger-leader")
        runtime.spawn(ledger.handlers.consume_entries(bus), "ledger-consumer")
        runtime.spawn(ledger.anchorer.run(), "ledger-anchorer")

    runtime.on_connected(on_connected)


async def teardown(app: FastAPI, runtime: ServiceRuntime) -> None:
    ledger: Ledger | None = getattr(app.state, "ledger", None)
    if ledger is not None:
        await ledger.chain.close()
        await ledger.db.close()


def create_app(settings: LedgerSettings | None = None) -> FastAPI:
    settings = settings or LedgerSettings()
    return create_service_app(settings, title="ChainChat ledger", setup=setup, teardown=teardown)
