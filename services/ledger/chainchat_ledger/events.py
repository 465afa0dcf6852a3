"""The ``anchored`` event: which entries a confirmed anchor newly covers, for gateways."""

from __future__ import annotations

from chainchat_ledger.log import TransparencyLog
from chainchat_ledger.models import AnchorRecord, ChainDeployment
from chainchat_protocol.ledger import ANCHORED_IDS_PER_EVENT, LedgerAnchored
from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus
from chainchat_service.logging import get_logger

log = get_logger(__name__)

_KINDS = ("message", "file", "key", "audit", "tombstone")


class AnchoredPublisher:
    """Publishes ``LedgerAnchored`` on core NATS (best effort: clients that miss it still see the
    status in the proof object), split so each message stays small."""

    def __init__(self, bus: Bus, tlog: TransparencyLog) -> None:
        self.bus = bus
        self.tlog = tlog

    async def publish(self, deployment: ChainDeployment, record: AnchorRecord, prev_size: int) -> int:
        """Publish the events for leaves ``[prev_size, record.tree_size)``; return how many."""
        grouped = await self.tlog.ids_between(prev_size, record.tree_size)
        parts = split_ids(grouped, ANCHORED_IDS_PER_EVENT)
        assert record.head_index is not None
        assert record.block_number is not None
        assert deployment.contract_address is not None
        for number, part in enumerate(parts, start=1):
            event = LedgerAnchored(
                head_index=record.head_index,
                tree_size=record.tree_size,
                root_hash=record.root_hash,
                tx_hash=record.tx_hash,
                block_number=record.block_number,
                chain_id=deployment.chain_id,
                contract_address=deployment.contract_address,
                part=number,
                parts=len(parts),
                **{f"{kind}_ids": ids for kind, ids in part.items()},
            )
            try:
                await self.bus.publish(Subject.LEDGER_ANCHORED, event)
            except Exception as exc:  # noqa: BLE001 - best effort; the anchor itself is recorded
                log.warning("anchored_event_not_published", error=str(exc) or type(exc).__name__)
                return number - 1
        return len(parts)


def split_ids(grouped: dict[str, list[str]], per_event: int) -> list[dict[str, list[str]]]:
    """Cut ``{kind: ids}`` into parts of at most ``per_event`` ids in total (at least one part)."""
    parts: list[dict[str, list[str]]] = [{}]
    room = per_event
    for kind in _KINDS:
        ids = grouped.get(kind, [])
        while ids:
            if room == 0:
                parts.append({})
                room = per_event
            take, ids = ids[:room], ids[room:]
            parts[-1].setdefault(kind, []).extend(take)
            room -= len(take)
    return parts
