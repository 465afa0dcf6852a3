"""Files benchmark on a real local stack: encrypted-attachment throughput through the gateway.

Uploads and downloads of 1, 10 and 100 MiB (random, incompressible, no repeated IPFS blocks)
through ``POST/GET /api/v1/files`` (gateway → files → IPFS node and back), timed end to end by the
client; the same sizes straight against the IPFS node's RPC API as the baseline the two hops add
to; and the peak RSS of the gateway and files processes (psutil on their PIDs, sampled every 20 ms)
while 100 MiB go up and come back down.

Run: ``.venv/bin/python bench/files_bench.py [--quick]``; results in
``bench/results/<date>/files_bench.{json,png}``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
from _accounts import signup
from _report import RESULTS, plt, write_report

from devstack.stack import Stack, free_ports

MIB = 1024 * 1024
BLOCK = 256 * 1024  # the IPFS chunk size: every block of every upload is distinct


class Payload:
    """``size`` random-looking bytes in 256 KiB pieces, unique per upload, cheap to produce."""

    _pool = os.urandom(8 * MIB)

    def __init__(self, size: int) -> None:
        self.size = size
        self.tag = uuid.uuid4().bytes

    def chunks(self) -> Iterator[bytes]:
        for n, offset in enumerate(range(0, self.size, BLOCK)):
            start = (n * 7919 * 64) % (len(self._pool) - BLOCK)
            piece = bytearray(self._pool[start : start + min(BLOCK, self.size - offset)])
            stamp = self.tag + n.to_bytes(8, "big")
            piece[: min(len(stamp), len(piece))] = stamp[: len(piece)]
            yield bytes(piece)


class PeakRss:
    """Peak RSS of some processes, sampled in a thread."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.baseline = {name: p.memory_info().rss for name, p in self.procs.items()}
        self.peak = dict(self.baseline)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            for name, proc in self.procs.items():
                self.peak[name] = max(self.peak[name], proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "baseline_MiB": round(self.baseline[name] / MIB, 1),
                "peak_MiB": round(self.peak[name] / MIB, 1),
                "growth_MiB": round((self.peak[name] - self.baseline[name]) / MIB, 1),
            }
            for name in self.procs
        }


def _mib_per_s(size: int, seconds: float) -> float:
    return round(size / MIB / seconds, 1) if seconds > 0 else 0.0


def gateway_round(
    http: httpx.Client, user: dict[str, Any], conversation_id: str, size: int
) -> tuple[float, float]:
    """One upload then one full download through the gateway; (upload s, download s)."""
    headers = {"Authorization": f"Bearer {user['token']}"}
    payload = Payload(size)
    started = time.perf_counter()
    resp = http.post(
        "/files",
        params={"conversation_id": conversation_id},
        content=payload.chunks(),
        headers={**headers, "Content-Type": "application/octet-stream", "Content-Length": str(size)},
    )
    up = time.perf_counter() - started
    resp.raise_for_status()
    started, received = time.perf_counter(), 0
    with http.stream("GET", f"/files/{resp.json()['file_id']}", headers=headers) as got:
        got.raise_for_status()
        for chunk in got.iter_raw():
            received += len(chunk)
    down = time.perf_counter() - started
    assert received == size, (received, size)
    return up, down


def ipfs_round(api_url: str, size: int) -> tuple[float, float]:
    """The same through the IPFS node's RPC API directly (no gateway, no files service)."""
    payload, boundary = Payload(size), uuid.uuid4().hex

    def body() -> Iterator[bytes]:
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="b"\r\n\r\n'.encode()
        yield from payload.chunks()
        yield f"\r\n--{boundary}--\r\n".encode()

    with httpx.Client(timeout=300) as http:
        started = time.perf_counter()
        resp = http.post(
            f"{api_url}/add",
            params={"cid-version": "1", "raw-leaves": "true", "pin": "true"},
            content=body(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        up = time.perf_counter() - started
        resp.raise_for_status()
        cid = resp.json()["Hash"]
        started, received = time.perf_counter(), 0
        with http.stream("POST", f"{api_url}/cat", params={"arg": cid}) as got:
            for chunk in got.iter_raw():
                received += len(chunk)
        down = time.perf_counter() - started
        assert received == size
        http.post(f"{api_url}/pin/rm", params={"arg": cid})
    return up, down


def run(stack: Stack, sizes: list[int], repeats: dict[int, int]) -> dict[str, Any]:
    http = httpx.Client(base_url=f"{stack.gateway_url}/api/v1", timeout=600)
    admin = signup(http, stack, "files-bench-admin", None)
    member = signup(http, stack, "files-bench", admin)
    conv = http.post(
        "/conversations",
        json={"member_ids": [member["id"]]},
        headers={"Authorization": f"Bearer {admin['token']}"},
    )
    conv.raise_for_status()
    conversation_id = conv.json()["conversation_id"]
    gateway_round(http, admin, conversation_id, MIB)  # warm-up: connections, caches
    results: dict[str, Any] = {"through_gateway": {}, "ipfs_direct": {}}
    for size in sizes:
        rounds = [gateway_round(http, admin, conversation_id, size) for _ in range(repeats[size])]
        direct = [ipfs_round(stack.ipfs.api_url, size) for _ in range(repeats[size])]
        results["through_gateway"][f"{size // MIB} MiB"] = _summary(size, rounds)
        results["ipfs_direct"][f"{size // MIB} MiB"] = _summary(size, direct)
        print(f"{size // MIB:>4} MiB  gateway {results['through_gateway'][f'{size // MIB} MiB']}", flush=True)
        print(f"{size // MIB:>4} MiB  direct  {results['ipfs_direct'][f'{size // MIB} MiB']}", flush=True)
    pids = {
        name: stack.services[name][0].process.pid  # type: ignore[union-attr]
        for name in ("gateway", "files")
    }
    big = max(sizes)
    with PeakRss(pids) as rss:
        gateway_round(http, admin, conversation_id, big)
    results["peak_rss_during_transfer"] = {"transfer_MiB": big // MIB, **rss.report()}
    print(f"peak RSS while moving {big // MIB} MiB up and down: {results['peak_rss_during_transfer']}")
    http.close()
    return results


def _summary(size: int, rounds: list[tuple[float, float]]) -> dict[str, float]:
    ups, downs = [r[0] for r in rounds], [r[1] for r in rounds]
    return {
        "runs": len(rounds),
        "upload_MiB_per_s": _mib_per_s(size, statistics.median(ups)),
        "download_MiB_per_s": _mib_per_s(size, statistics.median(downs)),
        "upload_s_median": round(statistics.median(ups), 3),
        "download_s_median": round(statistics.median(downs), 3),
    }


def plot(name: str, data: dict[str, Any]) -> Path:
    labels = list(data["through_gateway"])
    fig, (tp, mem) = plt.subplots(1, 2, figsize=(12, 4.2))
    width = 0.2
    series = [
        ("upload via gateway", data["through_gateway"], "upload_MiB_per_s", "#3b7dd8"),
        ("download via gateway", data["through_gateway"], "download_MiB_per_s", "#7fb0ee"),
        ("IPFS add, direct", data["ipfs_direct"], "upload_MiB_per_s", "#d8833b"),
        ("IPFS cat, direct", data["ipfs_direct"], "download_MiB_per_s", "#eeb47f"),
    ]
    for i, (label, table, key, colour) in enumerate(series):
        xs = [n + (i - 1.5) * width for n in range(len(labels))]
        bars = tp.bar(xs, [table[s][key] for s in labels], width, label=label, color=colour)
        tp.bar_label(bars, fmt="%.0f", fontsize=7, padding=2)
    tp.set_xticks(range(len(labels)), labels)
    tp.set_ylabel("MiB/s (median)")
    tp.set_title("Throughput by file size")
    tp.legend(fontsize=8)
    rss = data["peak_rss_during_transfer"]
    names = [n for n in rss if n != "transfer_MiB"]
    base = [rss[n]["baseline_MiB"] for n in names]
    growth = [rss[n]["growth_MiB"] for n in names]
    mem.bar(names, base, color="#9aa5b1", label="RSS before")
    bars = mem.bar(names, growth, bottom=base, color="#d8413b", label="growth during transfer")
    mem.bar_label(
        bars, labels=[f"peak {rss[n]['peak_MiB']:.0f} (+{rss[n]['growth_MiB']:.1f})" for n in names]
    )
    mem.set_ylabel("MiB")
    mem.set_title(f"Peak RSS while {rss['transfer_MiB']} MiB go up and down")
    mem.legend(fontsize=8)
    fig.tight_layout()
    path = RESULTS / f"{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 1, 10 and 25 MiB, one run each")
    args = parser.parse_args()
    sizes = [MIB, 10 * MIB, 25 * MIB] if args.quick else [MIB, 10 * MIB, 100 * MIB]
    repeats = dict.fromkeys(sizes, 1) if args.quick else {MIB: 10, 10 * MIB: 5, 100 * MIB: 3}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="files-bench-") as tmp:
        stack = Stack(
            var_dir=Path(tmp), ports=free_ports(), environment="test", extra_env={"LOG_LEVEL": "WARNING"}
        )
        try:
            stack.start()
            stack.wait_ready(timeout=120)
            data = run(stack, sizes, repeats)
        finally:
            stack.stop()
    data.update(
        quick=args.quick,
        cpus=os.cpu_count(),
        # other work on the machine skews the numbers: keep it next to them
        load_average_1m={"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        unit="MiB/s = 2^20 bytes per second, client wall time",
    )
    print(f"wrote {write_report('files_bench', data)}")
    print(f"wrote {plot('files_bench', data)}")


if __name__ == "__main__":
    main()
