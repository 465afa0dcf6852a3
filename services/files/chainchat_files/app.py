"""The files service process: database, IPFS client, NATS handlers, internal HTTP API, background loops."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI

from chainchat_files.api import router as internal_router
from chainchat_files.handlers import ChatMembership, FilesHandlers
from chainchat_files.ipfs import KuboClient
from chainchat_files.maintenance import IpfsMaintenance
from chainchat_files.service import FileService
from chainchat_files.settings import FilesSettings
from chainchat_service.bus import Bus
from chainchat_service.db import Database
from chainchat_service.logging import get_logger
from chainchat_service.outbox import OutboxRelay, ensure_ledger_stream
from chainchat_service.runtime import ServiceRuntime
from chainchat_service.web import create_service_app

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

log = get_logger(__name__)


@dataclass
class Files:
    """Everything one files instance runs, wired together."""

    settings: FilesSettings
    db: Database
    ipfs: KuboClient
    relay: OutboxRelay
    maintenance: IpfsMaintenance
    service: FileService
    handlers: FilesHandlers


def build_files(settings: FilesSettings, db: Database, bus: Bus) -> Files:
    ipfs = KuboClient(
        settings.ipfs_api_url,
        connect_timeout=settings.ipfs_connect_timeout_s,
        read_timeout=settings.ipfs_read_timeout_s,
    )
    relay = OutboxRelay(db, bus, settings.service_name)
    maintenance = IpfsMaintenance(
        ipfs,
        settings.ipfs_gc_interval_s,
        undeclared_ttl_s=settings.files_undeclared_ttl_s,
        orphan_grace_s=settings.ipfs_orphan_grace_s,
        sweep_interval_s=settings.files_sweep_interval_s,
    )
    service = FileService(
        db,
        ipfs,
        settings,
        is_member=ChatMembership(bus, settings.membership_timeout_s),
        on_commit=relay.wake,
        on_unpin_queued=maintenance.wake,
    )
    return Files(settings, db, ipfs, relay, maintenance, service, FilesHandlers(service))


async def setup(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Open the database (migrated), the IPFS client and the loops; handlers once NATS is up."""
    settings: FilesSettings = app.state.settings
    db = Database(settings.sqlalchemy_url())
    await db.migrate(MIGRATIONS)
    files = build_files(settings, db, runtime.bus)
    app.state.files = files  # api.py streams bytes through files.service

    async def ipfs_check() -> None:
        await files.ipfs.node_info()

    runtime.add_check("database", db.ping)
    runtime.add_check("ipfs", ipfs_check)
    runtime.spawn(files.maintenance.run(files.service), "files-ipfs-maintenance")

    async def on_connected(bus: Bus) -> None:
        await ensure_ledger_stream(bus)
        await files.handlers.register(bus)
        runtime.spawn(files.relay.run(), "files-outbox-relay")
        runtime.spawn(files.handlers.consume_chat_events(bus), "files-chat-events")

    runtime.on_connected(on_connected)
    if not settings.files_internal_secret:
        log.info(
            "files_internal_trust",
            mode="loopback",
            detail="FILES_INTERNAL_SECRET unset: loopback callers only",
        )


async def teardown(app: FastAPI, runtime: ServiceRuntime) -> None:
    files: Files = app.state.files
    await files.ipfs.aclose()
    await files.db.close()


def create_app(settings: FilesSettings | None = None) -> FastAPI:
    settings = settings or FilesSettings()
    app = create_service_app(settings, title="ChainChat files", setup=setup, teardown=teardown)
    app.include_router(internal_router)
    return app
