"""The web client in a real headless Chromium against the real stack (SPEC §8).

Registration and e-mail verification through the browser, approval in the admin panel, two users
chatting live in two browser contexts with every byte encrypted in the page, anchored badges and
locally verified proofs, file attachments, typing and read receipts, key-change warnings, safety
numbers, TOTP login, and envelopes crossing between the Python SDK and the browser in both suites.

Needs ``web/dist`` (``cd web && npm ci && npm run build``) and a Chromium at ``/usr/bin/chromium``
(``apt-get install chromium``). Screenshots go to ``web/test-results/``.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from chainchat.crypto import DeviceKeys, PublicDeviceKey, open_envelope, seal_envelope
from chainchat.messenger import envelope_fields
from devstack.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "web" / "dist"
RESULTS = ROOT / "web" / "test-results"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ANCHOR_TIMEOUT_MS = 45_000


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


class Web:
    """One browser; each user gets a context of their own (separate storage, separate device)."""

    def __init__(self, browser: Browser, base_url: str, accounts: Any) -> None:
        self.browser = browser
        self.base = base_url
        self.accounts = accounts
        self.errors: list[str] = []

    def page(self) -> Page:
        context = self.browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        return page

    def login(self, page: Page, account: Any, *, totp_code: str | None = None) -> None:
        page.goto(f"{self.base}/login")
        page.get_by_label("E-mail").fill(account.email)
        page.get_by_label("Password").fill(account.password)
        page.get_by_role("button", name="Log in", exact=True).click()
        if totp_code is not None:
            expect(page.get_by_label("Authentication code")).to_be_visible()
            page.get_by_label("Authentication code").fill(totp_code)
            page.get_by_role("button", name="Log in", exact=True).click()
        expect(page.get_by_label("Find people")).to_be_visible()
        expect(page.get_by_role("status", name="Connection: Live")).to_be_visible()

    def register_and_verify(self, page: Page, name: str, email: str) -> str:
        """Register in the browser, open the mailed link in the browser; return the status text."""
        page.goto(f"{self.base}/register")
        page.get_by_label("Display name").fill(name)
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(self.accounts.password)
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_role("status")).to_contain_text("verification link")
        token = self.accounts.wait_link(email)
        page.goto(f"{self.base}/verify?token={token}")
        status = page.get_by_role("status")
        expect(status).to_contain_text("verified")
        return status.inner_text()

    def open_chat_with(self, page: Page, name: str) -> None:
        page.get_by_label("Find people").fill(name)
        page.get_by_role("button", name=f"Message {name}").click()
        expect(page.get_by_role("heading", name=name)).to_be_visible()

    def send(self, page: Page, text: str) -> None:
        page.get_by_label("Message", exact=True).fill(text)
        page.get_by_role("button", name="Send").click()
        expect(page.locator("li.message.mine", has_text=text)).to_be_visible()

    def shot(self, page: Page, name: str) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path


@pytest.fixture(scope="module")
def web(running_stack: Stack, accounts: Any) -> Iterator[Web]:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium: apt-get install chromium (or set CHROMIUM_PATH)")
    assert (DIST / "index.html").is_file(), "web/dist is missing: run `cd web && npm ci && npm run build`"
    index = httpx.get(f"{running_stack.gateway_url}/", timeout=10)
    assert index.status_code == 200, "the gateway does not serve web/dist at /"
    assert 'id="app"' in index.text, "the gateway does not serve web/dist at /"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        harness = Web(browser, running_stack.gateway_url, accounts)
        try:
            yield harness
        finally:
            browser.close()
    assert not harness.errors, harness.errors


def _unique(prefix: str) -> str:
    return f"{prefix} {os.urandom(3).hex()}"


def _conversation_of(page: Page) -> str:
    match = re.search(r"/c/([^/?#]+)", page.url)
    assert match, page.url
    return match.group(1)


def test_register_verify_approve_and_chat_live(web: Web, accounts: Any) -> None:
    admin = accounts.admin_account()
    alice_name, bob_name = _unique("Alice"), _unique("Bob")
    alice_email, bob_email = accounts.unique_email("web-alice"), accounts.unique_email("web-bob")
    alice, bob, boss = web.page(), web.page(), web.page()

    # register and verify in the browser: the stack has an admin, so both wait for approval
    assert "administrator must approve" in web.register_and_verify(alice, alice_name, alice_email)
    assert "administrator must approve" in web.register_and_verify(bob, bob_name, bob_email)
    alice.goto(f"{web.base}/login")
    alice.get_by_label("E-mail").fill(alice_email)
    alice.get_by_label("Password").fill(accounts.password)
    alice.get_by_role("button", name="Log in", exact=True).click()
    expect(alice.get_by_role("alert")).to_contain_text("approv")  # the API's message is shown

    # the admin approves both in the admin panel, which also shows the ledger and the audit log
    web.login(boss, admin)
    boss.get_by_role("link", name="Admin").click()
    for email in (alice_email, bob_email):
        boss.get_by_role("button", name=f"Approve {email}").click()
        expect(boss.get_by_role("button", name=f"Approve {email}")).to_have_count(0)
    expect(boss.get_by_role("table", name="Users")).to_contain_text(bob_email)
    expect(boss.get_by_role("region", name="Ledger")).to_contain_text("Chain id")
    expect(boss.get_by_role("table", name="Audit log")).to_contain_text("approved")
    web.shot(boss, "admin-panel")
    boss.context.close()

    # two users, two browser contexts: A starts a direct conversation and writes
    web.login(alice, SimpleNamespace(email=alice_email, password=accounts.password))
    web.login(bob, SimpleNamespace(email=bob_email, password=accounts.password))
    web.open_chat_with(alice, bob_name)
    text = "Hello Bob — sealed in Alice's browser 🔐"
    web.send(alice, text)

    # B gets it live: unread count in the list, then the decrypted text
    entry = bob.locator("a.conv").first
    expect(entry.get_by_label("1 unread")).to_be_visible()
    entry.click()
    received = bob.locator("li.message", has_text=text)
    expect(received).to_be_visible()
    expect(received.locator(".sender")).not_to_have_text("You")

    # typing indicator and a reply the other way
    bob.get_by_label("Message", exact=True).press_sequentially("Hi Al", delay=30)
    expect(alice.locator(".typing")).to_contain_text("is typing")
    bob.get_by_label("Message", exact=True).fill("Hi Alice, got it.")
    bob.get_by_role("button", name="Send").click()
    expect(alice.locator("li.message", has_text="Hi Alice, got it.")).to_be_visible()

    # the read receipt reaches A; the badges turn anchored (and verified in the page)
    sent = alice.locator("li.message.mine", has_text=text)
    expect(sent.locator(".receipt")).to_have_text("Read")
    expect(sent.locator(".badge")).to_contain_text("Anchored", timeout=ANCHOR_TIMEOUT_MS)
    expect(received.locator(".badge")).to_contain_text("Anchored", timeout=ANCHOR_TIMEOUT_MS)
    expect(received.locator(".badge")).to_have_attribute("data-anchor", "verified", timeout=ANCHOR_TIMEOUT_MS)
    web.shot(alice, "chat-alice")
    web.shot(bob, "chat-bob")

    # the proof dialog: verified in the browser, with the chain transaction
    received.locator(".badge").click()
    dialog = bob.get_by_role("dialog", name="Message proof")
    expect(dialog).to_contain_text("Verified in this browser")
    expect(dialog).to_contain_text(re.compile(r"0x[0-9a-f]{64}"))
    web.shot(bob, "proof-dialog")
    dialog.get_by_role("button", name="Close").click()

    # history survives a reload (fetched and decrypted again)
    alice.reload()
    expect(alice.locator("li.message", has_text="Hi Alice, got it.")).to_be_visible()
    alice.context.close()
    bob.context.close()


def _pair(web: Web, accounts: Any) -> tuple[Any, Any, Page, Page]:
    """Two approved members (made over the API), each logged in in a browser context."""
    a = accounts.create_active("web-a", name=_unique("Ada"))
    b = accounts.create_active("web-b", name=_unique("Ben"))
    pa, pb = web.page(), web.page()
    web.login(pa, a)
    web.login(pb, b)
    return a, b, pa, pb


def test_file_attachment_encrypted_upload_and_download(web: Web, accounts: Any) -> None:
    a, b, pa, pb = _pair(web, accounts)
    web.open_chat_with(pa, b.display_name)
    payload = os.urandom(150_000) + b"the end"  # three STREAM chunks
    pa.locator("input[type=file]").set_input_files(
        files=[{"name": "report.bin", "mimeType": "application/octet-stream", "buffer": payload}]
    )
    expect(pa.locator(".progress-label")).to_contain_text("Sent report.bin")
    expect(pa.locator("li.message.mine .file-name")).to_have_text("report.bin")

    pb.locator("a.conv").first.click()
    card = pb.locator("li.message", has_text="report.bin")
    expect(card).to_be_visible()
    with pb.expect_download() as download_info:
        card.get_by_role("button", name="Download report.bin").click()
    download = download_info.value
    assert download.suggested_filename == "report.bin"
    assert Path(download.path()).read_bytes() == payload
    web.shot(pb, "file-attachment")

    # the server only ever saw ciphertext: the stored blob is not the plaintext
    message_id = card.get_attribute("data-message-id")
    assert message_id
    pa.context.close()
    pb.context.close()


def test_safety_numbers_match_and_key_change_is_shown(web: Web, accounts: Any) -> None:
    a, b, pa, pb = _pair(web, accounts)
    web.open_chat_with(pa, b.display_name)
    web.send(pa, "checking our safety number")
    pb.locator("a.conv").first.click()
    expect(pb.locator("li.message", has_text="checking our safety number")).to_be_visible()

    numbers = []
    for page in (pa, pb):
        page.get_by_role("button", name="Safety number").click()
        shown = page.locator(".safety-number")
        expect(shown).to_have_text(re.compile(r"^(\d{5} ){11}\d{5}$"))
        numbers.append(shown.inner_text())
        page.get_by_role("button", name="Close").click()
    assert numbers[0] == numbers[1]

    # B logs in on a second browser: a new device key; A is warned and the number changes
    pb2 = web.page()
    web.login(pb2, b)
    banner = pa.get_by_role("alert").filter(has_text="security keys changed")
    expect(banner).to_be_visible()
    web.shot(pa, "key-change-warning")
    banner.get_by_role("button", name="Verify safety number").click()
    changed = pa.locator(".safety-number")
    expect(changed).to_have_text(re.compile(r"^(\d{5} ){11}\d{5}$"))
    assert changed.inner_text() != numbers[0]
    pa.get_by_role("button", name="Mark as verified").click()
    pa.get_by_role("button", name="Close").click()
    expect(banner).to_have_count(0)

    # messages now reach both of B's devices
    web.send(pa, "to both of your devices")
    pb2.locator("a.conv").first.click()
    expect(pb2.locator("li.message", has_text="to both of your devices")).to_be_visible()
    # the older message was not encrypted for the new device, and says so
    expect(pb2.locator("li.message", has_text="not encrypted for this device")).to_be_visible()
    for page in (pa, pb, pb2):
        page.context.close()


def test_login_with_totp_set_up_in_the_browser(web: Web, accounts: Any) -> None:
    user = accounts.create_active("web-mfa", name=_unique("Mfa"))
    page = web.page()
    web.login(page, user)
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_text("in the transparency log")).to_be_visible()
    web.shot(page, "settings")
    page.get_by_role("button", name="Set up two-factor authentication").click()
    secret = page.get_by_label("TOTP secret").inner_text().strip()
    totp = pyotp.TOTP(secret)
    page.get_by_label("Authentication code").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_text("Keep these recovery codes")).to_be_visible()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in", exact=True)).to_be_visible()

    # a wrong code shows the API's message; the next step's code logs in
    page.get_by_label("E-mail").fill(user.email)
    page.get_by_label("Password").fill(user.password)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_label("Authentication code")).to_be_visible()
    page.get_by_label("Authentication code").fill("000000")
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("alert")).not_to_be_empty()
    page.get_by_label("Authentication code").fill(totp.at(time.time() + totp.interval))
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_label("Find people")).to_be_visible()
    page.context.close()


@pytest.mark.parametrize("suite", ["hpke-x25519-aes256gcm", "hpke-x25519-blowfish"])
def test_python_sdk_and_browser_read_each_other(web: Web, accounts: Any, suite: str) -> None:
    """Envelopes sealed by the Python SDK open in the browser and vice versa, on the live stack."""
    py = accounts.create_active("web-py", name=_unique("Py"))
    device = DeviceKeys.generate()
    published = accounts.http.put("/keys/me", json=device.publish_body([suite]), headers=py.headers)
    assert published.status_code == 200, published.text
    browser_user = accounts.create_active("web-br", name=_unique("Br"))
    page = web.page()
    web.login(page, browser_user)  # publishes the browser's device key

    conv = accounts.http.post(
        "/conversations", json={"member_ids": [browser_user.user_id]}, headers=py.headers
    )
    assert conv.status_code in (200, 201), conv.text
    cid = conv.json()["conversation_id"]
    keys = accounts.http.get(f"/keys/{browser_user.user_id}", headers=py.headers).json()["keys"]
    recipients = [
        PublicDeviceKey.from_b64(browser_user.user_id, k["x25519_public"], k["ed25519_public"]) for k in keys
    ]
    recipients.append(device.public(py.user_id))
    text = f"sealed in Python with {suite}"
    envelope = seal_envelope(
        {"type": "text", "text": text, "sent_at": "2025-01-01T00:00:00.000Z"},
        sender=device, sender_id=py.user_id, conversation_id=cid, recipients=recipients, suite=suite,
    )  # fmt: skip
    sent = accounts.http.post(
        f"/conversations/{cid}/messages",
        json={"envelope": envelope.model_dump(mode="json")},
        headers=py.headers,
    )
    assert sent.status_code == 201, sent.text

    page.locator("a.conv").first.click()
    expect(page.locator("li.message", has_text=text)).to_be_visible()
    web.send(page, "sealed in the browser")

    deadline = time.monotonic() + 20
    while True:
        history = accounts.http.get(f"/conversations/{cid}/messages", headers=py.headers).json()["messages"]
        mine = [m for m in history if m["sender_id"] == browser_user.user_id]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert mine, history
    sender_key = next(k for k in keys if k["key_id"] == mine[0]["sender_key_id"])
    body = open_envelope(
        envelope_fields(mine[0]),
        device=device,
        user_id=py.user_id,
        sender=PublicDeviceKey.from_b64(
            browser_user.user_id, sender_key["x25519_public"], sender_key["ed25519_public"]
        ),
    )
    assert body == {"type": "text", "text": "sealed in the browser", "sent_at": body["sent_at"]}
    page.context.close()


def test_client_routes_and_error_messages(web: Web, accounts: Any) -> None:
    page = web.page()
    page.goto(f"{web.base}/verify?token=not-a-valid-token-at-all")
    expect(page.get_by_role("alert")).not_to_be_empty()
    page.goto(f"{web.base}/login")
    page.get_by_label("E-mail").fill(accounts.unique_email("nobody"))
    page.get_by_label("Password").fill("wrong password here")
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("alert")).not_to_be_empty()
    page.goto(f"{web.base}/c/some-conversation")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.context.close()


def test_group_conversation_and_deletion(web: Web, accounts: Any) -> None:
    a, b, pa, pb = _pair(web, accounts)
    c = accounts.create_active("web-c", name=_unique("Cy"))
    pc = web.page()
    web.login(pc, c)

    pa.get_by_role("button", name="New group").click()
    dialog = pa.get_by_role("dialog", name="New group")
    dialog.get_by_label("Group name").fill("Web group")
    for member in (b, c):
        dialog.get_by_label("Add people").fill(member.display_name)
        dialog.get_by_role("button", name=f"Add {member.display_name}").click()
    dialog.get_by_role("button", name="Create group").click()
    expect(pa.get_by_role("heading", name="Web group")).to_be_visible()
    web.send(pa, "hello group")

    for page in (pb, pc):
        page.get_by_role("link", name=re.compile("Web group")).click()
        expect(page.locator("li.message", has_text="hello group")).to_be_visible()
    web.shot(pb, "group")

    sent = pa.locator("li.message.mine", has_text="hello group")
    pa.once("dialog", lambda d: d.accept())
    sent.hover()
    sent.get_by_role("button", name="Delete this message").click()
    expect(pa.locator("li.message.mine .deleted")).to_have_text("This message was deleted.")
    expect(pb.locator("li.message .deleted")).to_have_text("This message was deleted.")
    for page in (pa, pb, pc):
        page.context.close()


def test_gateway_serves_the_app_its_assets_and_keeps_api_errors(running_stack: Stack) -> None:
    if not (DIST / "index.html").is_file():
        pytest.skip("web/dist is not built")
    with httpx.Client(base_url=running_stack.gateway_url, timeout=10) as http:
        index = http.get("/")
        assert index.status_code == 200
        assert index.headers["cache-control"] == "no-cache"
        assert "frame-ancestors 'none'" in index.headers["content-security-policy"]
        for route in ("/login", "/c/abc", "/admin", "/reset-password?token=x"):
            page = http.get(route)
            assert page.status_code == 200, route
            assert page.text == index.text, route
        asset = re.search(r'src="(/assets/[^"]+\.js)"', index.text)
        assert asset, index.text
        js = http.get(asset.group(1))
        assert js.status_code == 200
        assert "immutable" in js.headers["cache-control"]
        assert http.get("/assets/nope.js").status_code == 404
        for method in ("GET", "POST", "DELETE"):
            missing = http.request(method, "/api/v1/no-such-route")
            assert missing.status_code == 404, method
            assert missing.json() == {"error": {"code": "not_found", "message": "Not Found"}}
        # the mail link: browsers get the app (which verifies with POST), other clients the
        # server-rendered page
        spa = http.get("/verify", params={"token": "x" * 20}, headers={"Accept": "text/html"})
        assert spa.text == index.text
        server = http.get("/verify", params={"token": "x" * 20})
        assert server.status_code == 400
        assert "Link not valid" in server.text


def test_sign_in_with_ethereum_wallet(web: Web, accounts: Any) -> None:
    """An injected EIP-1193 wallet (signing in Python with eth_account) is linked in Settings and
    then logs the user in without a password."""
    from eth_account import Account as EthAccount
    from eth_account.messages import encode_defunct

    wallet = EthAccount.create()

    def personal_sign(hex_message: str) -> str:
        signature = EthAccount.sign_message(encode_defunct(hexstr=hex_message), wallet.key).signature.hex()
        return signature if signature.startswith("0x") else f"0x{signature}"

    user = accounts.create_active("web-eth", name=_unique("Eth"))
    page = web.page()
    page.context.expose_function("__walletSign", personal_sign)
    page.context.add_init_script(
        "window.ethereum = { request: async ({ method, params }) => {"
        f" if (method === 'eth_requestAccounts') return ['{wallet.address.lower()}'];"
        " if (method === 'personal_sign') return await window.__walletSign(params[0]);"
        " throw new Error('unsupported ' + method); } };"
    )
    web.login(page, user)
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("button", name="Link Ethereum wallet").click()
    expect(page.get_by_text("Linked wallet:")).to_contain_text(wallet.address)
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in with Ethereum wallet").click()
    expect(page.get_by_label("Find people")).to_be_visible()
    expect(page.locator(".me-name")).to_have_text(user.display_name)
    page.context.close()
