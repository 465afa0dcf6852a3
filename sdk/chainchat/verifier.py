"""Proofs checked the way a client must: against the pinned ledger only, on chain, and against the
largest tree head seen before (fork detection).

    verifier = LedgerVerifier(pin, rpc_url, HeadTracker(state))
    result = await verifier.verify(client, proof, expect=("message", message_id))
    result.valid, result.code   # code: ledger_mismatch, wrong_entry, log_forked, ...
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from chainchat.client import ApiError
from chainchat.heads import ConsistencySource, HeadTracker, LogForked, TreeHead
from chainchat.ledger_pin import LedgerPin
from chainchat_protocol.proof import ProofObject

if TYPE_CHECKING:
    from chainchat.proof import OnchainVerification

__all__ = ["LedgerVerifier"]


@dataclass
class LedgerVerifier:
    pin: LedgerPin
    rpc_url: str
    tracker: HeadTracker
    _verified: dict[tuple[Any, ...], OnchainVerification] = field(default_factory=dict)

    async def verify(
        self,
        source: ConsistencySource,
        proof: ProofObject | dict[str, Any],
        *,
        expect: tuple[str, str] | None,
    ) -> OnchainVerification:
        """Full check of an anchored proof (a model, or the JSON of one read from a file): entry
        asked for, pinned ledger, on chain, consistent with every head verified before. Never
        raises for a bad proof."""
        from chainchat.proof import verify_proof_onchain  # web3 is slow to import: only when used

        if not isinstance(proof, ProofObject):
            try:
                proof = ProofObject.model_validate(proof)
            except ValidationError:  # the one-shot check says what is wrong with it
                return await verify_proof_onchain(proof, self.rpc_url, expect=expect, ledger=self.pin)

        key = _cache_key(proof, expect)
        if key in self._verified:
            return self._verified[key]
        result = await verify_proof_onchain(proof, self.rpc_url, expect=expect, ledger=self.pin)
        if result.valid:
            await self._check_head(source, result)
        if result.valid:
            self._verified[key] = result
        return result

    async def _check_head(self, source: ConsistencySource, result: OnchainVerification) -> None:
        assert result.tree_size is not None
        head = TreeHead(result.tree_size, str(result.root_hash), result.head_index)
        try:
            await self.tracker.observe(source, head)
        except LogForked as exc:
            result.fail(exc.message, LogForked.code)
        except ApiError as exc:
            result.fail(
                f"cannot check this head against the one verified before: {exc.message}",
                "consistency_unavailable",
            )


def _cache_key(proof: ProofObject, expect: tuple[str, str] | None) -> tuple[Any, ...]:
    return (
        expect,
        proof.entry,
        proof.head_index,
        proof.root_hash,
        proof.leaf_index,
        proof.contract_address,
        proof.chain_id,
    )
