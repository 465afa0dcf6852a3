"""Settings of the auth service (environment variables, see .env.example)."""

from __future__ import annotations

from chainchat_service.settings import ServiceSettings


class AuthSettings(ServiceSettings):
    service_name: str = "auth"
    http_port: int = 8101
