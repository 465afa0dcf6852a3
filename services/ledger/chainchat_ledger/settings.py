"""Settings of the ledger service (environment variables, see .env.example)."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from chainchat_service.settings import ServiceSettings

# Ganache's and Anvil's first deterministic accounts: public knowledge, fine for a local chain,
# never acceptable in production.
DEV_PRIVATE_KEYS = frozenset(
    {
        "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d",
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    }
)
_KEY_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


class LedgerSettings(ServiceSettings):
    service_name: str = "ledger"
    http_port: int = 8104
    secret_fields: tuple[str, ...] = ("ledger_private_key",)

    chain_rpc_url: str = "http://127.0.0.1:8545"
    chain_id: int = Field(default=1337, ge=1)
    # shown to clients so they can verify proofs themselves (omitted when empty)
    rpc_url_public: str = ""
    ledger_contract_address: str = ""
    ledger_private_key: str = "0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d"

    anchor_interval_s: float = Field(default=2.0, gt=0, le=3600)
    anchor_max_leaves: int = Field(default=10_000, ge=1)
    # wait this long for a receipt before re-broadcasting the same signed transaction
    anchor_tx_timeout_s: float = Field(default=30.0, gt=0)
    anchor_gas_limit: int = Field(default=200_000, ge=50_000)
    chain_request_timeout_s: float = Field(default=10.0, gt=0)

    # JetStream consumption: up to this many entries per fetch, appended in one transaction
    append_batch_size: int = Field(default=1000, ge=1, le=10_000)
    # how long to keep filling a batch once its first message arrived (latency for throughput)
    append_linger_s: float = Field(default=0.05, ge=0, le=1)
    consumer_durable: str = "ledger"
    # entries handed to an instance that died (or lost the lease) come back after this; a batch
    # appends in well under a second, and a redelivery is harmless (appends are idempotent)
    consumer_ack_wait_s: float = Field(default=15.0, ge=1)

    # leader lease (NATS KV): only the holder consumes the stream and anchors
    leader_bucket: str = "ledger_leader"
    leader_ttl_s: float = Field(default=6.0, ge=1, le=300)

    @field_validator("ledger_private_key")
    @classmethod
    def _key_shape(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith("0x"):
            value = "0x" + value
        if value and _KEY_RE.fullmatch(value) is None:
            raise ValueError("LEDGER_PRIVATE_KEY must be 32 bytes of hex")
        return value

    @field_validator("ledger_contract_address")
    @classmethod
    def _address_shape(cls, value: str) -> str:
        value = value.strip()
        if value and _ADDRESS_RE.fullmatch(value) is None:
            raise ValueError("LEDGER_CONTRACT_ADDRESS must be 0x followed by 40 hex digits")
        return value

    @model_validator(mode="after")
    def _no_dev_key_in_production(self) -> LedgerSettings:
        if self.environment == "production" and self.ledger_private_key.lower() in DEV_PRIVATE_KEYS:
            raise ValueError("LEDGER_PRIVATE_KEY is a public development key; set a real key in production")
        return self
