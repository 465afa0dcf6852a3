"""Chat benchmark on a real local stack (NATS, chain, IPFS, SMTP catcher, the five services).

N WebSocket clients in pairs send SDK-sealed envelopes through the gateway (one direct
conversation per pair); each send is timed from the ``send`` frame to the ``message`` frame at the
peer. Phases: open-loop 100 and 500 msg/s, then closed-loop max (8 sends in flight per sender),
with 1 and then 2 chat instances. Then history reads of 50 messages from one large conversation
whose rows are inserted directly into the chat database (the log entries of those rows are not
generated: setup only).

Run: ``.venv/bin/python bench/chat_bench.py [--quick] [--postgres]``; results in
``bench/results/<date>/chat_bench.{json,png}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
from _accounts import signup
from _procstat import CpuMeter, Profiler, python_pids
from _report import RESULTS, plt, time_left, write_report

from chainchat.crypto import DeviceKeys, seal_envelope
from chainchat_protocol.envelope import envelope_bytes, envelope_digest
from devstack.process import LaunchError
from devstack.stack import Stack, free_ports

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CLOSED_LOOP_SEAL_RATE = 2000  # envelopes sealed per second of a closed-loop phase (must not run out)
BODY = {"type": "text", "text": "x" * 200, "sent_at": "2025-01-01T00:00:00.000Z"}


@dataclass
class Phase:
    name: str
    chat_instances: int
    target_rate: float | None
    sent: int = 0
    acked: int = 0
    errors: int = 0
    error_codes: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)
    refusal_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_s: dict[str, float] = field(default_factory=dict)

    def count(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "ack":
            self.acked += 1
        else:
            self.errors += 1
            self.error_codes[frame["code"]] = self.error_codes.get(frame["code"], 0) + 1

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        services = sum(v for k, v in self.cpu_s.items() if k not in _NOT_SERVICES)
        return {
            "phase": self.name,
            "chat_instances": self.chat_instances,
            "target_msgs_per_s": self.target_rate,
            "sent": self.sent,
            "acked": self.acked,
            "delivered": len(lat),
            "errors": self.errors,
            "error_codes": self.error_codes,
            "delivered_per_s": round(len(lat) / self.seconds, 1) if self.seconds else 0.0,
            "latency_ms": _percentiles(lat),
            "ack_latency_ms": _percentiles(sorted(self.ack_ms)),
            "refusal_latency_ms": _percentiles(sorted(self.refusal_ms)),
            # CPU of the service processes (and NATS) during the phase: robust on a shared machine
            "cpu_seconds": self.cpu_s,
            "service_cpu_ms_per_msg": round(1000 * services / len(lat), 3) if lat else None,
            "msgs_per_service_cpu_s": round(len(lat) / services, 1) if services else None,
        }


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return {
        "p50": round(pick(0.50), 2),
        "p95": round(pick(0.95), 2),
        "p99": round(pick(0.99), 2),
        "max": round(values[-1], 2),
    }


class Client:
    """One WebSocket client; records when each envelope (keyed by its nonce) arrives."""

    def __init__(self, user: dict[str, Any]) -> None:
        self.user = user
        self.ws: Any = None
        self.url = ""
        self.arrivals: dict[str, float] = {}
        self.acks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.answered: dict[str, tuple[float, str]] = {}  # client_id → when its ack/error arrived
        self.acked_ids: set[str] = set()
        self.server_closes: dict[str, int] = {}  # close code → times the server dropped us
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self, ws_url: str) -> None:
        self.url = ws_url
        await self._open()
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._keepalive())]

    async def _open(self) -> None:
        subprotocols = ["chainchat.v1", f"bearer.{self.user['token']}"]
        self.ws = await websockets.connect(self.url, subprotocols=subprotocols, max_size=2**22)
        assert json.loads(await self.ws.recv())["type"] == "ready"

    async def _read(self) -> None:
        while True:
            try:
                async for raw in self.ws:
                    frame = json.loads(raw)
                    if frame["type"] == "message":
                        self.arrivals[frame["message"]["nonce"]] = time.perf_counter()
                    elif frame["type"] in ("ack", "error"):
                        if frame.get("client_id"):
                            self.answered[frame["client_id"]] = (time.perf_counter(), frame["type"])
                        if frame["type"] == "ack":
                            self.acked_ids.add(frame["message_id"])
                        self.acks.put_nowait(frame)
            except websockets.ConnectionClosed:
                pass
            code = str(self.ws.close_code)
            self.server_closes[code] = self.server_closes.get(code, 0) + 1
            await self._open()  # a real client reconnects (and would catch up with after_seq)

    async def _keepalive(self) -> None:
        while True:  # the hub closes sockets silent for 60 s: clients ping, as the web client does
            await asyncio.sleep(20)
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.ws.send('{"type": "ping"}')

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await self.ws.close()


@dataclass
class Pair:
    sender: Client
    receiver: Client
    conversation_id: str
    envelopes: list[dict[str, Any]] = field(default_factory=list)
    sent_at: dict[str, float] = field(default_factory=dict)
    sent_cid: dict[str, float] = field(default_factory=dict)

    def seal(self, count: int) -> None:
        s, r = self.sender.user, self.receiver.user
        recipients = [s["device"].public(s["id"]), r["device"].public(r["id"])]
        self.envelopes = [
            seal_envelope(
                BODY,
                sender=s["device"],
                sender_id=s["id"],
                conversation_id=self.conversation_id,
                recipients=recipients,
            ).model_dump(mode="json")
            for _ in range(count)
        ]

    async def send_one(self) -> bool:
        if not self.envelopes:
            return False
        env = self.envelopes.pop()
        client_id = uuid.uuid4().hex
        self.sent_at[env["nonce"]] = self.sent_cid[client_id] = time.perf_counter()
        frame = {
            "type": "send",
            "conversation_id": self.conversation_id,
            "envelope": env,
            "client_id": client_id,
        }
        await self.sender.ws.send(json.dumps(frame))
        return True


async def run_phase(pairs: list[Pair], phase: Phase, duration: float, probe: Probe | None = None) -> Phase:
    # sealing is done before the clock starts: the bench measures the server, not HPKE
    per_pair = int((phase.target_rate or CLOSED_LOOP_SEAL_RATE) * duration / len(pairs) * 1.2) + 10
    await asyncio.gather(*(asyncio.to_thread(p.seal, per_pair) for p in pairs))
    for p in pairs:
        p.sent_at.clear()
        p.sent_cid.clear()
        p.receiver.arrivals.clear()
        p.sender.answered.clear()
    if probe is not None:
        probe.start(phase, duration)
    started = time.perf_counter()
    if phase.target_rate:
        await _open_loop(pairs, phase, duration)
    else:
        await asyncio.gather(*(_closed_loop(p, phase, started + duration) for p in pairs))
    phase.seconds = time.perf_counter() - started
    await _drain(pairs, phase)
    if probe is not None:
        phase.cpu_s = probe.stop()
    last = started
    for p in pairs:
        for nonce, t_sent in p.sent_at.items():
            if nonce in p.receiver.arrivals:
                phase.latencies_ms.append((p.receiver.arrivals[nonce] - t_sent) * 1000)
                last = max(last, p.receiver.arrivals[nonce])
        for client_id, t_sent in p.sent_cid.items():
            if client_id in p.sender.answered:
                t_answer, kind = p.sender.answered[client_id]
                (phase.ack_ms if kind == "ack" else phase.refusal_ms).append((t_answer - t_sent) * 1000)
    # throughput over the time it took to deliver, backlog included, not just the sending window
    phase.seconds = max(phase.seconds, last - started)
    return phase


async def run_overload(
    pairs: list[Pair], gateway: str, rate: float, duration: float, probe: Probe | None = None
) -> dict[str, Any]:
    """``rate`` (above capacity) for ``duration``, then at once a light 50/s for a few seconds:
    how fast refusals come, what latency the accepted sends see, whether anything acknowledged is
    missing from the history, and how soon after the burst latency is back under 50 ms."""
    recovery_rate, recovery_s = min(50.0, rate / 8), 5.0  # light: a quarter of the capacity at most
    per_pair = int((rate * duration + recovery_rate * recovery_s) / len(pairs) * 1.2) + 10
    await asyncio.gather(*(asyncio.to_thread(p.seal, per_pair) for p in pairs))
    for p in pairs:
        p.sent_at.clear()
        p.sent_cid.clear()
        p.receiver.arrivals.clear()
        p.sender.answered.clear()
        p.sender.acked_ids.clear()
    over = Phase(f"overload {int(rate)}/s", 1, rate)
    after = Phase(f"after overload {recovery_rate:g}/s", 1, recovery_rate)
    if probe is not None:
        probe.start(over, duration)
    started = time.perf_counter()
    await _open_loop(pairs, over, duration)
    ended = time.perf_counter()
    await _open_loop(pairs, after, recovery_s)
    both = Phase("both", 1, None, sent=over.sent + after.sent)
    await _drain(pairs, both)
    if probe is not None:
        over.cpu_s = probe.stop()
    windows: dict[int, list[float]] = {}
    for p in pairs:
        for client_id, t_sent in p.sent_cid.items():
            if client_id in p.sender.answered:
                t_answer, kind = p.sender.answered[client_id]
                phase = over if t_sent < ended else after
                (phase.ack_ms if kind == "ack" else phase.refusal_ms).append((t_answer - t_sent) * 1000)
        for nonce, t_sent in p.sent_at.items():
            if nonce in p.receiver.arrivals:
                latency = (p.receiver.arrivals[nonce] - t_sent) * 1000
                (over if t_sent < ended else after).latencies_ms.append(latency)
                if t_sent >= ended:
                    windows.setdefault(int((t_sent - ended) / 0.5), []).append(latency)
    over.seconds, after.seconds = ended - started, recovery_s
    p99s = {w: _percentiles(sorted(v))["p99"] for w, v in sorted(windows.items())}
    late = [w for w, p99 in p99s.items() if p99 >= 50]
    return {
        "overload": over.summary() | {"acked": len(over.ack_ms), "errors": len(over.refusal_ms)},
        "after": after.summary() | {"acked": len(after.ack_ms), "errors": len(after.refusal_ms)},
        "after_p99_ms_by_half_second": {f"{w / 2:.1f}s": v for w, v in p99s.items()},
        # seconds after the burst from which every half-second window has p99 < 50 ms
        "recovered_after_s": (max(late) + 1) / 2 if late else 0.0,
        "acknowledged_missing_from_history": await _missing_acked(pairs, gateway),
    }


async def _missing_acked(pairs: list[Pair], gateway: str) -> int:
    """Acknowledged message ids that the history does not hold (must be 0)."""
    missing = 0
    async with httpx.AsyncClient(base_url=f"{gateway}/api/v1", timeout=30) as http:
        for p in pairs:
            headers = {"Authorization": f"Bearer {p.sender.user['token']}"}
            stored: set[str] = set()
            after_seq = 0
            while True:
                resp = await http.get(
                    f"/conversations/{p.conversation_id}/messages",
                    params={"after_seq": after_seq, "limit": 200},
                    headers=headers,
                )
                page = resp.json()["messages"]
                if not page:
                    break
                stored |= {m["message_id"] for m in page}
                after_seq = page[-1]["seq"]
            missing += len(p.sender.acked_ids - stored)
    return missing


_COMPONENTS = ("nats", "chain", "ipfs", "maildev")
# CPU measured beside the services: NATS, and this process (the 50 clients share the 2 cores)
BENCH_CLIENT = "bench_client"
_NOT_SERVICES = ("nats", BENCH_CLIENT)


class Probe:
    """CPU seconds of every service process (and NATS) per phase; py-spy flame graphs on request."""

    def __init__(self, stack: Stack, profile_dir: Path | None) -> None:
        self.stack = stack
        self.profile_dir = profile_dir
        self._meter: CpuMeter | None = None
        self._profiler: Profiler | None = None

    def processes(self) -> dict[str, int]:
        named = [(name, p.pid if p and p.alive() else None) for name, p in self.stack.processes()]
        return python_pids(named)

    def start(self, phase: Phase, duration: float) -> None:
        procs = self.processes()
        self._meter = CpuMeter(procs | {BENCH_CLIENT: os.getpid()})
        self._meter.start()
        if self.profile_dir is not None:
            label = f"{phase.name.replace('/', 'per').replace(' ', '-')}-x{phase.chat_instances}"
            services = {n: pid for n, pid in procs.items() if n not in _COMPONENTS}
            self._profiler = Profiler(self.profile_dir, services, label)
            self._profiler.start(duration)

    def stop(self) -> dict[str, float]:
        assert self._meter is not None
        used = self._meter.stop()
        if self._profiler is not None:
            for path in self._profiler.wait():
                print(f"flame graph {path}", flush=True)
        return {n: v for n, v in used.items() if n not in _COMPONENTS[1:]}


async def _drain(pairs: list[Pair], phase: Phase, timeout: float = 30.0) -> None:
    """Wait for every send's answer (and a moment for the deliveries), so phases do not overlap."""
    deadline = time.perf_counter() + timeout
    while phase.acked + phase.errors < phase.sent and time.perf_counter() < deadline:
        for p in pairs:
            while not p.sender.acks.empty():
                phase.count(p.sender.acks.get_nowait())
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)


async def _settle(stack: Stack, timeout: float = 90.0) -> None:
    """Let the chat outboxes (log entries for the ledger) empty, so phases do not overlap."""
    deadline = time.perf_counter() + timeout
    async with httpx.AsyncClient(timeout=5) as http:
        while time.perf_counter() < deadline:
            backlog = 0.0
            for svc in (s for s in stack.services["chat"] if s.alive()):
                for line in (await http.get(f"{svc.url}/metrics")).text.splitlines():
                    if line.startswith("chainchat_outbox_backlog{"):
                        backlog += float(line.rsplit(" ", 1)[1])
            if backlog == 0:
                return
            await asyncio.sleep(0.5)


async def _open_loop(pairs: list[Pair], phase: Phase, duration: float) -> None:
    interval = 1.0 / (phase.target_rate or 1)
    start = time.perf_counter()
    n = 0
    while (now := time.perf_counter()) - start < duration:
        due = int((now - start) / interval) + 1
        while n < due:
            if await pairs[n % len(pairs)].send_one():
                phase.sent += 1
            n += 1
        await asyncio.sleep(interval / 2)


async def _closed_loop(pair: Pair, phase: Phase, deadline: float, window: int = 2) -> None:
    """As fast as answers come: ``window`` sends in flight per sender (the gateway handles one per
    connection at a time; one more queued keeps it busy without queueing for long), and a refused
    send waits its ``retry_after`` before the next, as a well-behaved client would."""
    in_flight = 0
    while time.perf_counter() < deadline:
        while in_flight < window and await pair.send_one():
            in_flight += 1
            phase.sent += 1
        if in_flight == 0:
            return  # out of sealed envelopes
        answer = await pair.sender.acks.get()
        phase.count(answer)
        in_flight -= 1
        if answer.get("retry_after"):  # refused: a client waits as told before sending more
            await asyncio.sleep(float(answer["retry_after"]))


async def history_reads(
    gateway: str, user: dict[str, Any], cid: str, size: int, reads: int
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {user['token']}"}
    timings: dict[str, list[float]] = {"latest": [], "after_seq_random": [], "before_seq_random": []}
    async with httpx.AsyncClient(base_url=f"{gateway}/api/v1", headers=headers, timeout=30) as http:
        for i in range(reads):
            kind = list(timings)[i % 3]
            params: dict[str, int] = {"limit": 50}
            if kind == "after_seq_random":
                params["after_seq"] = random.randint(0, size - 50)
            elif kind == "before_seq_random":
                params["before_seq"] = random.randint(51, size)
            t0 = time.perf_counter()
            resp = await http.get(f"/conversations/{cid}/messages", params=params)
            timings[kind].append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, resp.text[:200]
            assert len(resp.json()["messages"]) == 50
    return {k: _percentiles(sorted(v)) | {"mean": round(statistics.mean(v), 2)} for k, v in timings.items()}


async def bench_stack(stack: Stack, args: argparse.Namespace) -> dict[str, Any]:
    gateways = stack.gateway_urls
    users = await asyncio.to_thread(make_users, stack, 2 * args.pairs)
    clients = [Client(u) for u in users]
    for i, c in enumerate(clients):  # each pair's two ends on different gateways when there are two
        await c.connect(gateways[i % len(gateways)].replace("http://", "ws://") + "/api/v1/ws")
    pairs = []
    async with httpx.AsyncClient(base_url=f"{stack.gateway_url}/api/v1", timeout=30) as http:
        for a, b in zip(clients[::2], clients[1::2], strict=True):
            resp = await http.post(
                "/conversations",
                json={"member_ids": [b.user["id"]]},
                headers={"Authorization": f"Bearer {a.user['token']}"},
            )
            pairs.append(Pair(a, b, resp.json()["conversation_id"]))
    phases: list[dict[str, Any]] = []
    skipped: list[str] = []
    probe = Probe(stack, args.profile)
    for instances in args.instances:
        for rate in args.rates:
            name = f"{int(rate)}/s" if rate else "max"
            # a phase is its duration plus draining and settling (up to a minute on a busy machine)
            if time_left() < args.duration + 60:
                skipped.append(f"{name} ×{instances}")
                continue
            while len([s for s in stack.services["chat"] if s.alive()]) < instances:
                await asyncio.to_thread(stack.add_service, "chat")
            phase = await run_phase(pairs, Phase(name, instances, rate), args.duration, probe)
            await _settle(stack)
            phases.append(phase.summary())
            print(json.dumps(phases[-1]), flush=True)
    overload = None
    capacity = max((p["delivered_per_s"] for p in phases if p["target_msgs_per_s"] is None), default=0.0)
    if args.overload and capacity and time_left() > args.duration + 60:
        overload = await run_overload(pairs, stack.gateway_url, 2 * capacity, args.duration, probe)
        overload["capacity_msgs_per_s"] = capacity
        await _settle(stack)
        print(json.dumps(overload), flush=True)
    closes: dict[str, int] = {}
    for c in clients:
        await c.close()
        for code, n in c.server_closes.items():
            closes[code] = closes.get(code, 0) + n
    result: dict[str, Any] = {
        "phases": phases,
        "overload": overload,
        "server_closed_sockets": closes,
        "history": None,
    }
    # filling a million rows takes 20 s on an idle machine and minutes on a busy one
    size = args.history_size if time_left() > 200 else min(args.history_size, 100_000)
    if args.history_size and time_left() > 45:
        cid = await asyncio.to_thread(fill_conversation, stack, users[0], users[1], size, args.pg_url)
        history = await history_reads(stack.gateway_url, users[0], cid, size, args.reads)
        print(json.dumps({"history": history}), flush=True)
        result["history"] = {"conversation_messages": size, "reads": history}
    else:
        skipped.append("history reads")
    return result | {"skipped_for_time": skipped}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run (about two minutes)")
    parser.add_argument("--postgres", action="store_true", help="chat on a fresh local PostgreSQL database")
    parser.add_argument("--rates", help="offered msg/s per phase, comma-separated, 0 = closed loop")
    parser.add_argument("--instances", help="chat instances per round, e.g. 1,2 (default 1)")
    parser.add_argument("--gateways", type=int, default=1, help="gateway instances (clients alternate)")
    parser.add_argument("--duration", type=float, help="seconds per phase")
    parser.add_argument("--pairs", type=int, help="sender/receiver pairs (one conversation each)")
    parser.add_argument("--history-size", type=int, help="messages of the history conversation (0: skip)")
    parser.add_argument(
        "--no-overload",
        dest="overload",
        action="store_false",
        help="skip the burst at twice the closed-loop rate",
    )
    parser.add_argument("--profile", type=Path, help="record py-spy flame graphs of every service here")
    args = parser.parse_args()
    pairs, duration = (8, 3.0) if args.quick else (25, 10.0)
    args.pairs = args.pairs or pairs
    args.duration = args.duration or duration
    if args.history_size is None:
        args.history_size = 100_000 if args.quick else 1_000_000
    args.reads = 60 if args.quick else 300
    args.rates = [float(r) or None for r in (args.rates or "100,500,0").split(",")]
    # one of each by default; the scale-out (two chat, two gateways) is its own run on PostgreSQL
    args.instances = [int(n) for n in (args.instances or "1").split(",")]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="chat-bench-") as tmp, pg_database(args.postgres) as pg_url:
        env = {"ANCHOR_INTERVAL_S": "2", "LOG_LEVEL": "WARNING"}
        args.pg_url = pg_url
        if pg_url:
            os.environ["CHAT_DATABASE_URL"] = pg_url
        scale = {"gateway": args.gateways} if args.gateways > 1 else {}
        stack = start_stack(Path(tmp), env, scale)
        try:
            data = asyncio.run(bench_stack(stack, args))
        finally:
            stack.stop()
    # the machine may be shared: the load average says how noisy the numbers are
    data.update(load_average_before=load_before, load_average_after=os.getloadavg())
    data.update(
        quick=args.quick,
        database="postgresql" if args.postgres else "sqlite",
        pairs=args.pairs,
        clients=2 * args.pairs,
        phase_seconds=args.duration,
        gateways=args.gateways,
        cpus=os.cpu_count(),
    )
    # the two-of-each scale-out run is its own result beside the one-of-each runs
    name = "chat_bench" + ("_postgres" if args.postgres else "") + ("_x2" if args.gateways > 1 else "")
    print(f"wrote {write_report(name, data)}")
    plot(name, data)


# --- setup: users, a large conversation, an optional PostgreSQL database ------------------------


def start_stack(var_dir: Path, env: dict[str, str], scale: dict[str, int], attempts: int = 3) -> Stack:
    """The stack, ready; on a crowded machine a service may miss its start-up deadline: try again."""
    for attempt in range(1, attempts + 1):
        where = var_dir / f"try{attempt}"
        stack = Stack(var_dir=where, ports=free_ports(), environment="test", extra_env=env, scale=scale)
        try:
            stack.start()
            stack.wait_ready(timeout=120)
            return stack
        except LaunchError as exc:
            stack.stop()
            if attempt == attempts:
                raise
            print(f"stack start failed ({exc}); trying again", flush=True)
    raise AssertionError("unreachable")


def make_users(stack: Stack, count: int) -> list[dict[str, Any]]:
    """Register → verify (mail) → approve → login → publish a device key, as a user would."""
    http = httpx.Client(base_url=f"{stack.gateway_url}/api/v1", timeout=30)
    admin = signup(http, stack, "bench-admin", None)
    users = [signup(http, stack, f"bench-{n}", admin) for n in range(count)]
    for user in [admin, *users]:
        user["device"] = DeviceKeys.generate()
        body = user["device"].publish_body(["hpke-x25519-aes256gcm"])
        resp = http.put("/keys/me", json=body, headers={"Authorization": f"Bearer {user['token']}"})
        resp.raise_for_status()
    return users


def fill_conversation(
    stack: Stack, a: dict[str, Any], b: dict[str, Any], size: int, pg_url: str | None
) -> str:
    """A group of a and b holding ``size`` messages, inserted straight into the chat database."""
    headers = {"Authorization": f"Bearer {a['token']}"}
    resp = httpx.post(
        f"{stack.gateway_url}/api/v1/conversations",
        headers=headers,
        timeout=30,
        json={"member_ids": [b["id"]], "title": "history"},
    )
    cid = resp.json()["conversation_id"]
    env = seal_envelope(
        BODY,
        sender=a["device"],
        sender_id=a["id"],
        conversation_id=cid,
        recipients=[a["device"].public(a["id"]), b["device"].public(b["id"])],
    )
    text = envelope_bytes(env).decode()
    digest = envelope_digest(env)
    now = datetime.now(UTC)
    rows = ((uuid.uuid4().hex, cid, seq, a["id"], text, digest, "[]", now) for seq in range(1, size + 1))
    started = time.perf_counter()
    if pg_url:
        asyncio.run(_fill_pg(pg_url, cid, rows, size))
    else:
        _fill_sqlite(stack.var_dir / "chat.db", cid, rows, size)
    print(f"inserted {size:,} messages in {time.perf_counter() - started:.1f}s", flush=True)
    return str(cid)


_INSERT = "INSERT INTO message (id, conversation_id, seq, sender_id, envelope, digest, file_ids, created_at)"


def _fill_sqlite(path: Path, cid: str, rows: Any, size: int) -> None:
    db = sqlite3.connect(path, timeout=60)
    with db:
        db.executemany(
            f"{_INSERT} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ((*r[:7], r[7].strftime("%Y-%m-%d %H:%M:%S.%f")) for r in rows),
        )
        db.execute("UPDATE conversation SET last_seq = ? WHERE id = ?", (size, cid))
    db.close()


async def _fill_pg(url: str, cid: str, rows: Any, size: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    columns = ["id", "conversation_id", "seq", "sender_id", "envelope", "digest", "file_ids", "created_at"]
    await conn.copy_records_to_table("message", records=list(rows), columns=columns)
    await conn.execute("UPDATE conversation SET last_seq = $1 WHERE id = $2", size, cid)
    await conn.close()


@contextlib.contextmanager
def pg_database(enabled: bool) -> Iterator[str | None]:
    """A fresh PostgreSQL database for the chat service, dropped afterwards."""
    if not enabled:
        yield None
        return
    import asyncpg

    name = f"chat_bench_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_URL)
        await conn.execute(sql)
        await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def plot(name: str, data: dict[str, Any]) -> None:
    """Throughput and latency per phase, history read latency: ``results/<date>/<name>.png``."""
    phases = data["phases"]
    labels = [f"{p['phase']} ×{p['chat_instances']}" for p in phases]
    fig, axes = plt.subplots(3, 1, figsize=(9, 10))
    axes[0].barh(labels, [p["delivered_per_s"] for p in phases], color="#3b7dd8")
    axes[0].set_title(
        f"delivered msg/s ({data['clients']} WebSocket clients, {data['database']})", fontsize=10
    )
    for key, colour in (("p50", "#3b7dd8"), ("p95", "#f0a030"), ("p99", "#d04040")):
        axes[1].plot(labels, [p["latency_ms"][key] for p in phases], marker="o", label=key, color=colour)
    axes[1].set_title("send → delivery latency (ms, log scale; 500/s is past saturation)", fontsize=10)
    axes[1].set_yscale("log")
    axes[1].legend()
    axes[1].tick_params(axis="x", labelrotation=20)
    if not data["history"]:
        axes[2].set_title("history reads: skipped (no time left)", fontsize=10)
        fig.tight_layout()
        fig.savefig(RESULTS / f"{name}.png", dpi=110)
        plt.close(fig)
        return
    reads = data["history"]["reads"]
    axes[2].barh([f"{k} p50/p95" for k in reads], [v["p50"] for v in reads.values()], color="#3b7dd8")
    axes[2].barh(
        [f"{k} p50/p95" for k in reads],
        [v["p95"] - v["p50"] for v in reads.values()],
        left=[v["p50"] for v in reads.values()],
        color="#f0a030",
    )
    size = data["history"]["conversation_messages"]
    axes[2].set_title(f"history read of 50 from a {size:,}-message conversation (ms)", fontsize=10)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{name}.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
