"""Each real component starts on free ports and answers (SPEC §3)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from email.message import EmailMessage

import aiosmtplib
import httpx
import nats
import pytest
from nats.js.api import StreamConfig

from devstack.components import Chain, IpfsNode, MailDev, NatsServer

pytestmark = pytest.mark.integration


async def test_nats_pubsub_and_durable_jetstream(nats_server: NatsServer) -> None:
    nc = await nats.connect(nats_server.client_url())
    try:
        sub = await nc.subscribe("test.ping")
        await nc.publish("test.ping", b"hello")
        msg = await sub.next_msg(timeout=2)
        assert msg.data == b"hello"

        js = nc.jetstream()
        stream = f"T{uuid.uuid4().hex[:8]}"
        await js.add_stream(StreamConfig(name=stream, subjects=[f"{stream}.>"]))
        ack = await js.publish(f"{stream}.a", b"durable")
        assert ack.stream == stream
        assert ack.seq == 1
        got = await js.get_msg(stream, 1)
        assert got.data == b"durable"
    finally:
        await nc.close()
    # acknowledged writes are fsynced before the ack
    assert "sync_interval: always" in nats_server.config_path.read_text()


def test_chain_answers_chain_id_1337(chain: Chain) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    assert httpx.post(chain.rpc_url, json=body).json()["result"] == hex(1337)
    accounts = httpx.post(chain.rpc_url, json={**body, "method": "eth_accounts"}).json()["result"]
    assert len(accounts) == 10


def _cidv1_raw(data: bytes) -> str:
    """Independent CIDv1 (raw codec, sha2-256) of one block, base32 lower, multibase 'b'."""
    import base64

    cid = bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(cid).decode().lower().rstrip("=")


def test_ipfs_add_cat_round_trip_5mib(ipfs_node: IpfsNode) -> None:
    data = os.urandom(5 * 1024 * 1024)
    files = {"file": ("blob", data, "application/octet-stream")}
    params = {"cid-version": "1", "raw-leaves": "true", "pin": "true"}
    added = httpx.post(f"{ipfs_node.api_url}/add", params=params, files=files, timeout=60).json()
    cid = added["Hash"]
    assert cid.startswith("bafy")  # several 256 KiB chunks -> a dag-pb root
    got = httpx.post(f"{ipfs_node.api_url}/cat", params={"arg": cid}, timeout=60).content
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    # a one-chunk file's CID is the raw block CID, computed here independently
    small = b"chainchat"
    one = httpx.post(f"{ipfs_node.api_url}/add", params=params, files={"file": ("s", small)}).json()
    assert one["Hash"] == _cidv1_raw(small)


async def test_mail_sent_with_aiosmtplib_reaches_maildev(maildev: MailDev) -> None:
    subject = f"foundation-{uuid.uuid4().hex}"
    message = EmailMessage()
    message["From"] = "noreply@chainchat.local"
    message["To"] = "someone@example.test"
    message["Subject"] = subject
    message.set_content("plain body")
    await aiosmtplib.send(message, hostname="127.0.0.1", port=maildev.smtp_port)
    for _ in range(50):
        mails = httpx.get(f"{maildev.web_url}/api/email").json()
        if any(m["subject"] == subject for m in mails):
            return
        await asyncio.sleep(0.1)
    pytest.fail("the mail never appeared in maildev")
