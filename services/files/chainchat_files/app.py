"""The files service process: connects to NATS, serves its handlers, health and metrics."""

from __future__ import annotations

from fastapi import FastAPI

from chainchat_files.settings import FilesSettings
from chainchat_service.runtime import ServiceRuntime
from chainchat_service.web import create_service_app


async def setup(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Open what the service owns and register its NATS handlers."""


def create_app(settings: FilesSettings | None = None) -> FastAPI:
    settings = settings or FilesSettings()
    return create_service_app(settings, title="ChainChat files", setup=setup)
