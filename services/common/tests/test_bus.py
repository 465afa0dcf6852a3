"""The typed bus against a real nats-server: replies, typed errors, bugs answered not timed out."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from chainchat_protocol.errors import InternalError, NotFound, Unavailable, ValidationFailed, error_from_wire
from chainchat_protocol.rpc import Rpc, RpcReply
from chainchat_service.bus import Bus
from devstack.components import NatsServer


class Ping(BaseModel):
    n: int


class Pong(BaseModel):
    n: int


PING = Rpc("test.ping.v1", Ping, Pong)
BROKEN = Rpc("test.broken.v1", Ping, Pong)
MISSING = Rpc("test.missing.v1", Ping, Pong)
NOBODY = Rpc("nobody.here.v1", Ping, Pong)


class Blob(BaseModel):
    data: str


HUGE = Rpc("test.huge.v1", Ping, Blob)


@pytest.fixture
async def bus(nats_server: NatsServer) -> Bus:
    bus = Bus(nats_server.client_url(), "test")
    await bus.connect()

    async def ping(req: Ping) -> Pong:
        return Pong(n=req.n + 1)

    async def broken(_: Ping) -> Pong:
        raise RuntimeError("secret internals must not leak")

    async def missing(req: Ping) -> Pong:
        raise NotFound(f"no thing {req.n}", code="thing_not_found")

    await bus.serve(PING, ping, queue="t")
    await bus.serve(BROKEN, broken, queue="t")

    async def huge(req: Ping) -> Blob:
        return Blob(data="x" * req.n)

    await bus.serve(MISSING, missing, queue="t")
    await bus.serve(HUGE, huge, queue="t")
    yield bus
    await bus.close()


async def test_typed_round_trip(bus: Bus) -> None:
    assert await bus.request(PING, Ping(n=41)) == Pong(n=42)


async def test_remote_error_keeps_code_and_status(bus: Bus) -> None:
    with pytest.raises(NotFound) as err:
        await bus.request(MISSING, Ping(n=7))
    assert err.value.code == "thing_not_found"
    assert err.value.http_status == 404
    assert err.value.message == "no thing 7"


async def test_a_bug_is_an_error_reply_not_a_timeout(bus: Bus) -> None:
    with pytest.raises(InternalError) as err:
        await bus.request(BROKEN, Ping(n=1), timeout=2)
    assert getattr(err.value, "code", None) == "internal_error"
    assert "secret internals" not in str(err.value)


async def test_invalid_request_is_a_validation_error(bus: Bus) -> None:
    msg = await bus.nc.request(PING.subject, b'{"n": "not a number"}', timeout=2)
    assert b"validation_error" in msg.data
    reply = RpcReply.model_validate_json(msg.data)
    assert reply.error is not None
    assert isinstance(
        error_from_wire(reply.error.code, reply.error.message, reply.error.status), ValidationFailed
    )


async def test_no_responders_is_unavailable(bus: Bus) -> None:
    with pytest.raises(Unavailable) as err:
        await bus.request(NOBODY, Ping(n=1), timeout=1)
    assert err.value.http_status == 503


async def test_slow_requests_do_not_queue_behind_each_other(nats_server: NatsServer) -> None:
    import asyncio
    import time

    bus = Bus(nats_server.client_url(), "slow")
    await bus.connect()
    slow = Rpc("test.slow.v1", Ping, Pong)

    async def handler(req: Ping) -> Pong:
        await asyncio.sleep(0.5)
        return Pong(n=req.n)

    await bus.serve(slow, handler, queue="s")
    try:
        started = time.monotonic()
        replies = await asyncio.gather(*(bus.request(slow, Ping(n=i), timeout=5) for i in range(8)))
        assert [r.n for r in replies] == list(range(8))
        assert time.monotonic() - started < 2.0  # eight 0.5 s requests side by side, not 4 s in a row
    finally:
        await bus.close()


async def test_a_reply_larger_than_max_payload_is_an_error_reply_not_a_timeout(bus: Bus) -> None:
    assert len((await bus.request(HUGE, Ping(n=1000))).data) == 1000
    with pytest.raises(Unavailable) as err:
        await bus.request(HUGE, Ping(n=bus.nc.max_payload + 1), timeout=3)
    assert err.value.code == "reply_too_large"


async def test_connect_logs_name_the_server_but_never_the_bus_password(nats_server: NatsServer) -> None:
    from structlog.testing import capture_logs

    url = nats_server.client_url()
    password = url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
    assert password, "the harness's bus is authenticated: its URL carries a password"
    bus = Bus(url, "log-check")
    with capture_logs() as logs:
        await bus.connect()
        await bus.close()
    connected = [e for e in logs if e["event"] == "nats_connected"]
    assert connected
    assert connected[0]["server"] == f"127.0.0.1:{nats_server.port}"
    assert password not in repr(logs)
