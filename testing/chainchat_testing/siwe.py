"""Sign-In with Ethereum as a test's wallet does it: an EIP-4361 message for the stack's gateway
(with a fresh nonce from its API), signed with ``eth_account``."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from eth_account.messages import encode_defunct

from chainchat_testing.accounts import Accounts

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # web3/abnf import-time deprecation noise
    from siwe import SiweMessage


def siwe_message(accounts: Accounts, address: str, *, domain: str | None = None, chain_id: int = 1337) -> str:
    """The text to sign: for the gateway's host (unless ``domain``), on ``chain_id``, a new nonce."""
    nonce = accounts.http.get("/auth/siwe/nonce").json()["nonce"]
    base = str(accounts.http.base_url)
    message = SiweMessage(
        domain=domain or urlsplit(base).netloc,
        address=address,
        uri=base,
        version="1",
        chain_id=chain_id,
        nonce=nonce,
        issued_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        statement="Sign in to ChainChat",
    )
    text: str = message.prepare_message()
    return text


def sign(wallet: Any, text: str) -> str:
    """``wallet``'s EIP-191 signature of ``text``, 0x-prefixed hex."""
    signature: str = "0x" + wallet.sign_message(encode_defunct(text=text)).signature.hex().removeprefix("0x")
    return signature


def signed_siwe(accounts: Accounts, wallet: Any) -> dict[str, str]:
    """The ``{message, signature}`` body of ``POST /auth/siwe`` (and of a wallet reauth)."""
    text = siwe_message(accounts, wallet.address)
    return {"message": text, "signature": sign(wallet, text)}
