"""The ledger a client trusts: one ``(chain_id, contract_address)``, pinned (SPEC §11).

A proof naming another chain or contract is not a proof at all: a server can deploy its own
``ChainChatLedger`` and anchor whatever it likes there. The pin comes from configuration
(``CHAINCHAT_LEDGER=<chain_id>:<address>``, ``--ledger``) or, failing that, from the first
``GET /ledger/info`` the client sees (trust on first use), and is kept with the profile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["LedgerPin"]

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True)
class LedgerPin:
    """``source`` says where the pin came from: ``config`` or ``first_use``."""

    chain_id: int
    contract_address: str
    source: str = "config"

    @classmethod
    def parse(cls, text: str, source: str = "config") -> LedgerPin:
        """``"<chain_id>:<0x address>"`` → a pin; ``ValueError`` with a readable message otherwise."""
        chain, sep, address = text.strip().partition(":")
        if not sep or not chain.isdigit() or int(chain) < 1 or not _ADDRESS.match(address):
            raise ValueError(f"a ledger is <chain_id>:<0x contract address>, not {text!r}")
        return cls(int(chain), address, source)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerPin:
        return cls(int(data["chain_id"]), str(data["contract_address"]), str(data.get("source", "config")))

    def to_dict(self) -> dict[str, Any]:
        return {"chain_id": self.chain_id, "contract_address": self.contract_address, "source": self.source}

    def names(self, chain_id: int | None, contract_address: str | None) -> bool:
        """True if a proof's ``(chain_id, contract_address)`` is this ledger (addresses: any case)."""
        return chain_id == self.chain_id and (contract_address or "").lower() == self.contract_address.lower()

    def __str__(self) -> str:
        return f"{self.chain_id}:{self.contract_address}"
