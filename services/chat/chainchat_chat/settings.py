"""Settings of the chat service (environment variables, see .env.example)."""

from __future__ import annotations

from pydantic import Field

from chainchat_service.settings import ServiceSettings


class ChatSettings(ServiceSettings):
    service_name: str = "chat"
    http_port: int = 8102
    # how long member device keys fetched from auth are trusted (a KeyChanged event evicts sooner)
    device_cache_ttl_s: float = Field(default=10.0, ge=0, le=300)
    # requests of one subject handled at once by this instance (they mostly wait on the database;
    # the sends among them that arrive together share one transaction)
    handler_concurrency: int = Field(default=64, ge=1, le=256)
    # new conversations one user may start: "<count>/<seconds>" (429 with Retry-After beyond)
    rate_conversation_create: str = Field(default="30/60", pattern=r"^[1-9][0-9]*/[1-9][0-9]*$")

    def conversation_create_limit(self) -> tuple[int, int]:
        count, _, window = self.rate_conversation_create.partition("/")
        return int(count), int(window)
