"""The gateway spreads transfers over every files instance and skips one it cannot reach."""

from __future__ import annotations

import httpx
import pytest

from chainchat_gateway.routes.files import FilesProxy
from chainchat_gateway.settings import GatewaySettings

UP, ALSO_UP, DOWN = "http://127.0.0.1:9101", "http://127.0.0.1:9102", "http://127.0.0.1:9103"


def _proxy(urls: str, seen: list[str]) -> FilesProxy:
    def handle(request: httpx.Request) -> httpx.Response:
        origin = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        seen.append(origin)
        if origin == DOWN:
            raise httpx.ConnectError("connection refused", request=request)
        assert request.headers["Host"] == f"{request.url.host}:{request.url.port}"
        return httpx.Response(200, json={"served_by": origin, "path": request.url.path})

    settings = GatewaySettings(_env_file=None)  # type: ignore[call-arg]
    return FilesProxy(urls, settings, transport=httpx.MockTransport(handle))


async def test_requests_take_turns_over_the_instances() -> None:
    seen: list[str] = []
    proxy = _proxy(f"{UP}, {ALSO_UP}", seen)
    served = [(await proxy.http.get("/internal/files/x")).json()["served_by"] for _ in range(4)]
    assert served == [UP, ALSO_UP, UP, ALSO_UP]
    assert (await proxy.http.get("/internal/files/x")).json()["path"] == "/internal/files/x"
    await proxy.http.aclose()


async def test_an_unreachable_instance_is_skipped() -> None:
    seen: list[str] = []
    proxy = _proxy(f"{DOWN},{UP}", seen)
    for _ in range(3):
        assert (await proxy.http.get("/internal/files/x")).json()["served_by"] == UP
    assert seen.count(DOWN) == 2  # tried in its turn, then the next instance served
    await proxy.http.aclose()


async def test_every_instance_down_is_a_connect_error() -> None:
    proxy = _proxy(DOWN, [])
    with pytest.raises(httpx.ConnectError):
        await proxy.http.get("/internal/files/x")
    await proxy.http.aclose()
