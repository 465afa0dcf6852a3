"""Settings of the chat service (environment variables, see .env.example)."""

from __future__ import annotations

from chainchat_service.settings import ServiceSettings


class ChatSettings(ServiceSettings):
    service_name: str = "chat"
    http_port: int = 8102
