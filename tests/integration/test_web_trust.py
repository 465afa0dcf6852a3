"""Trust on the device in the browser (SPEC §11), in a real Chromium against the real stack: a new
device on the own account is shown within seconds and stays until the user decides; a message moved
into another conversation is shown invalid; a proof from another ledger or a forked log is refused
in the proof dialog (the gateway's proof and consistency routes replaced by test doubles)."""

from __future__ import annotations

import json
import time
from typing import Any

from playwright.sync_api import Page, Route, expect

from chainchat.crypto import DeviceKeys, PublicDeviceKey, seal_envelope
from devstack.stack import Stack
from tests.integration.trust_helpers import rogue_ledger_proof, splice_into, wait_anchored_proof
from tests.integration.web_helpers import WEB_TEST_MARKS, Web, unique

pytestmark = WEB_TEST_MARKS


def test_a_new_device_on_my_account_is_shown_until_i_decide(web: Web, accounts: Any) -> None:
    me = accounts.create_active("web-own", name=unique("Owner"))
    first = web.page()
    web.login(first, me)
    expect(first.locator(".device-added")).to_have_count(0)
    second = web.page()  # another browser: a second device of the same account
    web.login(second, me)
    added_at = time.monotonic()
    banner = first.locator(".device-added")
    expect(banner).to_be_visible(timeout=5_000)
    seen_after = time.monotonic() - added_at
    assert seen_after < 5, seen_after
    expect(banner).to_contain_text("A new device was added to your account on")
    expect(banner).to_contain_text("if this was not you, revoke it")
    web.shot(first, "own-new-device-banner")
    expect(second.locator(".device-added")).to_have_count(0)  # its own key; the first was there before
    first.reload()  # the banner stays until the user decides
    expect(first.locator(".device-added")).to_be_visible()
    first.locator(".device-added").get_by_role("button", name="This was me").click()
    expect(first.locator(".device-added")).to_have_count(0)
    first.reload()
    expect(first.get_by_label("Find people")).to_be_visible()
    expect(first.locator(".device-added")).to_have_count(0)


def _python_user(accounts: Any, prefix: str) -> tuple[Any, DeviceKeys]:
    user = accounts.create_active(prefix, name=unique(prefix.title()))
    device = DeviceKeys.generate()
    body = device.publish_body(["hpke-x25519-aes256gcm"])
    published = accounts.http.put("/keys/me", json=body, headers=user.headers)
    assert published.status_code == 200, published.text
    return user, device


def _post_text(
    accounts: Any, sender: Any, device: DeviceKeys, cid: str, members: list[str], text: str
) -> str:
    recipients = [device.public(sender.user_id)]
    for member in members:
        keys = accounts.http.get(f"/keys/{member}", headers=sender.headers).json()["keys"]
        recipients += [
            PublicDeviceKey.from_b64(member, k["x25519_public"], k["ed25519_public"]) for k in keys
        ]
    envelope = seal_envelope(
        {"type": "text", "text": text, "sent_at": "2026-12-03T00:00:00.000Z"}, sender=device,
        sender_id=sender.user_id, conversation_id=cid, recipients=recipients,
    )  # fmt: skip
    body = {"envelope": envelope.model_dump(mode="json")}
    sent = accounts.http.post(f"/conversations/{cid}/messages", json=body, headers=sender.headers)
    assert sent.status_code == 201, sent.text
    return str(sent.json()["message_id"])


def _conversation(accounts: Any, owner: Any, members: list[str], title: str | None = None) -> str:
    body: dict[str, Any] = {"member_ids": members, **({"title": title} if title else {})}
    conv = accounts.http.post("/conversations", json=body, headers=owner.headers)
    assert conv.status_code in (200, 201), conv.text
    return str(conv.json()["conversation_id"])


def test_a_message_moved_into_another_conversation_is_shown_invalid(
    web: Web, accounts: Any, running_stack: Stack
) -> None:
    sender, device = _python_user(accounts, "web-splicer")
    reader = accounts.create_active("web-reader", name=unique("Reader"))
    third = accounts.create_active("web-third", name=unique("Third"))
    page = web.page()
    web.login(page, reader)  # publishes the reader's keys
    direct = _conversation(accounts, sender, [reader.user_id])
    group = _conversation(accounts, sender, [reader.user_id, third.user_id], title=unique("Splice group"))
    message_id = _post_text(accounts, sender, device, direct, [reader.user_id], "only for the direct chat")
    splice_into(running_stack, message_id, group)  # the operator copies the signed envelope
    page.reload()
    expect(page.get_by_label("Find people")).to_be_visible()
    page.locator("a.conv", has_text="Splice group").click()
    moved = page.locator("li.message .undecryptable.wrong_conversation")
    expect(moved).to_be_visible()
    expect(moved).to_contain_text("signed for another conversation")
    expect(page.locator("li.message", has_text="only for the direct chat")).to_have_count(0)
    expect(page.locator("a.conv", has_text="Splice group")).to_contain_text("invalid message")
    web.shot(page, "spliced-message-invalid")
    page.goto(f"{web.base}/c/{direct}")
    expect(page.locator("li.message", has_text="only for the direct chat")).to_be_visible()


def _open_proof(page: Page, text: str) -> Any:
    page.locator("li.message", has_text=text).locator(".badge").click()
    dialog = page.get_by_role("dialog", name="Message proof")
    expect(dialog.locator(".chain-result")).not_to_have_text("Asking the chain…")
    return dialog


def test_proof_dialog_refuses_another_ledger_and_reports_a_forked_log(
    web: Web, accounts: Any, running_stack: Stack
) -> None:
    sender, device = _python_user(accounts, "web-prover")
    reader = accounts.create_active("web-verifier", name=unique("Verifier"))
    page = web.page()
    web.login(page, reader)
    cid = _conversation(accounts, sender, [reader.user_id])
    first = _post_text(accounts, sender, device, cid, [reader.user_id], "first, honest")
    proof = wait_anchored_proof(accounts.http, f"/messages/{first}/proof", reader.headers)
    page.locator("a.conv").first.click()
    dialog = _open_proof(page, "first, honest")
    expect(dialog.locator(".chain-result")).to_have_attribute("data-chain", "verified")
    dialog.get_by_role("button", name="Close").click()

    # the server serves a proof anchored on its own contract: verifies on chain, refused here
    rogue = rogue_ledger_proof(running_stack.chain.rpc_url, proof["entry"])

    def serve_rogue(route: Route) -> None:
        route.fulfill(status=200, content_type="application/json", body=json.dumps(rogue))

    page.route(f"**/api/v1/messages/{first}/proof", serve_rogue)
    dialog = _open_proof(page, "first, honest")
    result = dialog.locator(".chain-result")
    expect(result).to_have_attribute("data-code", "ledger_mismatch")
    expect(result).to_contain_text("ledger_mismatch")
    web.shot(page, "proof-ledger-mismatch")
    dialog.get_by_role("button", name="Close").click()
    page.unroute(f"**/api/v1/messages/{first}/proof")

    # a newer head whose consistency proof (a test double of the route) shows a forked log
    later = _post_text(accounts, sender, device, cid, [reader.user_id], "second, after the fork")
    newer = wait_anchored_proof(accounts.http, f"/messages/{later}/proof", reader.headers)
    assert newer["tree_size"] > proof["tree_size"]

    def serve_fork(route: Route) -> None:
        body = route.fetch().json()
        body["proof"] = ["00" * 32 for _ in body["proof"]] or ["00" * 32]
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

    page.route("**/api/v1/ledger/consistency**", serve_fork)
    dialog = _open_proof(page, "second, after the fork")
    result = dialog.locator(".chain-result")
    expect(result).to_have_attribute("data-code", "log_forked")
    expect(result).to_contain_text("the server's log forked")
    web.shot(page, "proof-log-forked")
