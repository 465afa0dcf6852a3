"""The ledger's view of the chain: one account, the ChainChatLedger contract, signed transactions.

Transactions are signed locally (the key never goes to the node) so their hash is known before
they are sent: the anchoring loop records hash, nonce and signed bytes first, then broadcasts, and
after a crash can look the very same transaction up or broadcast it again.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from dataclasses import dataclass
from typing import Any

import aiohttp
from eth_account import Account
from eth_account.signers.local import LocalAccount

from chainchat_ledger import metrics
from chainchat_ledger.settings import LedgerSettings
from chainchat_protocol.abi import ledger_artifact
from chainchat_service.loops import Backoff

with warnings.catch_warnings():
    # web3 7 imports websockets.legacy, deprecated in websockets 14
    warnings.simplefilter("ignore", DeprecationWarning)
    from web3 import AsyncHTTPProvider, AsyncWeb3
    from web3.contract import AsyncContract
    from web3.exceptions import ContractLogicError, TransactionNotFound, Web3Exception

CONNECTION_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError, ConnectionError)


class ChainUnavailable(Exception):
    """The chain's JSON-RPC endpoint did not answer."""


class ChainRejected(Exception):
    """The node answered but refused (bad chain id, transaction rejected, contract reverted)."""


@dataclass(frozen=True, slots=True)
class SignedTx:
    tx_hash: str
    raw: bytes
    nonce: int


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: str
    ok: bool
    block_number: int
    gas_used: int
    contract_address: str | None
    logs: Any


@dataclass(frozen=True, slots=True)
class OnchainHead:
    index: int
    tree_size: int
    root_hash: str


class SessionHTTPProvider(AsyncHTTPProvider):
    """``AsyncHTTPProvider`` over one plain aiohttp session.

    web3 7's own session cache takes a ``threading.Lock`` inside an executor thread; a call
    cancelled while waiting for it leaves the lock held, the executor thread blocks for ever and
    the process hangs at exit. Our loops do cancel calls (timeouts, shutdown), so requests go
    through this session instead; encoding, decoding and middleware stay web3's.
    """

    def __init__(self, endpoint_uri: str, timeout: float) -> None:
        super().__init__(endpoint_uri, exception_retry_configuration=None)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def _make_request(self, method: Any, request_data: bytes) -> bytes:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=True)
        headers = self.get_request_headers()
        async with self._session.post(self.endpoint_uri, data=request_data, headers=headers) as resp:
            return await resp.read()

    async def disconnect(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class ChainClient:
    """Async JSON-RPC access for one account; every failure maps to ChainUnavailable/Rejected."""

    def __init__(self, settings: LedgerSettings) -> None:
        self.settings = settings
        # no web3-level retries: our loops retry with their own back-off and see the outage
        provider = SessionHTTPProvider(settings.chain_rpc_url, settings.chain_request_timeout_s)
        self.w3 = AsyncWeb3(provider)
        self.account: LocalAccount = Account.from_key(settings.ledger_private_key)
        artifact = ledger_artifact()
        self.abi = artifact["abi"]
        self.bytecode = artifact["bytecode"]
        self.up: bool | None = None
        self._probed_at = 0.0

    async def close(self) -> None:
        """Close the HTTP session of the provider."""
        provider = self.w3.provider
        disconnect = getattr(provider, "disconnect", None)
        if disconnect is not None:
            await disconnect()

    @property
    def address(self) -> str:
        return str(self.account.address)

    def contract(self, address: str) -> AsyncContract:
        return self.w3.eth.contract(address=AsyncWeb3.to_checksum_address(address), abi=self.abi)

    async def call(self, coro: Any) -> Any:
        """Await one RPC call, classifying failures and tracking whether the chain is up."""
        try:
            result = await coro
        except CONNECTION_ERRORS as exc:
            self._mark(False)
            raise ChainUnavailable(str(exc) or type(exc).__name__) from exc
        except (ContractLogicError, Web3Exception, ValueError) as exc:
            self._mark(True)
            raise ChainRejected(str(exc)[:300]) from exc
        self._mark(True)
        return result

    def _mark(self, up: bool) -> None:
        self.up = up
        self._probed_at = time.monotonic()
        metrics.CHAIN_UP.set(1 if up else 0)

    async def probe(self, max_age: float = 2.0) -> bool:
        """Whether the chain answers (cached for ``max_age`` seconds)."""
        if self.up is not None and time.monotonic() - self._probed_at < max_age:
            return self.up
        try:
            await asyncio.wait_for(self.call(self.w3.eth.chain_id), timeout=2)
        except (ChainUnavailable, ChainRejected, TimeoutError):
            self._mark(False)
        return bool(self.up)

    async def chain_id(self) -> int:
        return int(await self.call(self.w3.eth.chain_id))

    async def genesis_hash(self) -> str:
        block = await self.call(self.w3.eth.get_block(0))
        return "0x" + bytes(block["hash"]).hex()

    async def has_code(self, address: str) -> bool:
        code = await self.call(self.w3.eth.get_code(AsyncWeb3.to_checksum_address(address)))
        return len(code) > 0

    async def head_count(self, address: str) -> int:
        return int(await self.call(self.contract(address).functions.headCount().call()))

    async def head(self, address: str, index: int) -> OnchainHead:
        size, root, _ = await self.call(self.contract(address).functions.head(index).call())
        return OnchainHead(index, int(size), bytes(root).hex())

    async def is_anchorer(self, address: str) -> bool:
        fns = self.contract(address).functions
        role = await self.call(fns.ANCHORER_ROLE().call())
        return bool(await self.call(fns.hasRole(role, self.address).call()))

    async def next_nonce(self) -> int:
        return int(await self.call(self.w3.eth.get_transaction_count(self.address, "pending")))

    async def mined_nonce(self) -> int:
        return int(await self.call(self.w3.eth.get_transaction_count(self.address, "latest")))

    async def _tx_fields(self, nonce: int) -> dict[str, Any]:
        gas_price = int(await self.call(self.w3.eth.gas_price))
        return {
            "from": self.address,
            "nonce": nonce,
            "chainId": self.settings.chain_id,
            "gas": self.settings.anchor_gas_limit,
            # legacy pricing: accepted by Ganache, Anvil and every public network
            "gasPrice": gas_price,
            "value": 0,
        }

    async def sign_deploy(self, nonce: int) -> SignedTx:
        factory = self.w3.eth.contract(abi=self.abi, bytecode=self.bytecode)
        fields = await self._tx_fields(nonce)
        fields["gas"] = max(fields["gas"], 3_000_000)
        tx = await factory.constructor(self.address).build_transaction(fields)
        return self._sign(tx, nonce)

    async def sign_anchor(self, address: str, tree_size: int, root: bytes, nonce: int) -> SignedTx:
        fn = self.contract(address).functions.anchor(tree_size, root)
        tx = await fn.build_transaction(await self._tx_fields(nonce))
        return self._sign(tx, nonce)

    def _sign(self, tx: dict[str, Any], nonce: int) -> SignedTx:
        signed = self.account.sign_transaction(tx)
        return SignedTx("0x" + bytes(signed.hash).hex(), bytes(signed.raw_transaction), nonce)

    async def send_raw(self, raw: bytes) -> None:
        """Broadcast a signed transaction. "Already known" style refusals are the caller's to
        interpret (it looks the receipt up next), so they surface as ChainRejected."""
        await self.call(self.w3.eth.send_raw_transaction(raw))

    async def receipt(self, tx_hash: str) -> Receipt | None:
        try:
            r = await self.call(self.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        except ChainRejected as exc:
            if isinstance(exc.__cause__, TransactionNotFound):
                return None
            raise
        if r is None:
            return None
        return Receipt(
            tx_hash=tx_hash,
            ok=int(r["status"]) == 1,
            block_number=int(r["blockNumber"]),
            gas_used=int(r["gasUsed"]),
            contract_address=r.get("contractAddress"),
            logs=r,
        )

    async def wait_receipt(self, tx_hash: str, timeout: float) -> Receipt | None:
        """Poll for a receipt for up to ``timeout`` seconds; None if still not mined."""
        deadline = time.monotonic() + timeout
        backoff = Backoff(0.05, 1.0)
        delay = backoff.initial
        while True:
            receipt = await self.receipt(tx_hash)
            if receipt is not None or time.monotonic() >= deadline:
                return receipt
            await asyncio.sleep(delay)
            delay = backoff.next(delay)

    def anchored_event(self, address: str, receipt: Receipt) -> OnchainHead | None:
        """The Anchored event our contract emitted in this receipt."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # logs of other contracts are skipped with a warning
            events = self.contract(address).events.Anchored().process_receipt(receipt.logs)
        for event in events:
            if str(event["address"]).lower() == address.lower():
                args = event["args"]
                return OnchainHead(int(args["index"]), int(args["treeSize"]), bytes(args["rootHash"]).hex())
        return None

    async def find_anchor_tx(self, address: str, index: int) -> tuple[str, int] | None:
        """Transaction hash and block of the Anchored event of head ``index`` (indexed topic)."""
        event = self.contract(address).events.Anchored()
        logs = await self.call(event.get_logs(argument_filters={"index": index}, from_block=0))
        for entry in logs:
            return "0x" + bytes(entry["transactionHash"]).hex(), int(entry["blockNumber"])
        return None
