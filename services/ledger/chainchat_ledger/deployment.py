"""Which contract the ledger anchors to: adopt LEDGER_CONTRACT_ADDRESS, deploy on first start,
detect a chain reset and redeploy, and adopt heads anchored by a previous run we did not record.

A chain reset (no code at the address, fewer heads than we recorded, or a recorded head that now
holds another root) ends the current *epoch*: its anchors stay in the database flagged ``lost``,
a new contract is deployed, and the anchoring loop re-anchors the current head on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chainchat_ledger import metrics
from chainchat_ledger.anchors import AnchorBook
from chainchat_ledger.chain import ChainClient, ChainRejected, ChainUnavailable
from chainchat_ledger.log import TransparencyLog
from chainchat_ledger.models import AnchorRecord, ChainDeployment
from chainchat_ledger.settings import LedgerSettings
from chainchat_service.db import utcnow
from chainchat_service.logging import get_logger

log = get_logger(__name__)


class ConfigurationError(Exception):
    """The chain or contract is not one the ledger may use; an operator must act."""


@dataclass(eq=False)
class DeploymentManager:
    settings: LedgerSettings
    chain: ChainClient
    book: AnchorBook
    tlog: TransparencyLog
    _role_checked: str | None = field(default=None, init=False)

    async def ensure(self) -> ChainDeployment:
        """The live deployment, with a contract address we may anchor to."""
        chain_id = await self.chain.chain_id()
        if chain_id != self.settings.chain_id:
            raise ConfigurationError(
                f"CHAIN_ID is {self.settings.chain_id} but the node at "
                f"CHAIN_RPC_URL reports chain id {chain_id}"
            )
        deployment = await self.book.current_deployment()
        if deployment is None:
            deployment = await self._first_deployment()
        elif deployment.contract_address is None:
            deployment = await self._finish_deploy(deployment)
        else:
            reason = await self._reset_reason(deployment)
            if reason is not None:
                deployment = await self._redeploy_after_reset(deployment, reason)
            else:
                await self._adopt_unrecorded_heads(deployment)
        await self._check_role(deployment)
        return deployment

    async def _first_deployment(self) -> ChainDeployment:
        address = self.settings.ledger_contract_address
        if not address:
            return await self._deploy(await self.book.next_epoch())
        if not await self.chain.has_code(address):
            raise ConfigurationError(
                f"LEDGER_CONTRACT_ADDRESS {address} has no code on chain {self.settings.chain_id}"
            )
        try:
            await self.chain.head_count(address)
        except ChainRejected as exc:
            raise ConfigurationError(f"{address} is not a ChainChatLedger (headCount failed)") from exc
        deployment = ChainDeployment(
            epoch=await self.book.next_epoch(), chain_id=self.settings.chain_id,
            contract_address=address, genesis_hash=await self.chain.genesis_hash(),
        )  # fmt: skip
        deployment = await self.book.save_deployment(deployment)
        log.info("contract_adopted", contract_address=address, epoch=deployment.epoch)
        await self._adopt_unrecorded_heads(deployment)
        return deployment

    async def _reset_reason(self, deployment: ChainDeployment) -> str | None:
        address = deployment.contract_address
        assert address is not None
        if not await self.chain.has_code(address):
            return "no contract code at the recorded address"
        recorded = await self.book.confirmed_count(deployment.epoch)
        on_chain = await self.chain.head_count(address)
        if on_chain < recorded:
            return f"the contract holds {on_chain} heads but {recorded} were recorded"
        latest = await self.book.latest_confirmed(deployment.epoch)
        if latest is not None and latest.head_index is not None:
            head = await self.chain.head(address, latest.head_index)
            if head.root_hash != latest.root_hash or head.tree_size != latest.tree_size:
                return f"head {latest.head_index} on chain differs from the recorded anchor"
        return None

    async def _redeploy_after_reset(self, deployment: ChainDeployment, reason: str) -> ChainDeployment:
        flagged = await self.book.mark_lost(deployment, reason)
        metrics.CHAIN_RESETS.inc()
        log.error(
            "CHAIN_RESET_DETECTED",
            reason=reason,
            epoch=deployment.epoch,
            contract_address=deployment.contract_address,
            anchors_marked_lost=flagged,
            action="redeploying the contract and re-anchoring the current tree head",
        )
        self._role_checked = None
        return await self._deploy(deployment.epoch + 1)

    async def _deploy(self, epoch: int) -> ChainDeployment:
        nonce = await self.chain.next_nonce()
        signed = await self.chain.sign_deploy(nonce)
        deployment = ChainDeployment(
            epoch=epoch, chain_id=self.settings.chain_id, genesis_hash=await self.chain.genesis_hash(),
            deploy_tx_hash=signed.tx_hash, deploy_raw_tx=signed.raw, deploy_nonce=nonce,
        )  # fmt: skip
        # recorded before it is sent: a crash now finishes this deployment instead of making another
        deployment = await self.book.save_deployment(deployment)
        log.warning("contract_deploying", epoch=epoch, tx_hash=signed.tx_hash, nonce=nonce)
        return await self._finish_deploy(deployment)

    async def _finish_deploy(self, deployment: ChainDeployment) -> ChainDeployment:
        assert deployment.deploy_tx_hash is not None
        receipt = await self.chain.receipt(deployment.deploy_tx_hash)
        if receipt is None and deployment.deploy_raw_tx is not None:
            try:
                await self.chain.send_raw(deployment.deploy_raw_tx)
            except ChainRejected as exc:  # known already, or its nonce got used: look again
                log.warning("deploy_broadcast_rejected", error=str(exc))
            receipt = await self.chain.wait_receipt(
                deployment.deploy_tx_hash, self.settings.anchor_tx_timeout_s
            )
        if receipt is None:
            nonce = deployment.deploy_nonce
            if nonce is not None and await self.chain.mined_nonce() > nonce:
                # its nonce was used by another transaction: it can never be mined
                log.error("contract_deploy_dropped", tx_hash=deployment.deploy_tx_hash)
                await self.book.delete_deployment(deployment.epoch)
            raise ChainUnavailable("contract deployment not mined yet")
        if not receipt.ok or receipt.contract_address is None:
            log.error("contract_deploy_reverted", tx_hash=deployment.deploy_tx_hash)
            await self.book.delete_deployment(deployment.epoch)
            raise ChainRejected("contract deployment reverted")
        deployment.contract_address = receipt.contract_address
        deployment.deploy_raw_tx = None
        deployment = await self.book.save_deployment(deployment)
        log.warning(
            "contract_deployed",
            contract_address=receipt.contract_address,
            epoch=deployment.epoch,
            block_number=receipt.block_number,
            gas_used=receipt.gas_used,
        )
        return deployment

    async def _adopt_unrecorded_heads(self, deployment: ChainDeployment) -> None:
        """Record the latest on-chain head if we did not (e.g. a wiped ledger database re-using
        LEDGER_CONTRACT_ADDRESS) — but only if it is a head of OUR tree."""
        address = deployment.contract_address
        assert address is not None
        if await self.book.pending(deployment.epoch) is not None:
            return  # our own transaction in flight: the anchoring loop settles it
        on_chain = await self.chain.head_count(address)
        if on_chain <= await self.book.confirmed_count(deployment.epoch):
            return
        head = await self.chain.head(address, on_chain - 1)
        committed = self.tlog.committed_size
        if head.tree_size > committed or self.tlog.root(head.tree_size).hex() != head.root_hash:
            raise ConfigurationError(
                f"contract {address} holds head {head.index} (size {head.tree_size}) that is not a "
                f"head of this log (local size {committed}): refusing to anchor to it"
            )
        found = await self.chain.find_anchor_tx(address, head.index)
        if found is None:
            raise ChainUnavailable(f"Anchored event of head {head.index} not found yet")
        tx_hash, block_number = found
        if await self.book.by_tx_hash(tx_hash) is None:
            await self.book.add(AnchorRecord(
                epoch=deployment.epoch, contract_address=address, tree_size=head.tree_size,
                root_hash=head.root_hash, tx_hash=tx_hash, nonce=-1, status="confirmed",
                head_index=head.index, block_number=block_number, confirmed_at=utcnow(),
            ))  # fmt: skip
        log.warning("onchain_head_adopted", head_index=head.index, tree_size=head.tree_size)

    async def _check_role(self, deployment: ChainDeployment) -> None:
        address = deployment.contract_address
        assert address is not None
        if self._role_checked == address:
            return
        if not await self.chain.is_anchorer(address):
            raise ConfigurationError(
                f"account {self.chain.address} lacks ANCHORER_ROLE on {address}: "
                "an admin must grantRole(ANCHORER_ROLE, account)"
            )
        self._role_checked = address
