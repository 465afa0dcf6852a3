"""Typed events and the shared JetStream pull loop against a real nats-server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from nats.aio.msg import Msg
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError
from prometheus_client import REGISTRY
from pydantic import BaseModel
from structlog.testing import capture_logs

from chainchat_service.bus import Bus
from chainchat_service.jetstream import ACK, InvalidEvent, Received, Settle, Term
from chainchat_service.loops import Backoff
from devstack.components import NatsServer


class Ping(BaseModel):
    n: int


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Bus]:
    bus = Bus(nats_server.client_url(), "events-test")
    await bus.connect()
    yield bus
    await bus.close()


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def _subject() -> str:
    return f"test.events.{uuid.uuid4().hex}.v1"


# --- core NATS events ------------------------------------------------------------------------


async def _collecting(bus: Bus) -> tuple[str, list[Ping]]:
    """A fresh subject whose events land in the returned list."""
    got: list[Ping] = []

    async def handler(event: Ping) -> None:
        got.append(event)

    subject = _subject()
    await bus.subscribe(subject, Ping, handler)
    return subject, got


async def test_subscribe_hands_the_handler_a_validated_model(bus: Bus) -> None:
    subject, got = await _collecting(bus)
    await bus.publish(subject, Ping(n=7))
    await _until(lambda: bool(got))
    assert got == [Ping(n=7)]


def _handled(outcome: str) -> float:
    labels = {"event": "Ping", "outcome": outcome}
    return REGISTRY.get_sample_value("chainchat_events_handled_total", labels) or 0.0


async def test_a_bad_payload_is_logged_without_its_content_and_dropped(bus: Bus) -> None:
    subject, got = await _collecting(bus)
    ok_before, invalid_before = _handled("ok"), _handled("invalid")
    with capture_logs() as logs:
        await bus.nc.publish(subject, b'{"n": "secret-value"}')
        await bus.publish(subject, Ping(n=1))
        await _until(lambda: bool(got))
    assert got == [Ping(n=1)]
    assert (_handled("ok") - ok_before, _handled("invalid") - invalid_before) == (1, 1)
    invalid = [e for e in logs if e["event"] == "event_invalid"]
    assert len(invalid) == 1
    assert invalid[0]["event"] == "event_invalid"
    assert "secret-value" not in repr(logs)


async def test_a_failing_handler_does_not_end_the_subscription(bus: Bus) -> None:
    got: list[int] = []

    async def handler(event: Ping) -> None:
        if event.n == 0:
            raise RuntimeError("boom")
        got.append(event.n)

    subject = _subject()
    await bus.subscribe(subject, Ping, handler)
    with capture_logs() as logs:
        await bus.publish(subject, Ping(n=0))
        await bus.publish(subject, Ping(n=2))
        await _until(lambda: got == [2])
    assert any(e["event"] == "event_handler_failed" for e in logs)


async def test_a_queue_group_hears_each_event_once_and_others_hear_all(bus: Bus) -> None:
    grouped: list[int] = []
    everyone: list[int] = []

    async def group(event: Ping) -> None:
        grouped.append(event.n)

    async def all_of_them(event: Ping) -> None:
        everyone.append(event.n)

    subject = _subject()
    for _ in range(3):
        await bus.subscribe(subject, Ping, group, queue="g")
    await bus.subscribe(subject, Ping, all_of_them)
    for n in range(10):
        await bus.publish(subject, Ping(n=n))
    await _until(lambda: len(everyone) == 10 and len(grouped) == 10)
    await asyncio.sleep(0.1)
    assert sorted(grouped) == list(range(10))


async def test_subscribe_raw_gets_the_message_and_its_handle_unsubscribes(bus: Bus) -> None:
    got: list[tuple[str, bytes]] = []

    async def handler(msg: Msg) -> None:
        got.append((msg.subject, msg.data))

    subject = _subject()
    handle = await bus.subscribe_raw(subject, handler)
    await bus.nc.publish(subject, b"as it is")
    await _until(lambda: bool(got))
    await handle.unsubscribe()
    await bus.nc.publish(subject, b"not heard")
    await bus.nc.flush()
    await asyncio.sleep(0.1)
    assert got == [(subject, b"as it is")]


# --- JetStream consumers -----------------------------------------------------------------------


@pytest.fixture
async def stream(bus: Bus) -> AsyncIterator[tuple[str, str]]:
    name = f"TEST_{uuid.uuid4().hex[:8].upper()}"
    subject = f"test.{name.lower()}.*.v1"
    await bus.ensure_stream(StreamConfig(name=name, subjects=[subject]))
    yield name, subject
    await bus.js.delete_stream(name)


async def _publish(bus: Bus, subject: str, *bodies: bytes) -> None:
    for body in bodies:
        await bus.js.publish(subject, body)


async def _consumer_state(bus: Bus, stream: str, durable: str) -> tuple[int, int] | None:
    """(unacknowledged, undelivered) of the consumer; None until the loop has created it."""
    try:
        info = await bus.js.consumer_info(stream, durable)
    except NotFoundError:
        return None
    return info.num_ack_pending, info.num_pending


async def test_consume_acks_handled_events_naks_failures_and_terms_bad_payloads(
    bus: Bus, stream: tuple[str, str]
) -> None:
    name, pattern = stream
    subject = pattern.replace("*", "ping")
    seen: list[int] = []
    failed_once: set[int] = set()

    async def handler(event: Ping) -> None:
        if event.n == 2 and 2 not in failed_once:
            failed_once.add(2)
            raise RuntimeError("busy")
        seen.append(event.n)

    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(
            bus.consume(
                name, "d1", Ping, handler, subject=pattern, nak_delay=0.1, fetch_timeout=0.2, stop=stop
            )
        )
        await _publish(bus, subject, b'{"n": 1}', b'{"n": 2}', b"{not json", b'{"n": 3}')
        await _until(lambda: sorted(seen) == [1, 2, 3])
        await _until_async(lambda: _consumer_state(bus, name, "d1"), (0, 0))
        stop.set()
        await asyncio.wait_for(task, 5)
    assert seen.count(2) == 1  # redelivered after the nak, handled once
    assert [e["event"] for e in logs].count("stream_event_invalid") == 1
    await asyncio.sleep(0.3)  # a terminated message is not redelivered
    assert await _consumer_state(bus, name, "d1") == (0, 0)


async def _until_async(probe: Callable[[], object], want: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = await probe()  # type: ignore[misc]
        if got == want:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{got} != {want}"
        await asyncio.sleep(0.05)


async def test_consume_batches_hands_whole_batches_in_stream_order_and_settles_each(
    bus: Bus, stream: tuple[str, str]
) -> None:
    name, pattern = stream
    subject = pattern.replace("*", "ping")
    batches: list[list[int | None]] = []

    def decode(msg: Msg) -> Ping:
        if msg.data == b"reject me":
            raise InvalidEvent("not a ping")
        return Ping.model_validate_json(msg.data)

    async def handler(received: list[Received[Ping]]) -> list[Settle]:
        batches.append([r.event.n if r.event else None for r in received])
        return [ACK if r.event is not None and r.event.n % 5 else Term(r.invalid or "five") for r in received]

    await _publish(bus, subject, *(f'{{"n": {n}}}'.encode() for n in range(1, 21)), b"reject me")
    stop = asyncio.Event()
    task = asyncio.create_task(
        bus.consume_batches(
            name, "d2", decode, handler, subject=pattern, batch=50, linger_s=0.3, fetch_timeout=1.0, stop=stop
        )  # fmt: skip
    )
    await _until_async(lambda: _consumer_state(bus, name, "d2"), (0, 0))
    stop.set()
    await asyncio.wait_for(task, 5)
    flat = [n for b in batches for n in b]
    assert flat == [*range(1, 21), None]  # in stream order, each once
    assert len(batches) <= 2  # the linger collects the backlog in one or two handler calls


async def test_a_failing_batch_handler_gets_the_batch_back_and_the_loop_goes_on(
    bus: Bus, stream: tuple[str, str]
) -> None:
    name, pattern = stream
    subject = pattern.replace("*", "ping")
    calls = 0
    committed: list[int] = []

    async def handler(received: list[Received[Ping]]) -> list[Settle]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database locked")
        committed.extend(r.event.n for r in received if r.event is not None)
        return [ACK for _ in received]

    await _publish(bus, subject, b'{"n": 1}', b'{"n": 2}')
    stop = asyncio.Event()
    task = asyncio.create_task(
        bus.consume_batches(
            name,
            "d3",
            Ping,
            handler,
            subject=pattern,
            nak_delay=0.1,
            fetch_timeout=0.3,
            backoff=Backoff(0.05, 0.1),
            stop=stop,
        )  # fmt: skip
    )
    await _until(lambda: sorted(committed) == [1, 2])
    stop.set()
    await asyncio.wait_for(task, 5)
    assert calls >= 2


async def test_an_inactive_consumer_fetches_nothing_until_it_is_active(
    bus: Bus, stream: tuple[str, str]
) -> None:
    name, pattern = stream
    subject = pattern.replace("*", "ping")
    active = False
    seen: list[int] = []

    async def handler(event: Ping) -> None:
        seen.append(event.n)

    stop = asyncio.Event()
    task = asyncio.create_task(
        bus.consume(
            name, "d4", Ping, handler, subject=pattern, fetch_timeout=0.2, active=lambda: active, stop=stop
        )
    )
    await _publish(bus, subject, b'{"n": 1}')
    await asyncio.sleep(0.6)
    assert seen == []
    active = True
    await _until(lambda: seen == [1])
    stop.set()
    await asyncio.wait_for(task, 5)
