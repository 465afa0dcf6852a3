"""Settings of the files service (environment variables, see .env.example)."""

from __future__ import annotations

from chainchat_service.settings import ServiceSettings


class FilesSettings(ServiceSettings):
    service_name: str = "files"
    http_port: int = 8103
