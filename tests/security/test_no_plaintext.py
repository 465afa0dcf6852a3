"""Nothing readable at rest: no message text, file content or name, private key or password.

A workload through the SDK — text messages and a file, encrypted on the device — carries unique
canaries. Then every byte the stack keeps is searched for them, as UTF-8, base64 (standard and
url-safe, unpadded) and hex: every file under the stack's var dir (each service's SQLite
database with its WAL, every log, the NATS JetStream store, the IPFS blockstore, the chain's
database, the mail spool) and the input data of every transaction on the chain, read over
JSON-RPC. The device private keys of the workload's users (kept by the SDK on the client only),
and the password every test account uses, must not appear either.

``tests/security/conftest.py`` runs this module after every other test of the session, so the
scan also covers what the rest of the suite (the end-to-end tests among it) left behind, such as
``PLAINTEXT_CANARY`` that the shared chat helpers seal into their messages' bodies.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from chainchat.client import Client
from chainchat.crypto import DeviceKeys, aencrypt_chunks, ciphertext_size, generate_file_key
from chainchat.messenger import Messenger
from chainchat_protocol.b64 import b64e
from chainchat_testing.accounts import PASSWORD, Accounts
from devstack.stack import Stack
from tests.integration.chat_helpers import PLAINTEXT_CANARY, ChatUser, chat_user

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CHUNK = 4 * 1024 * 1024


def _forms(secret: bytes) -> list[bytes]:
    """The ways a secret could be written down: raw, base64 in both alphabets, hex."""
    forms = {secret, secret.hex().encode(), secret.hex().upper().encode()}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        # the first 3n bytes encode the same whatever the padding and whatever precedes
        forms.add(encode(secret[: len(secret) // 3 * 3]).rstrip(b"="))
    return [f for f in forms if len(f) >= 12]


@dataclass
class Needle:
    what: str
    patterns: list[bytes]


def _needles(texts: dict[str, str], keys: dict[str, bytes]) -> list[Needle]:
    needles = [Needle(what, _forms(text.encode())) for what, text in texts.items()]
    needles += [Needle(what, _forms(raw)) for what, raw in keys.items()]
    return needles


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def _scan_file(path: Path, regex: re.Pattern[bytes], overlap: int) -> set[bytes]:
    found: set[bytes] = set()
    tail = b""
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            window = tail + chunk
            found.update(m.group(0) for m in regex.finditer(window))
            tail = window[-overlap:]
    return found


def _chain_inputs(rpc_url: str) -> Iterator[tuple[str, bytes]]:
    """(tx hash, input bytes) of every transaction on the chain."""
    with httpx.Client(timeout=20) as http:

        def call(method: str, *params: object) -> object:
            resp = http.post(
                rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
            )
            return resp.json()["result"]

        height = int(str(call("eth_blockNumber")), 16)
        for number in range(height + 1):
            block = call("eth_getBlockByNumber", hex(number), True)
            assert isinstance(block, dict)
            for tx in block["transactions"]:
                yield tx["hash"], bytes.fromhex(tx["input"].removeprefix("0x"))


@dataclass
class Workload:
    texts: dict[str, str]
    keys: dict[str, bytes]


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _run_workload(stack: Stack, alice: ChatUser, bob: ChatUser, texts: dict[str, str]) -> None:
    async with Client(stack.gateway_url) as client:
        session = await client.login(alice.account.email, alice.account.password)
        me = Messenger(client, session.user["id"], alice.device)
        conversation = await client.create_conversation([bob.id], title="canary room")
        cid = conversation.conversation_id
        sent = [await me.send_text(cid, texts[name]) for name in ("message", "message 2")]
        content = f"file content {texts['file content']}\n".encode() * 50
        key = generate_file_key()
        encrypted = b"".join([c async for c in aencrypt_chunks(key, _chunks(content))])
        assert len(encrypted) == ciphertext_size(len(content))
        uploaded = await client.upload_file(cid, _chunks(encrypted), len(encrypted))
        file_body = {
            "type": "file",
            "file": {
                "file_id": uploaded.file_id, "cid": uploaded.cid, "key": b64e(key),
                "name": f"{texts['file name']}.txt", "mime": "text/plain", "size": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
            },
        }  # fmt: skip
        sent.append(await me.send(cid, file_body, file_ids=[uploaded.file_id]))
        # the recipient reads it all back: the canaries did travel, encrypted
        async with Client(stack.gateway_url) as other:
            bob_session = await other.login(bob.account.email, bob.account.password)
            reader = Messenger(other, bob_session.user["id"], bob.device)
            opened = [await reader.open(m, conversation_id=cid) for m in await other.history(cid)]
        assert [b.get("text") for b in opened[:2]] == [texts["message"], texts["message 2"]]
        assert opened[2]["file"]["name"] == f"{texts['file name']}.txt"
        # wait until the ledger anchored the messages: their hashes are on chain when we scan
        for message in sent:
            for _ in range(100):
                if (await client.message_proof(message.message_id)).status == "anchored":
                    break
                await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
def workload(running_stack: Stack, accounts: Accounts) -> Workload:
    alice, bob = chat_user(accounts, "canary-alice"), chat_user(accounts, "canary-bob")
    texts = {name: f"canary-{name.replace(' ', '-')}-{uuid.uuid4().hex}" for name in
             ("message", "message 2", "file content", "file name")}  # fmt: skip
    asyncio.run(_run_workload(running_stack, alice, bob, texts))
    keys: dict[str, bytes] = {}
    for name, device in (("alice", alice.device), ("bob", bob.device)):
        keys[f"{name}'s X25519 private key"] = device.x25519_private
        keys[f"{name}'s Ed25519 private key"] = device.ed25519_private
    return Workload(texts, keys)


def _hits(needles: list[Needle], found: set[bytes]) -> list[str]:
    return sorted({n.what for n in needles for p in n.patterns if p in found})


def test_no_plaintext_or_key_in_any_store(running_stack: Stack, workload: Workload) -> None:
    texts = {**workload.texts, "shared helpers' canary": PLAINTEXT_CANARY}
    needles = _needles(texts, workload.keys)
    patterns = [p for n in needles for p in n.patterns]
    regex = re.compile(b"|".join(re.escape(p) for p in sorted(patterns, key=len, reverse=True)))
    overlap = max(len(p) for p in patterns)
    files = list(_files(running_stack.var_dir))
    assert any(f.suffix == ".db" for f in files)
    assert any(f.suffix == ".log" for f in files)
    assert any("jetstream" in f.parts for f in files), "the JetStream store was not found"
    assert any("ipfs" in f.parts for f in files), "the IPFS blockstore was not found"
    leaks = {
        str(f.relative_to(running_stack.var_dir)): _hits(needles, _scan_file(f, regex, overlap))
        for f in files
    }
    assert {name: what for name, what in leaks.items() if what} == {}
    transactions = 0
    for tx_hash, data in _chain_inputs(running_stack.chain.rpc_url):
        transactions += 1
        assert _hits(needles, set(regex.findall(data))) == [], tx_hash
    assert transactions > 0, "no anchoring transaction: the chain was not checked"


def test_the_scan_finds_what_it_looks_for(tmp_path: Path, workload: Workload) -> None:
    """The scanner itself: each form of each canary, split across a chunk boundary, is found."""
    needles = _needles(workload.texts, workload.keys)
    patterns = [p for n in needles for p in n.patterns]
    regex = re.compile(b"|".join(re.escape(p) for p in sorted(patterns, key=len, reverse=True)))
    overlap = max(len(p) for p in patterns)
    for needle in needles:
        for pattern in needle.patterns:
            sample = tmp_path / "sample.bin"
            sample.write_bytes(b"\0" * (CHUNK - len(pattern) // 2) + pattern + b"\0" * 10)
            assert _hits(needles, _scan_file(sample, regex, overlap)) == [needle.what]


def test_no_password_in_logs_or_databases(running_stack: Stack, accounts: Accounts) -> None:
    """Every test account's password went through register and login: never written down."""
    patterns = _forms(PASSWORD.encode())
    regex = re.compile(b"|".join(re.escape(p) for p in patterns))
    files = list(_files(running_stack.var_dir))
    leaks = [str(f) for f in files if _scan_file(f, regex, max(map(len, patterns)))]
    assert leaks == []


def test_private_keys_stay_with_the_client(workload: Workload) -> None:
    """The keys scanned for are real device keys: they rebuild the devices that sealed the canaries."""
    xs = [v for k, v in workload.keys.items() if "X25519" in k]
    eds = [v for k, v in workload.keys.items() if "Ed25519" in k]
    for x, ed in zip(xs, eds, strict=True):
        assert len(DeviceKeys(x, ed).key_id) == 32
