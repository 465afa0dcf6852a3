"""Ledger benchmark on real components (NATS JetStream, Ganache, one ledger service process):

* end to end at offered rates (JetStream publish -> appended -> anchored event): throughput,
  anchoring latency p50/p99, anchor transactions and gas per 1,000 entries, CPU per entry; each
  rate with one entry per stream message (older producers) and with entries batched per message
  the way the outbox relay sends them;
* sustained persisted append rate: a backlog published while the ledger is stopped, drained;
* a large tree (prefilled through the ledger's own log code): restart load time, one catch-up
  anchor, proof latency over the NATS API (``ledger.proof.get.v1``).

The original design's per-message transactions against ChainChat's anchors, for the same workload
end to end, are in ``original_design_bench.py``.

Run: ``.venv/bin/python bench/ledger_bench.py [--quick]`` (writes results/<date>/ledger_bench.json/.png).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import os
import random
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from _procstat import CpuMeter, Profiler
from _report import bar_panels, write_report

from chainchat_ledger.app import MIGRATIONS
from chainchat_ledger.log import TransparencyLog
from chainchat_protocol.ledger import LEDGER_PROOF_GET, EntryRef, LedgerAnchored
from chainchat_protocol.log_entry import LogEntry
from chainchat_protocol.subjects import Subject
from chainchat_service.bus import Bus
from chainchat_service.db import Database
from chainchat_service.outbox import Outgoing, coalesce, log_entry_row
from chainchat_testing.ledger import (
    IsolatedLedger,
    connect,
    ledger_info,
    make_entries,
    publish_entries,
    wait_anchored,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from web3 import Web3

# entries per stream message: 1 as older producers (and this bench until batching) sent them; 50
# as an outbox relay batches them when each of its rounds finds about 10 ms of entries at 5,000/s
PROFILES = {
    "quick": {"rates": [1000, 5000], "seconds": 3, "backlog": 10_000, "big_tree": 100_000,
              "proofs": 300, "per_message": [1, 50]},
    "full": {"rates": [1000, 5000], "seconds": 5, "backlog": 30_000, "big_tree": 200_000,
             "proofs": 1000, "per_message": [1, 50]},
}  # fmt: skip


LOAD_SECONDS: list[float] = []
ANCHOR_INTERVAL_S = 2


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def stream_messages(entries: list[LogEntry], per_message: int) -> list[Outgoing]:
    """The stream messages a producer's outbox relay makes of ``entries`` when each of its rounds
    holds ``per_message`` of them (``coalesce``, the relay's own code); 1: one message per entry,
    as older producers send them."""
    messages: list[Outgoing] = []
    for start in range(0, len(entries), per_message):
        rows = [SimpleNamespace(id=start + i, **log_entry_row(e))
                for i, e in enumerate(entries[start : start + per_message])]  # fmt: skip
        messages += coalesce(rows)
    return messages


async def fast_publish(bus: Bus, entries: list[LogEntry], per_message: int = 1) -> int:
    """Publish into the LEDGER stream without waiting for each JetStream acknowledgement (the test
    stack's NATS fsyncs every acknowledged write, which caps acknowledged publishing far below the
    rates offered here). The stream still captures and de-duplicates them; every entry is checked
    to be anchored afterwards, so nothing lost goes unnoticed. Returns the messages sent."""
    messages = stream_messages(entries, per_message)
    for m in messages:
        await bus.nc.publish(m.subject, m.payload, headers={"Nats-Msg-Id": m.msg_id})
    await bus.nc.flush()
    return len(messages)


class AnchorWatch:
    """Records when each entry id was first reported anchored, and the anchor txs seen."""

    def __init__(self) -> None:
        self.anchored_at: dict[str, float] = {}
        self.txs: dict[int, str] = {}
        self.changed = asyncio.Event()

    async def wait_all(self, ids: list[str], timeout: float = 120) -> None:
        deadline = time.perf_counter() + timeout
        while not all(i in self.anchored_at for i in ids):
            self.changed.clear()
            left = deadline - time.perf_counter()
            if left <= 0:
                raise RuntimeError(f"{sum(i not in self.anchored_at for i in ids)} entries never anchored")
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=min(left, 1.0))
            except TimeoutError:
                pass

    async def start(self, bus: Bus) -> None:
        async def on_event(msg: Any) -> None:
            now = time.perf_counter()
            event = LedgerAnchored.model_validate_json(msg.data)
            self.txs[event.head_index] = event.tx_hash
            for kind in ("message", "file", "key", "audit", "tombstone"):
                for entry_id in event.ids_of(kind):
                    self.anchored_at.setdefault(entry_id, now)
            self.changed.set()

        await bus.nc.subscribe(Subject.LEDGER_ANCHORED, cb=on_event)


def gas_of(w3: Web3, tx_hashes: list[str]) -> int:
    return sum(int(w3.eth.get_transaction_receipt(h)["gasUsed"]) for h in tx_hashes)  # type: ignore[arg-type]


async def offered_rate(
    bus: Bus,
    watch: AnchorWatch,
    w3: Web3,
    rate: int,
    seconds: float,
    stack: IsolatedLedger | None = None,
    profile_dir: Path | None = None,
    per_message: int = 1,
) -> dict[str, Any]:
    """Publish ``rate`` entries/s for ``seconds``, ``per_message`` entries per stream message;
    measure until every one is anchored, with the CPU seconds the ledger process (and NATS) used
    meanwhile."""
    entries = make_entries(int(rate * seconds), prefix=f"rate{rate}x{per_message}")
    procs = _pids(stack) if stack is not None else {}
    meter = CpuMeter(procs)
    meter.start()
    profiler = None
    if profile_dir is not None and "ledger" in procs:
        profiler = Profiler(profile_dir, {"ledger": procs["ledger"]}, f"ledger-{rate}pers-x{per_message}")
        profiler.start(seconds + 2)
    sent_at: dict[str, float] = {}
    tick, per_tick = 0.05, max(1, int(rate * 0.05))
    heads_before = set(watch.txs)
    stream_before = (await bus.js.stream_info(Subject.LEDGER_STREAM)).state.messages
    size_before = (await ledger_info(bus)).tree_size
    started, messages = time.perf_counter(), 0
    for i in range(0, len(entries), per_tick):
        chunk = entries[i : i + per_tick]
        now = time.perf_counter()
        for e in chunk:
            sent_at[e.id] = now
        messages += await fast_publish(bus, chunk, per_message)
        target = started + (i // per_tick + 1) * tick
        await asyncio.sleep(max(0.0, target - time.perf_counter()))
    published = time.perf_counter() - started
    appended_while_offered = (await ledger_info(bus)).tree_size - size_before
    await wait_stream(bus, stream_before + messages)
    ingested = time.perf_counter() - started
    await watch.wait_all([e.id for e in entries])
    done = max(watch.anchored_at[e.id] for e in entries)
    latencies = [watch.anchored_at[e.id] - sent_at[e.id] for e in entries if e.id in watch.anchored_at]
    txs = [h for idx, h in watch.txs.items() if idx not in heads_before]
    cpu = meter.stop()
    intervals = max(1, math.ceil((done - started) / ANCHOR_INTERVAL_S))
    if profiler is not None:
        profiler.wait()
    return {
        "offered_rate": rate,
        "entries_per_message": per_message,
        "stream_messages": messages,
        "achieved_publish_rate": round(len(entries) / published),
        "stream_ingest_rate": round(len(entries) / ingested),
        "entries": len(entries),
        "anchored": len(latencies),
        "end_to_end_rate": round(len(latencies) / (done - started)),
        # whether appending keeps up while entries are offered: end_to_end_rate cannot show it, a
        # run of T s at R/s shows at most R*T/(T + the wait for the next anchor after the last)
        "appended_while_offered_rate": round(appended_while_offered / published),
        "append_backlog_when_offer_ended": len(entries) - appended_while_offered,
        "anchor_latency_p50_s": round(pct(latencies, 0.50), 3),
        "anchor_latency_p99_s": round(pct(latencies, 0.99), 3),
        "anchor_txs": len(txs),
        "txs_per_1000_entries": round(len(txs) / len(entries) * 1000, 3),
        "gas_per_1000_entries": round(gas_of(w3, txs) / len(entries) * 1000),
        # the intervals the phase spanned, publish start to last anchor (SPEC §6: one tx each at most)
        "txs_per_anchor_interval": round(len(txs) / intervals, 3),
        "cpu_seconds": cpu,
        "ledger_cpu_ms_per_entry": round(1000 * cpu["ledger"] / len(entries), 4) if "ledger" in cpu else None,
        "nats_cpu_ms_per_entry": round(1000 * cpu["nats"] / len(entries), 4) if "nats" in cpu else None,
    }


def _pids(stack: IsolatedLedger) -> dict[str, int]:
    procs = {"nats": stack.stack.nats.process}
    procs |= {svc.process.name: svc.process for svc in stack.instances if svc.process}  # type: ignore[misc]
    return {name: p.pid for name, p in procs.items() if p is not None and p.pid is not None}


async def restart(stack: IsolatedLedger) -> float:
    """Start the stopped ledger process; seconds until it answers /healthz (tree loaded)."""
    t0 = time.perf_counter()
    await asyncio.to_thread(stack.instances[0].start)
    return time.perf_counter() - t0


async def wait_size(bus: Bus, size: int, timeout: float = 300) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            if (await ledger_info(bus, timeout=2)).tree_size >= size:
                return
        except Exception:  # noqa: BLE001 - the ledger may still be starting
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError(f"tree did not reach {size} leaves")


async def wait_stream(bus: Bus, messages: int) -> None:
    """Until the LEDGER stream holds ``messages`` messages (core publishes are stored async)."""
    for _ in range(6000):
        if (await bus.js.stream_info(Subject.LEDGER_STREAM)).state.messages >= messages:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the stream did not store the backlog")


async def sustained_append(stack: IsolatedLedger, bus: Bus, count: int) -> dict[str, Any]:
    """A backlog published while the ledger is stopped, then drained: the persisted append rate
    (fetch, validate, one transaction per batch, acknowledge) without publisher pacing."""
    size = (await ledger_info(bus)).tree_size
    await asyncio.to_thread(stack.instances[0].stop)
    stream_before = (await bus.js.stream_info(Subject.LEDGER_STREAM)).state.messages
    t0 = time.perf_counter()
    await fast_publish(bus, make_entries(count, prefix="backlog"))
    await wait_stream(bus, stream_before + count)
    publish_s = time.perf_counter() - t0
    await restart(stack)
    started = time.perf_counter()
    await wait_size(bus, size + count)
    drained = time.perf_counter() - started
    return {"backlog": count, "publish_rate": round(count / publish_s), "drain_seconds": round(drained, 2),
            "persisted_append_rate": round(count / drained)}  # fmt: skip


async def prefill(db_path: Path, target: int) -> tuple[float, int]:
    """Grow the ledger database to ``target`` leaves with the ledger's own log code (the service
    is stopped); return the in-process append rate and the index of the first new leaf, whose
    entry id is ``big-<leaf index>``."""
    db = Database(f"sqlite+aiosqlite:///{db_path}")
    await db.migrate(MIGRATIONS)
    tlog = TransparencyLog(db)
    await tlog.open()
    at, first, t0 = "2025-01-01T00:00:00.000Z", tlog.committed_size, time.perf_counter()
    while tlog.committed_size < target:
        start = tlog.committed_size
        batch = [
            LogEntry(kind="message", id=f"big-{i}", digest=hashlib.sha256(b"%d" % i).hexdigest(), at=at)
            for i in range(start, min(start + 5000, target))
        ]
        await tlog.append(batch)
    rate = (tlog.committed_size - first) / (time.perf_counter() - t0)
    reopened, t1 = TransparencyLog(db), time.perf_counter()
    await reopened.open()  # what the service does at start: read stored nodes, no re-hashing
    LOAD_SECONDS.append(time.perf_counter() - t1)
    await db.close()
    return rate, first


async def large_tree(stack: IsolatedLedger, bus: Bus, leaves: int, samples: int) -> dict[str, Any]:
    await asyncio.to_thread(stack.instances[0].stop)
    rate, first = await prefill(stack.stack.var_dir / "ledger.db", leaves)
    load_s = await restart(stack)
    t0 = time.perf_counter()
    info = await wait_anchored(bus, leaves, timeout=120)
    catch_up_s = time.perf_counter() - t0
    rng, latencies = random.Random(5), []
    for _ in range(samples):
        ref = EntryRef(kind="message", id=f"big-{rng.randrange(first, leaves)}")
        t1 = time.perf_counter()
        proof = await bus.request(LEDGER_PROOF_GET, ref)
        latencies.append((time.perf_counter() - t1) * 1000)
        assert proof.status == "anchored"
    return {
        "tree_size": info.tree_size,
        "prefill_append_rate": round(rate),
        "tree_load_s": round(LOAD_SECONDS[-1], 3),
        "restart_until_healthy_s": round(load_s, 2),
        "catch_up_anchor_s": round(catch_up_s, 2),
        "proof_latency_p50_ms": round(pct(latencies, 0.5), 2),
        "proof_latency_p99_ms": round(pct(latencies, 0.99), 2),
        "proof_samples": samples,
    }


async def run(profile: dict[str, Any], profile_dir: Path | None = None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    env = {"ANCHOR_INTERVAL_S": str(ANCHOR_INTERVAL_S), "LOG_LEVEL": "WARNING"}
    stack = IsolatedLedger(tmp, env=env).start()
    bus = await connect(stack.nats_url, "ledger-bench")
    try:
        watch = AnchorWatch()
        await watch.start(bus)
        w3 = Web3(Web3.HTTPProvider(stack.rpc_url))
        await publish_entries(bus, make_entries(10, prefix="warmup"))
        await wait_anchored(bus, 10)  # contract deployed, first anchor made
        results: dict[str, Any] = {"anchor_interval_s": ANCHOR_INTERVAL_S}
        results["offered_rates"] = [
            await offered_rate(bus, watch, w3, rate, profile["seconds"], stack, profile_dir, per_message)
            for rate in profile["rates"]
            for per_message in profile["per_message"]
        ]
        if profile.get("offered_only"):
            return results
        results["sustained_append"] = await sustained_append(stack, bus, profile["backlog"])
        results["large_tree"] = await large_tree(stack, bus, profile["big_tree"], profile["proofs"])
        return results
    finally:
        await bus.close()
        stack.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def panels(results: dict[str, Any]) -> list[tuple[str, str, dict[str, float]]]:
    rates = results["offered_rates"]
    return [
        ("End-to-end throughput (publish -> anchored)", "entries/s",
         {_phase(r): r["end_to_end_rate"] for r in rates}),
        ("Anchoring latency (publish -> head confirmed)", "seconds",
         {f"{q} @ {_phase(r)}": r[f"anchor_latency_{q}_s"] for r in rates for q in ("p50", "p99")}),
        ("ChainChat gas per 1,000 entries (one anchor per interval)", "thousand gas",
         {_phase(r): r["gas_per_1000_entries"] / 1e3 for r in rates}),
        ("Persisted append rate (backlog drain) and prefill", "entries/s",
         {"service drain": results["sustained_append"]["persisted_append_rate"],
          "in-process log append": results["large_tree"]["prefill_append_rate"]}),
        (f"Proof latency at {results['large_tree']['tree_size']:,} leaves (NATS API)", "ms",
         {"p50": results["large_tree"]["proof_latency_p50_ms"],
          "p99": results["large_tree"]["proof_latency_p99_ms"]}),
    ]  # fmt: skip


def _phase(r: dict[str, Any]) -> str:
    return f"{r['offered_rate']}/s x{r['entries_per_message']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (about a minute)")
    parser.add_argument("--offered-only", action="store_true", help="only the offered-rate phases")
    parser.add_argument("--rates", help="offered entries/s, comma-separated (default 1000,5000)")
    parser.add_argument("--per-message", help="entries per stream message, comma-separated (default 1,50)")
    parser.add_argument("--seconds", type=float, help="length of each offered-rate phase")
    parser.add_argument("--profile", type=Path, help="record a py-spy flame graph of the ledger here")
    args = parser.parse_args()
    profile = dict(PROFILES["quick" if args.quick else "full"])
    if args.rates:
        profile["rates"] = [int(r) for r in args.rates.split(",")]
    if args.per_message:
        profile["per_message"] = [int(n) for n in args.per_message.split(",")]
    if args.seconds:
        profile["seconds"] = args.seconds
    profile["offered_only"] = args.offered_only
    started = time.perf_counter()
    results = asyncio.run(run(profile, args.profile))
    results["profile"] = {"name": "quick" if args.quick else "full", **profile}
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    path = write_report("ledger_bench", results)
    if not args.offered_only:
        bar_panels("ledger_bench", panels(results))
    print(f"wrote {path} in {results['seconds']} s")
    for rate in results["offered_rates"]:
        print(rate)
    if not args.offered_only:
        print(results["sustained_append"], results["large_tree"], sep="\n")


if __name__ == "__main__":
    main()
