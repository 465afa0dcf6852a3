"""The browser harness of the web-client tests: Debian's Chromium driven by Playwright.

Every page records what a user would never want to see: console errors, uncaught page errors and
requests to any origin other than the gateway (and the ledger's public chain RPC, the one foreign
origin the CSP allows). ``Web.check()`` fails the test on any of them. Screenshots go to
``test-artifacts/web/`` at the repo root.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from devstack.browser import chromium_path
from devstack.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "web" / "dist"
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ANCHOR_TIMEOUT_MS = 45_000
# Chromium logs every HTTP error response as a console error; a test that provokes one on
# purpose says which statuses it expects (``web.allow_http_errors``), every other one fails.
_HTTP_ERROR = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")


#: the marks of every web test module: integration, e2e, 300 s, and ``web_guard`` (conftest: a
#: clean slate before each test; after it, no console error and no request to a foreign origin)
WEB_TEST_MARKS = [
    pytest.mark.integration,
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("web_guard"),
]


class CuttableProxy:
    """A loopback TCP proxy in front of the gateway that a test can cut and restore.

    A real outage, not an emulated one: ``cut()`` stops listening and aborts every open connection
    (the page's WebSocket and any request in flight), so connections are refused until
    ``restore()`` listens again on the same port. The browser's own network stack sees exactly what
    it would see if the server went away, on any Chromium version.

    Every socket the proxy opens is closed by the proxy, on its own loop, before ``close()`` returns:
    a socket left to the garbage collector is a ``ResourceWarning`` in whichever test runs next.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cuttable-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._thread.start()
        self.restore()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(client_w)  # tracked at once, so a cut during the upstream connect reaches it
        upstream_w: asyncio.StreamWriter | None = None
        try:
            upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            self._writers.add(upstream_w)
            if client_w.is_closing():  # cut while the upstream connection was being made
                return
            await asyncio.gather(self._pipe(client_r, upstream_w), self._pipe(upstream_r, client_w))
        except OSError:
            pass
        finally:
            for writer in (client_w, upstream_w):
                if writer is not None:
                    self._writers.discard(writer)
                    await _closed(writer)
            self._handlers.discard(task)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, as when the server goes away

    async def _shutdown(self) -> None:
        await self._cut()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    def restore(self) -> None:
        self._call(self._listen())

    def cut(self) -> None:
        self._call(self._cut())

    def close(self) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


async def _closed(writer: asyncio.StreamWriter) -> None:
    """Close ``writer`` and wait until its socket is released (a reset one may raise: it is closed)."""
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class Web:
    """One browser; each user gets a context of their own (separate storage, separate device)."""

    def __init__(self, browser: Browser, base_url: str, accounts: Any, rpc_url: str | None) -> None:
        self.browser = browser
        self.base = base_url
        self.accounts = accounts
        self.allowed_origins = {origin(base_url)} | ({origin(rpc_url)} if rpc_url else set())
        self.contexts: list[BrowserContext] = []
        self.reset()

    def reset(self) -> None:
        self.errors: list[str] = []
        self.failed: list[str] = []  # HTTP error responses, to explain console errors
        self.origins: set[str] = set()
        self.allowed_http: set[int] = set()
        self.allowed_console: list[re.Pattern[str]] = []

    def allow_http_errors(self, *statuses: int) -> None:
        self.allowed_http.update(statuses)

    def allow_console(self, pattern: str) -> None:
        self.allowed_console.append(re.compile(pattern))

    def _console(self, page: Page, text: str) -> None:
        status = _HTTP_ERROR.search(text)
        if status and int(status.group(1)) in self.allowed_http:
            return
        if any(p.search(text) for p in self.allowed_console):
            return
        self.errors.append(f"console error on {page.url}: {text}")

    def _record_origin(self, request: Any) -> None:
        if not request.url.startswith(("data:", "blob:")):
            self.origins.add(origin(request.url))

    def context(self, **options: Any) -> BrowserContext:
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = self.browser.new_context(accept_downloads=True, **options)
        context.on("request", self._record_origin)
        self.contexts.append(context)
        return context

    def close_contexts(self) -> None:
        """Close every context a test opened, failed tests included, so no page of one test (an
        outage it caused, a socket retrying) can report into the next test's checks."""
        contexts, self.contexts = self.contexts, []
        for context in contexts:
            try:
                context.close()
            except Exception:  # noqa: BLE001 - already closed with its browser, or by the test
                pass

    def allow_origin(self, url: str) -> None:
        """A test-only origin the pages may use (e.g. a ``CuttableProxy`` in front of the gateway)."""
        self.allowed_origins.add(origin(url))

    def page(self, context: BrowserContext | None = None, **options: Any) -> Page:
        page = (context or self.context(**options)).new_page()
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda exc: self.errors.append(f"page error on {page.url}: {exc}"))
        page.on("console", lambda msg: msg.type == "error" and self._console(page, msg.text))
        page.on(
            "response",
            lambda r: r.status >= 400 and self.failed.append(f"{r.status} {r.request.method} {r.url}"),
        )
        return page

    def check(self) -> None:
        """No console or page errors, no request to a foreign origin."""
        foreign = sorted(self.origins - self.allowed_origins)
        problems = self.errors + [f"request to a foreign origin: {o}" for o in foreign]
        if self.errors:
            problems += ["HTTP errors seen:", *self.failed]
        self.reset()
        assert not problems, "\n".join(problems)

    def login(
        self, page: Page, account: Any, *, totp_code: str | None = None, base: str | None = None
    ) -> None:
        page.goto(f"{base or self.base}/login")
        page.get_by_label("E-mail").fill(account.email)
        page.get_by_label("Password").fill(account.password)
        page.get_by_role("button", name="Log in", exact=True).click()
        if totp_code is not None:
            expect(page.get_by_label("Authentication code")).to_be_visible()
            page.get_by_label("Authentication code").fill(totp_code)
            page.get_by_role("button", name="Log in", exact=True).click()
        expect(page.get_by_label("Find people")).to_be_visible()
        expect(page.get_by_role("status", name="Connection: Live")).to_be_visible()

    def register_and_verify(self, page: Page, name: str, email: str, shot: str | None = None) -> str:
        """Register in the browser, open the mailed link in the browser; return the status text."""
        page.goto(f"{self.base}/register")
        page.get_by_label("Display name").fill(name)
        page.get_by_label("E-mail").fill(email)
        page.get_by_label("Password").fill(self.accounts.password)
        if shot:
            self.shot(page, shot)
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
        """Type and press Enter (the composer sends on Enter); wait for the server's ack."""
        page.get_by_label("Message", exact=True).fill(text)
        page.get_by_label("Message", exact=True).press("Enter")
        expect(page.locator("li.message.mine[data-message-id]", has_text=text)).to_be_visible()
        expect(page.locator("li.message.sending")).to_have_count(0)  # the server's ack came

    def shot(self, page: Page, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path))
        return path


def no_horizontal_overflow(page: Page) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width[0]} > {width[1]} px"


def unique(prefix: str) -> str:
    return f"{prefix} {os.urandom(3).hex()}"


def conversation_of(page: Page) -> str:
    match = re.search(r"/c/([^/?#]+)", page.url)
    assert match, page.url
    return match.group(1)


def guarded_test(web: Web) -> Iterator[None]:
    """Body of each web module's autouse fixture: a clean slate before the test; after it, every
    context the test opened is closed (even when it failed), then console errors, page errors and
    foreign requests fail the test."""
    web.reset()
    try:
        yield
    finally:
        web.close_contexts()
    web.check()


def web_harness(running_stack: Stack, accounts: Any) -> Iterator[Web]:
    """Body of the module-scoped ``web`` fixture of each web test module."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium: apt-get install chromium (or set CHROMIUM_PATH)")
    assert (DIST / "index.html").is_file(), "web/dist is missing: run `make web`"
    index = httpx.get(f"{running_stack.gateway_url}/", timeout=10)
    assert index.status_code == 200, "the gateway does not serve web/dist at /"
    assert 'id="app"' in index.text, "the gateway does not serve web/dist at /"
    rpc = (
        httpx.get(f"{running_stack.gateway_url}/api/v1/ledger/info", timeout=10).json().get("rpc_url_public")
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield Web(browser, running_stack.gateway_url, accounts, rpc)
        finally:
            browser.close()
