"""The web client in a real headless Chromium against the real stack (SPEC §8): the messenger.

Two people register in their own browsers (the verification link comes from the mail catcher),
the admin approves them in the admin panel, and they chat live both ways with every byte sealed
and opened in the page: unread counts and previews decrypted locally, typing, read receipts,
optimistic sending acknowledged over the WebSocket, a 5 MiB file that downloads intact, an image
previewed after decryption, anchored badges and a proof verified in the browser and against the
chain, deletion, and a key-change warning when one of them rotates keys. Every test fails on a
console error, a page error or a request to a foreign origin (``web_helpers.Web.check``).

Needs ``web/dist`` (``make web``) and Debian's Chromium (``make browser``). Screenshots go to
``test-artifacts/web/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from devstack.stack import Stack
from tests.integration.web_helpers import ANCHOR_TIMEOUT_MS, WEB_TEST_MARKS, CuttableProxy, Web, unique

pytestmark = WEB_TEST_MARKS

RECORD_PROGRESS = """() => {
  window.__progress = [];
  window.__labels = [];
  const labelOf = (n) => (n.nodeType === 1 ? n : n.parentElement)?.closest(".progress-label, .file-status");
  new MutationObserver((records) => {
    for (const r of records) {
      const t = r.target;
      if (t instanceof HTMLProgressElement) window.__progress.push([t.getAttribute("aria-label"), t.value]);
      const label = labelOf(t);
      if (label) window.__labels.push(label.textContent);
    }
  }).observe(document.body, {
    attributes: true, attributeFilter: ["value"], childList: true, characterData: true, subtree: true,
  });
}"""


def _png(width: int, height: int) -> bytes:
    """A small valid PNG (a colour gradient), made here."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 255 // width, y * 255 // height, 160)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _ws_frames(page: Page) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    received: list[dict[str, Any]] = []

    def on_socket(ws: Any) -> None:
        ws.on("framesent", lambda data: sent.append(json.loads(data)))
        ws.on("framereceived", lambda data: received.append(json.loads(data)))

    page.on("websocket", on_socket)
    return sent, received


def test_register_approve_chat_files_proofs_and_key_change(web: Web, accounts: Any) -> None:
    admin = accounts.admin_account()
    alice_name, bob_name = unique("Alice"), unique("Bob")
    alice_email, bob_email = accounts.unique_email("web-alice"), accounts.unique_email("web-bob")
    alice, bob, boss = web.page(), web.page(), web.page()

    # register and verify in the browser: the stack has an admin, so both wait for approval
    alice.goto(f"{web.base}/login")
    expect(alice.get_by_role("button", name="Log in", exact=True)).to_be_visible()
    web.shot(alice, "login")
    assert "administrator must approve" in web.register_and_verify(alice, alice_name, alice_email, "register")
    assert "administrator must approve" in web.register_and_verify(bob, bob_name, bob_email)
    web.allow_http_errors(403)
    alice.goto(f"{web.base}/login")
    alice.get_by_label("E-mail").fill(alice_email)
    alice.get_by_label("Password").fill(accounts.password)
    alice.get_by_label("Password").press("Enter")
    expect(alice.get_by_role("alert")).to_contain_text("approv")  # the API's message, shown as is

    # the admin approves both in the admin panel
    web.login(boss, admin)
    boss.get_by_role("link", name="Admin").click()
    for email in (alice_email, bob_email):
        boss.get_by_role("button", name=f"Approve {email}").click()
        expect(boss.get_by_role("button", name=f"Approve {email}")).to_have_count(0)
    expect(boss.get_by_role("table", name="Users")).to_contain_text(bob_email)
    boss.context.close()

    # two users, two browser contexts: A starts a direct conversation and writes (Enter sends)
    web.login(alice, SimpleNamespace(email=alice_email, password=accounts.password))
    web.login(bob, SimpleNamespace(email=bob_email, password=accounts.password))
    sent_frames, received_frames = _ws_frames(alice)
    alice.reload()
    expect(alice.get_by_role("status", name="Connection: Live")).to_be_visible()
    web.open_chat_with(alice, bob_name)
    text = "Hello Bob — sealed in Alice's browser"
    web.send(alice, text)
    # optimistic sending went over the WebSocket and was acknowledged with the same client_id
    sends = [f for f in sent_frames if f.get("type") == "send"]
    assert sends
    assert set(sends[0]["envelope"]) >= {"ciphertext", "recipients", "signature"}
    acks = [f for f in received_frames if f.get("type") == "ack"]
    assert sends[0]["client_id"] in {f.get("client_id") for f in acks}
    assert text not in json.dumps(sent_frames)  # only ciphertext leaves the page

    # B's list: an unread count and the last message decrypted locally as the preview
    entry = bob.locator("a.conv").first
    expect(entry.get_by_label("1 unread")).to_be_visible()
    expect(entry.locator(".conv-preview")).to_have_text(text)
    web.shot(bob, "conversation-list")
    entry.click()
    received = bob.locator("li.message", has_text=text)
    expect(received).to_be_visible()
    expect(received.locator(".sender")).to_have_text(alice_name)

    # typing indicator and a reply the other way
    bob.get_by_label("Message", exact=True).press_sequentially("Hi Al", delay=30)
    expect(alice.locator(".typing")).to_contain_text(f"{bob_name} is typing")
    bob.get_by_label("Message", exact=True).fill("")
    web.send(bob, "Hi Alice, got it.")
    expect(alice.locator("li.message", has_text="Hi Alice, got it.")).to_be_visible()

    # the read receipt reaches A; the badges turn anchored, then verified in the page
    sent = alice.locator("li.message.mine", has_text=text)
    expect(sent.locator(".receipt")).to_have_text("Read")
    expect(received.locator(".badge")).to_have_attribute("data-anchor", "verified", timeout=ANCHOR_TIMEOUT_MS)
    expect(sent.locator(".badge")).to_contain_text("Anchored", timeout=ANCHOR_TIMEOUT_MS)

    # a 5 MiB file: encrypted and uploaded with progress, downloaded with progress, intact
    payload = os.urandom(5 * 1024 * 1024)
    alice.evaluate(RECORD_PROGRESS)
    bob.evaluate(RECORD_PROGRESS)
    alice.locator("input[type=file]").set_input_files(
        files=[{"name": "big.bin", "mimeType": "application/octet-stream", "buffer": payload}]
    )
    expect(alice.locator(".progress-label")).to_contain_text("Sent big.bin", timeout=60_000)
    labels = alice.evaluate("window.__labels")
    assert any("Encrypting big.bin" in t for t in labels)
    assert any("Uploading big.bin" in t for t in labels)
    assert any(0 < v < 1 for name, v in alice.evaluate("window.__progress") if name == "Upload progress")
    card = bob.locator("li.message", has_text="big.bin")
    expect(card).to_be_visible()
    with bob.expect_download(timeout=60_000) as download_info:
        card.get_by_role("button", name="Download big.bin").click()
    download = download_info.value
    assert download.suggested_filename == "big.bin"
    got = Path(download.path()).read_bytes()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(payload).hexdigest()
    steps = [v for name, v in bob.evaluate("window.__progress") if name == "Download progress of big.bin"]
    assert any(0 < v < 1 for v in steps), steps
    expect(card.locator(".file-status")).to_contain_text("SHA-256 checked")

    # an image is shown to B after decryption in B's browser
    image = _png(96, 64)
    alice.locator("input[type=file]").set_input_files(
        files=[{"name": "sketch.png", "mimeType": "image/png", "buffer": image}]
    )
    shown = bob.locator("li.message", has_text="sketch.png").get_by_role("img", name="sketch.png")
    expect(shown).to_be_visible()
    assert shown.evaluate("img => img.naturalWidth") == 96
    assert shown.get_attribute("src").startswith("blob:")
    web.shot(bob, "conversation-view")

    # the proof dialog: tree size, head, transaction, block; verified here and on chain
    received.locator(".badge").click()
    dialog = bob.get_by_role("dialog", name="Message proof")
    expect(dialog).to_contain_text("Verified in this browser")
    for label in ("Tree size", "Root hash", "Transaction", "Block", "Inclusion proof"):
        expect(dialog).to_contain_text(label)
    expect(dialog).to_contain_text(re.compile(r"0x[0-9a-f]{64}"))
    chain = dialog.locator(".chain-result")
    expect(chain).to_have_attribute("data-chain", "verified")
    expect(dialog).to_contain_text("verifyInclusion accepts the inclusion proof")
    web.shot(bob, "proof-dialog")
    dialog.get_by_role("button", name="Close").click()

    # deletion reaches the other side
    doomed = alice.locator("li.message.mine", has_text=text)
    doomed_id = doomed.get_attribute("data-message-id")  # before: once deleted, the text is gone
    alice.once("dialog", lambda d: d.accept())
    doomed.hover()
    doomed.get_by_role("button", name="Delete this message").click()
    expect(bob.locator(f"li.message[data-message-id='{doomed_id}'] .deleted")).to_have_text(
        "This message was deleted."
    )
    expect(alice.locator(f"li.message[data-message-id='{doomed_id}'] .deleted")).to_have_text(
        "This message was deleted."
    )

    # B rotates keys: A is warned in the open conversation; B still reads the older history
    # (after a reload the login's recent authentication is gone: new keys ask for the password)
    bob.reload()
    expect(bob.get_by_label("Find people")).to_be_visible()  # the session came back from the cookie
    bob.get_by_role("link", name="Settings").click()
    old_key = bob.locator("dd.mono").first.inner_text()
    bob.once("dialog", lambda d: d.accept())
    bob.get_by_role("button", name="Rotate this device's keys").click()
    confirm = bob.get_by_role("dialog", name="Confirm it's you")
    confirm.get_by_label("Your password").fill(accounts.password)
    confirm.get_by_role("button", name="Confirm").click()
    expect(bob.locator("dd.mono").first).not_to_have_text(old_key)
    banner = alice.get_by_role("alert").filter(has_text="security keys changed")
    expect(banner).to_be_visible()
    web.shot(alice, "key-change-warning")
    # never re-pinned silently: nothing is sealed to the new key until Alice confirms it
    alice.get_by_label("Message", exact=True).fill("before confirming")
    alice.get_by_label("Message", exact=True).press("Enter")
    expect(alice.locator("li.message.failed", has_text="before confirming")).to_contain_text("not confirmed")
    banner.get_by_role("button", name="Confirm new keys").click()
    expect(banner).to_have_count(0)
    web.send(alice, "to your new key")
    bob.get_by_role("link", name="Chats").click()
    bob.locator("a.conv").first.click()
    expect(bob.locator("li.message", has_text="to your new key")).to_be_visible()
    expect(bob.locator("li.message.mine", has_text="Hi Alice, got it.")).to_be_visible()
    alice.context.close()
    bob.context.close()


@pytest.fixture
def outage(running_stack: Stack, web: Web) -> Iterator[CuttableProxy]:
    """A proxy in front of the gateway that the test cuts like a real outage (any Chromium)."""
    proxy = CuttableProxy(running_stack.ports["gateway"])
    web.allow_origin(proxy.url)
    try:
        yield proxy
    finally:
        proxy.close()


def test_reconnect_catches_up_and_failed_send_can_be_retried(
    web: Web, accounts: Any, outage: CuttableProxy
) -> None:
    a = accounts.create_active("web-a", name=unique("Ada"))
    b = accounts.create_active("web-b", name=unique("Ben"))
    pa, pb = web.page(), web.page()
    web.login(pa, a)
    web.login(pb, b, base=outage.url)  # B reaches the gateway only through the proxy
    web.open_chat_with(pa, b.display_name)
    web.send(pa, "before the outage")
    pb.locator("a.conv").first.click()
    expect(pb.locator("li.message", has_text="before the outage")).to_be_visible()

    # the gateway goes away for B: its socket is reset and new connections are refused
    web.allow_console(r"ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET|WebSocket connection to .* failed")
    outage.cut()
    expect(pb.get_by_role("status", name=re.compile("Connection: (Offline|Connecting)"))).to_be_visible()
    for i in range(3):
        web.send(pa, f"while you were away {i}")
    # a message typed during the outage shows at once, then says it was not sent, and can be retried
    pb.get_by_label("Message", exact=True).fill("typed offline")
    pb.get_by_label("Message", exact=True).press("Enter")
    failed = pb.locator("li.message.failed", has_text="typed offline")
    expect(failed.get_by_role("alert")).to_contain_text("Not sent")
    expect(pb.get_by_role("status", name=re.compile("Connection: (Offline|Connecting)"))).to_be_visible()

    outage.restore()
    expect(pb.get_by_role("status", name="Connection: Live")).to_be_visible(timeout=30_000)
    for i in range(3):  # caught up, each exactly once
        expect(pb.locator("li.message", has_text=f"while you were away {i}")).to_have_count(1)
    expect(pb.locator("li.message", has_text="before the outage")).to_have_count(1)
    failed.get_by_role("button", name="Retry").click()
    expect(pa.locator("li.message", has_text="typed offline")).to_have_count(1)
    expect(pb.locator("li.message.failed")).to_have_count(0)
    expect(pb.locator("li.message", has_text="typed offline")).to_have_count(1)


def test_group_conversation(web: Web, accounts: Any) -> None:
    a, b, c = (accounts.create_active(f"web-{n}", name=unique(n)) for n in ("Gus", "Hal", "Ivy"))
    pa, pb, pc = web.page(), web.page(), web.page()
    for page, user in ((pa, a), (pb, b), (pc, c)):
        web.login(page, user)  # each publishes its device keys
    pa.get_by_role("button", name="New group").click()
    dialog = pa.get_by_role("dialog", name="New group")
    dialog.get_by_label("Group name").fill("Web group")
    for member in (b, c):
        dialog.get_by_label("Add people").fill(member.display_name)
        dialog.get_by_role("button", name=f"Add {member.display_name}").click()
    dialog.get_by_role("button", name="Create group").click()
    expect(pa.get_by_role("heading", name="Web group")).to_be_visible()
    web.send(pa, "hello group")
    pb.get_by_role("link", name=re.compile("Web group")).click()
    expect(pb.locator("li.message", has_text="hello group")).to_be_visible()
    expect(pa.locator("li.message.mine", has_text="hello group").locator(".receipt")).to_contain_text(
        f"Read by {b.display_name}"
    )
    for page in (pa, pb, pc):
        page.context.close()
