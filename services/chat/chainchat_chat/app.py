"""The chat service process: connects to NATS, serves its handlers, health and metrics."""

from __future__ import annotations

from fastapi import FastAPI

from chainchat_chat.settings import ChatSettings
from chainchat_service.runtime import ServiceRuntime
from chainchat_service.web import create_service_app


async def setup(app: FastAPI, runtime: ServiceRuntime) -> None:
    """Open what the service owns and register its NATS handlers."""


def create_app(settings: ChatSettings | None = None) -> FastAPI:
    settings = settings or ChatSettings()
    return create_service_app(settings, title="ChainChat chat", setup=setup)
