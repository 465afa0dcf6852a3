"""Settings of the ledger service (environment variables, see .env.example)."""

from __future__ import annotations

from chainchat_service.settings import ServiceSettings


class LedgerSettings(ServiceSettings):
    service_name: str = "ledger"
    http_port: int = 8104
