"""The web client in a real headless Chromium (SPEC §8): accounts, admin panel, themes, phone
layout, accessibility, the Content-Security-Policy, wallet sign-in, and envelopes crossing between
the Python SDK and the browser in both suites. Like test_web_client.py, every test fails on a
console error, a page error or a request to a foreign origin."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import Locator, Page, expect

from chainchat.crypto import DeviceKeys, PublicDeviceKey, open_envelope_detailed, seal_envelope
from chainchat.messenger import envelope_fields
from devstack.stack import Stack
from tests.integration.web_helpers import WEB_TEST_MARKS, Web, no_horizontal_overflow, origin, unique

pytestmark = WEB_TEST_MARKS

# WCAG contrast of an element's text against the first opaque background behind it
CONTRAST = """(el) => {
  if (!el.isConnected) return null;  // re-rendered away (a badge whose proof just anchored)
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lin = (v) => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  let bg = null;
  for (let n = el; n && !bg; n = n.parentElement) {
    const c = rgb(getComputedStyle(n).backgroundColor);
    if (c.length === 3 || (c.length === 4 && c[3] === 1)) bg = c;
  }
  bg = bg || [255, 255, 255];
  const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(bg)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


def _assert_contrast(page: Page, selectors: list[str]) -> None:
    for selector in selectors:
        for index in range(min(page.locator(selector).count(), 3)):
            ratio = _contrast(page.locator(selector).nth(index))
            if ratio is not None:
                assert ratio >= 4.5, f"{selector}: contrast {ratio:.2f} < 4.5"


def _contrast(el: Locator) -> float | None:
    """The element's text contrast, measured on what is in the page now; None when hidden. A node
    the UI replaces while it is measured (live proof badges) is measured again as it is now."""
    for _ in range(5):
        if not el.is_visible():
            return None
        ratio = el.evaluate(CONTRAST)
        if ratio is not None:
            return float(ratio)
        el.page.wait_for_timeout(200)
    raise AssertionError("the element kept being replaced while its contrast was measured")


def test_admin_panel_users_audit_and_ledger(web: Web, accounts: Any) -> None:
    member = accounts.create_active("web-adm", name=unique("Mo"))
    page = web.page()
    web.login(page, accounts.admin_account())
    page.get_by_role("link", name="Admin").click()
    users = page.get_by_role("table", name="Users")
    expect(users).to_contain_text(member.email)
    ledger = page.get_by_role("region", name="Ledger")
    expect(ledger).to_contain_text("Last anchored head")
    expect(ledger).to_contain_text("Backlog (leaves not anchored yet)")
    expect(ledger).to_contain_text(re.compile(r"#\d+ · \d+ leaves"))

    # disable, then enable again: the status and the audit log show it
    page.get_by_role("button", name=f"Disable {member.email}").click()
    row = users.locator(f"tr[data-user-id='{member.user_id}']")
    expect(row).to_contain_text("disabled")
    page.get_by_role("button", name=f"Enable {member.email}").click()
    expect(row).to_contain_text("active")
    page.get_by_label(f"Role of {member.email}").select_option("admin")
    expect(page.get_by_role("table", name="Audit log")).to_contain_text("role_changed")

    # the audit log, filtered by type and by user
    audit = page.get_by_role("table", name="Audit log")
    filters = page.get_by_role("form", name="Filter the audit log")
    filters.get_by_label("Event type").fill("user_disabled")
    filters.get_by_label("User").select_option(label=member.display_name)
    filters.get_by_role("button", name="Filter").click()
    expect(audit.locator("tbody tr")).to_have_count(1)
    expect(audit).to_contain_text("user_disabled")
    filters.get_by_label("Event type").fill("role_changed")
    filters.get_by_role("button", name="Filter").click()
    expect(audit.locator("tbody tr")).to_have_count(1)
    expect(audit).to_contain_text('"to":"admin"')
    _assert_contrast(page, ["th", "td", ".status.active", "dl.proof dt", "h2"])
    web.shot(page, "admin-panel")
    page.context.close()


def test_mfa_setup_with_qr_code_then_login_with_totp(web: Web, accounts: Any) -> None:
    user = accounts.create_active("web-mfa", name=unique("Mfa"))
    page = web.page()
    web.login(page, user)
    # a reload keeps the session (refresh cookie) but not the login's recent authentication
    page.reload()
    expect(page.get_by_label("Find people")).to_be_visible()
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_text(re.compile("in the transparency log|anchored on chain"))).to_be_visible()
    page.get_by_role("button", name="Set up two-factor authentication").click()
    dialog = page.get_by_role("dialog", name="Confirm it's you")
    web.allow_http_errors(403)
    dialog.get_by_label("Your password").fill("not my password")
    dialog.get_by_role("button", name="Confirm").click()
    expect(dialog.get_by_role("alert")).to_contain_text("wrong")
    dialog.get_by_label("Your password").fill(user.password)
    dialog.get_by_role("button", name="Confirm").click()
    expect(dialog).to_have_count(0)
    qr = page.get_by_role("img", name="QR code for your authenticator app")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] >= 150
    secret = page.get_by_label("TOTP secret").inner_text().strip()
    web.shot(page, "mfa-setup")
    totp = pyotp.TOTP(secret)
    page.get_by_label("Authentication code").fill(totp.now())
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_text("Keep these recovery codes")).to_be_visible()
    page.get_by_role("button", name="Log out").click()

    # the TOTP step: asked for after the password; a wrong code shows the API's message
    web.allow_http_errors(401)
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


def test_keyboard_focus_errors_and_client_routes(web: Web, accounts: Any) -> None:
    web.allow_http_errors(400, 401)
    page = web.page()
    page.goto(f"{web.base}/verify?token=not-a-valid-token-at-all")
    expect(page.get_by_role("alert")).not_to_be_empty()
    page.goto(f"{web.base}/login")
    # keyboard only: the e-mail field has focus, Tab moves on, Enter submits; focus is visible
    expect(page.get_by_label("E-mail")).to_be_focused()
    page.keyboard.type(accounts.unique_email("nobody"))
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type("wrong password here")
    page.keyboard.press("Enter")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text(re.compile(r"\w+ \w+"))
    page.get_by_role("button", name="Log in", exact=True).focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focused not in ("", "none"), "focus is not visible"
    _assert_contrast(page, ["label", ".links", ".error", "button.primary", "h2"])
    page.goto(f"{web.base}/c/some-conversation")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.context.close()


def test_dark_theme_and_phone_layout(web: Web, accounts: Any) -> None:
    a = accounts.create_active("web-ph", name=unique("Pia"))
    b = accounts.create_active("web-ph", name=unique("Quin"))
    phone = web.page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    web.login(phone, b)  # publishes B's keys
    # the system preference picks the dark theme
    page = web.page(color_scheme="dark")
    page.goto(f"{web.base}/login")
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert bg != "rgb(244, 246, 251)", bg
    web.login(page, a)
    web.open_chat_with(page, b.display_name)
    web.send(page, "dark and readable")
    _assert_contrast(
        page, [".conv-name", ".message .meta", ".bubble p", ".badge", ".conv-header .sub", "nav a"]
    )
    web.shot(page, "dark-theme")
    # the toggle switches to light and is remembered
    page.get_by_role("button", name="Switch to the light theme").click()
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    page.reload()
    expect(page.get_by_role("button", name="Switch to the dark theme")).to_be_visible()
    page.context.close()

    # a phone: the list, then the conversation with a way back; nothing scrolls sideways
    no_horizontal_overflow(phone)
    expect(phone.locator("a.conv").first).to_be_visible()
    web.shot(phone, "phone-conversation-list")
    phone.locator("a.conv").first.click()
    expect(phone.locator("li.message", has_text="dark and readable")).to_be_visible()
    expect(phone.get_by_label("Find people")).to_be_hidden()
    no_horizontal_overflow(phone)
    web.shot(phone, "phone-conversation-view")
    phone.get_by_role("link", name="Back to the conversation list").click()
    expect(phone.get_by_label("Find people")).to_be_visible()
    phone.get_by_role("link", name="Settings").click()
    no_horizontal_overflow(phone)
    phone.context.close()


def test_content_security_policy_blocks_inline_scripts_and_foreign_origins(
    web: Web, running_stack: Stack
) -> None:
    index = httpx.get(f"{running_stack.gateway_url}/", timeout=10)
    csp = dict(
        (part.strip().split(" ", 1) + [""])[:2]
        for part in index.headers["content-security-policy"].split(";")
    )
    assert csp["script-src"] == "'self'"
    assert csp["default-src"] == "'self'"
    assert "unsafe-inline" not in index.headers["content-security-policy"]
    assert set(csp["connect-src"].split()) <= {"'self'", *(web.allowed_origins - {origin(web.base)})}
    assert "frame-ancestors 'none'" in index.headers["content-security-policy"]

    page = web.page()
    web.allow_console(r"Content Security Policy|Refused to|Failed to fetch")
    page.goto(f"{web.base}/login")
    expect(page.get_by_role("button", name="Log in", exact=True)).to_be_visible()
    ran = page.evaluate(
        """() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';
        document.body.append(s); return window.__inline === 1; }"""
    )
    assert ran is False
    blocked = page.evaluate(
        "() => fetch('http://192.0.2.1:9/leak', {mode: 'no-cors'}).then(() => false, () => true)"
    )
    assert blocked is True
    web.origins.discard("http://192.0.2.1:9")  # refused by the page itself, never sent
    page.context.close()


def test_gateway_serves_the_app_its_assets_and_keeps_api_errors(running_stack: Stack) -> None:
    with httpx.Client(base_url=running_stack.gateway_url, timeout=10) as http:
        index = http.get("/")
        assert index.status_code == 200
        assert index.headers["cache-control"] == "no-cache"
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
        spa = http.get("/verify", params={"token": "x" * 20}, headers={"Accept": "text/html"})
        assert spa.text == index.text
        server = http.get("/verify", params={"token": "x" * 20})
        assert server.status_code == 400
        assert "Link not valid" in server.text


@pytest.mark.parametrize("suite", ["hpke-x25519-aes256gcm", "hpke-x25519-blowfish"])
def test_python_sdk_and_browser_read_each_other(web: Web, accounts: Any, suite: str) -> None:
    """Envelopes sealed by the Python SDK open in the browser and vice versa, on the live stack."""
    py = accounts.create_active("web-py", name=unique("Py"))
    device = DeviceKeys.generate()
    published = accounts.http.put("/keys/me", json=device.publish_body([suite]), headers=py.headers)
    assert published.status_code == 200, published.text
    browser_user = accounts.create_active("web-br", name=unique("Br"))
    page = web.page()
    web.login(page, browser_user)

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
    for version, words in ((1, "an old v1 envelope"), (2, text)):
        envelope = seal_envelope(
            {"type": "text", "text": words, "sent_at": "2025-01-01T00:00:00.000Z"}, sender=device,
            sender_id=py.user_id, conversation_id=cid, recipients=recipients, suite=suite, version=version,
        )  # fmt: skip
        sent = accounts.http.post(
            f"/conversations/{cid}/messages",
            json={"envelope": envelope.model_dump(mode="json")},
            headers=py.headers,
        )
        assert sent.status_code == 201, sent.text

    page.locator("a.conv").first.click()
    expect(page.locator("li.message", has_text=text)).to_be_visible()
    expect(page.locator("li.message", has_text=text).locator(".legacy-envelope")).to_have_count(0)
    old = page.locator("li.message", has_text="an old v1 envelope")
    expect(old.locator(".legacy-envelope")).to_have_text("not key-committing")
    web.send(page, "sealed in the browser")
    history = accounts.http.get(f"/conversations/{cid}/messages", headers=py.headers).json()["messages"]
    mine = [m for m in history if m["sender_id"] == browser_user.user_id]
    assert mine, history
    sender_key = next(k for k in keys if k["key_id"] == mine[0]["sender_key_id"])
    opened = open_envelope_detailed(
        envelope_fields(mine[0]),
        device=device,
        user_id=py.user_id,
        sender=PublicDeviceKey.from_b64(
            browser_user.user_id, sender_key["x25519_public"], sender_key["ed25519_public"]
        ),
    )
    body = opened.body
    assert body == {"type": "text", "text": "sealed in the browser", "sent_at": body["sent_at"]}
    assert (mine[0]["v"], opened.key_committing) == (2, True)  # the browser seals v2
    page.context.close()


def test_sign_in_with_ethereum_wallet(web: Web, accounts: Any) -> None:
    """An injected EIP-1193 wallet (signing in Python with eth_account) is linked in Settings and
    then logs the user in without a password."""
    from eth_account import Account as EthAccount
    from eth_account.messages import encode_defunct

    wallet = EthAccount.create()

    def personal_sign(hex_message: str) -> str:
        signature = EthAccount.sign_message(encode_defunct(hexstr=hex_message), wallet.key).signature.hex()
        return signature if signature.startswith("0x") else f"0x{signature}"

    user = accounts.create_active("web-eth", name=unique("Eth"))
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
