"""Crypto benchmarks: envelope seal/open per suite (1 KiB body, 2 recipient devices), the original
design's Blowfish-ECB as an insecure reference line, and STREAM file encryption throughput and
peak memory. Run: ``.venv/bin/python bench/crypto_bench.py [--quick]``."""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
from _report import bar_panels, write_report
from Crypto.Cipher import Blowfish

from chainchat.crypto import (
    DeviceKeys,
    decrypt_chunks,
    encrypt_chunks,
    open_envelope,
    seal_envelope,
)
from chainchat_protocol.envelope import SUITES

MIB = 1024 * 1024


def _per_op_us(fn: Callable[[], object], n: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def bench_envelopes(n: int) -> dict[str, Any]:
    alice, bob = DeviceKeys.generate(), DeviceKeys.generate()
    recipients = [bob.public("bob"), alice.public("alice")]
    body = {"type": "text", "text": "x" * 1024, "sent_at": "2025-01-01T00:00:00.000Z"}
    out: dict[str, Any] = {}
    for suite in SUITES:

        def seal(suite: str = suite) -> Any:
            return seal_envelope(
                body,
                sender=alice,
                sender_id="alice",
                conversation_id="c",
                recipients=recipients,
                suite=suite,
            )

        env = seal()
        out[suite] = {
            "seal_us": _per_op_us(seal, n),
            "open_us": _per_op_us(
                lambda env=env: open_envelope(env, device=bob, user_id="bob", sender=alice.public("alice")),
                n,
            ),
        }
    # The original design: Blowfish-ECB under a key the *server* made. Insecure (no integrity,
    # ECB leaks patterns, server can read) — a speed reference only.
    ecb = Blowfish.new(os.urandom(16), Blowfish.MODE_ECB)
    block = os.urandom(1024)
    out["INSECURE reference: blowfish-ecb server key (encrypt/decrypt only)"] = {
        "seal_us": _per_op_us(lambda: ecb.encrypt(block), n * 10),
        "open_us": _per_op_us(lambda: ecb.decrypt(block), n * 10),
    }
    return out


class PeakRSS:
    """Samples this process's RSS every 5 ms in a thread (tracemalloc would slow the run)."""

    def __init__(self) -> None:
        self._proc, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.005)

    def __enter__(self) -> PeakRSS:
        self.base = self._proc.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _source(total: int, block: bytes) -> Iterator[bytes]:
    for _ in range(total // len(block)):
        yield block


def bench_stream(total: int) -> dict[str, Any]:
    key, block = os.urandom(32), os.urandom(MIB)
    with PeakRSS() as enc_mem:
        t0 = time.perf_counter()
        size = sum(len(c) for c in encrypt_chunks(key, _source(total, block)))
        enc_s = time.perf_counter() - t0
    with PeakRSS() as both_mem:
        t0 = time.perf_counter()
        out = sum(len(p) for p in decrypt_chunks(key, encrypt_chunks(key, _source(total, block))))
        both_s = time.perf_counter() - t0
    assert out == total
    dec_s = max(both_s - enc_s, 1e-9)
    return {
        "plaintext_bytes": total,
        "ciphertext_bytes": size,
        "encrypt_MBps": total / MIB / enc_s,
        "decrypt_MBps (derived: pipeline minus encrypt)": total / MIB / dec_s,
        "encrypt+decrypt pipeline_MBps": total / MIB / both_s,
        "encrypt_peak_rss_delta_MiB": (enc_mem.peak - enc_mem.base) / MIB,
        "pipeline_peak_rss_delta_MiB": (both_mem.peak - both_mem.base) / MIB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run (seconds)")
    args = parser.parse_args()
    n, total = (30, 16 * MIB) if args.quick else (500, 256 * MIB)
    envelopes = bench_envelopes(n)
    stream = bench_stream(total)
    data = {"quick": args.quick, "envelope_iterations": n, "envelopes": envelopes, "stream": stream}
    path = write_report("crypto_bench", data)
    bar_panels(
        "crypto_bench",
        [
            (
                "seal, 1 KiB body to 2 devices",
                "µs / op",
                {k: v["seal_us"] for k, v in envelopes.items()},
            ),
            (
                "open (verify + unwrap + decrypt)",
                "µs / op",
                {k: v["open_us"] for k, v in envelopes.items()},
            ),
            (
                f"STREAM AES-256-GCM, {total // MIB} MiB",
                "MiB/s",
                {k: v for k, v in stream.items() if k.endswith("MBps")},
            ),
        ],
    )
    for k, v in envelopes.items():
        print(f"{k:>70}: seal {v['seal_us']:8.1f} µs  open {v['open_us']:8.1f} µs")
    for k, v in stream.items():
        print(f"{k:>70}: {v:,.1f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
