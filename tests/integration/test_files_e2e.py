"""Encrypted attachments end to end on the real stack, as two users' devices would do it.

alice encrypts 20 MiB on her device (STREAM, SDK), uploads the ciphertext, sends the file key inside
an end-to-end encrypted message; bob opens the message, downloads the ciphertext in two Range
halves, decrypts and gets alice's bytes. A non-member gets 404; the file's log entry is anchored;
deleting the message unpins the file.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chainchat.client import ApiError, Client, Session
from chainchat.crypto import DeviceKeys, adecrypt_chunks, aencrypt_chunks, ciphertext_size, generate_file_key
from chainchat.messenger import Messenger
from chainchat_protocol.b64 import b64d, b64e
from chainchat_protocol.envelope import SUITE_AES256GCM
from chainchat_protocol.files import FileUploaded
from chainchat_testing.streams import MIB, random_plaintext
from devstack.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

PLAINTEXT_SIZE = 20 * MIB


async def _device(gateway_url: str, account: Any) -> Messenger:
    """A logged-in client with a fresh device key pair published to the directory."""
    session = Session(account.access_token, account.refresh_token, time.time() + 600, account.user)
    client = Client(gateway_url, session=session, timeout=120)
    device = DeviceKeys.generate()
    body = device.publish_body([SUITE_AES256GCM])
    await client.publish_keys(body["x25519_public"], body["ed25519_public"], body["suite_support"])
    return Messenger(client, account.user_id, device)


async def _range(client: Client, file_id: str, start: int, end: int | None) -> AsyncIterator[bytes]:
    async with client.download_file(file_id, start=start, end=end) as resp:
        assert resp.status_code == 206, resp.status_code
        async for chunk in resp.aiter_raw():
            yield chunk


async def _two_halves(client: Client, file_id: str, size: int) -> AsyncIterator[bytes]:
    half = size // 2
    async for chunk in _range(client, file_id, 0, half - 1):
        yield chunk
    async for chunk in _range(client, file_id, half, None):
        yield chunk


async def test_encrypted_attachment_end_to_end(running_stack: Stack, accounts: Any) -> None:
    alice_account, bob_account, mallory_account = (
        accounts.create_active(n) for n in ("alice", "bob", "mallory")
    )
    alice = await _device(running_stack.gateway_url, alice_account)
    bob = await _device(running_stack.gateway_url, bob_account)
    mallory = await _device(running_stack.gateway_url, mallory_account)
    try:
        conversation = await alice.client.create_conversation([bob_account.user_id])
        conversation_id = conversation.conversation_id

        # alice: encrypt on the device while uploading (bounded memory), then send the key, encrypted
        key, plain_digest = generate_file_key(), hashlib.sha256()
        cipher_size = ciphertext_size(PLAINTEXT_SIZE)
        uploaded = await alice.client.upload_file(
            conversation_id, aencrypt_chunks(key, random_plaintext(PLAINTEXT_SIZE, plain_digest)), cipher_size
        )
        assert uploaded.size == cipher_size
        file_body = {
            "file_id": uploaded.file_id, "cid": uploaded.cid, "key": b64e(key), "name": "big.bin",
            "mime": "application/octet-stream", "size": PLAINTEXT_SIZE, "sha256": plain_digest.hexdigest(),
        }  # fmt: skip
        sent = await alice.send(
            conversation_id, {"type": "file", "file": file_body}, file_ids=[uploaded.file_id]
        )

        # bob: open the message, fetch the ciphertext in two Range halves, decrypt
        [message] = [m for m in await bob.client.history(conversation_id) if m.message_id == sent.message_id]
        opened = (await bob.open(message, conversation_id=conversation_id))["file"]
        assert opened["file_id"] == uploaded.file_id
        got = hashlib.sha256()
        async for plain in adecrypt_chunks(
            b64d(opened["key"]), _two_halves(bob.client, opened["file_id"], cipher_size)
        ):
            got.update(plain)
        assert got.hexdigest() == opened["sha256"] == plain_digest.hexdigest()

        with pytest.raises(ApiError) as denied:
            async with mallory.client.download_file(uploaded.file_id):
                pass
        assert (denied.value.status, denied.value.code) == (404, "file_not_found")

        await _assert_anchored(alice.client, uploaded)
        await _assert_unpinned_after_deletion(running_stack, alice.client, sent.message_id, uploaded)
    finally:
        for device in (alice, bob, mallory):
            await device.client.aclose()


async def _assert_anchored(client: Client, uploaded: FileUploaded, timeout: float = 60) -> None:
    """The file's log entry reaches the chain: GET /files/{id}/proof says "anchored"."""
    import asyncio

    deadline = time.monotonic() + timeout
    proof = await client.file_proof(uploaded.file_id)
    while proof.status != "anchored" and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        proof = await client.file_proof(uploaded.file_id)
    assert proof.status == "anchored", proof
    assert proof.entry is not None
    assert (proof.entry.kind, proof.entry.id, proof.entry.digest) == (
        "file",
        uploaded.file_id,
        uploaded.sha256,
    )


async def _assert_unpinned_after_deletion(
    stack: Stack, client: Client, message_id: str, uploaded: FileUploaded, timeout: float = 30
) -> None:
    import asyncio

    pinned = httpx.post(f"{stack.ipfs.api_url}/pin/ls", params={"type": "recursive"}, timeout=10).json()[
        "Keys"
    ]
    assert uploaded.cid in pinned
    await client.delete_message(message_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pinned = httpx.post(f"{stack.ipfs.api_url}/pin/ls", params={"type": "recursive"}, timeout=10).json()[
            "Keys"
        ]
        if uploaded.cid not in pinned:
            break
        await asyncio.sleep(0.3)
    assert uploaded.cid not in pinned
    with pytest.raises(ApiError) as gone:
        async with client.download_file(uploaded.file_id):
            pass
    assert gone.value.status == 404
