"""Crypto benchmarks: envelope seal/open per suite (1 KiB body, 2 recipient devices), envelope v1
(HPKE by pyhpke) against v2 (HPKE by cryptography) for issue 18's goal (seal + open <= 0.2 ms in
Python), the same cases in the web client's code (``web/bench/envelope_cases.ts``) under vitest in
Node and in headless Chromium via Playwright, the original design's Blowfish-ECB as an insecure
reference line, and STREAM file encryption throughput and peak memory.
Run: ``.venv/bin/python bench/crypto_bench.py [--quick]``.

Envelope figures come as wall time and as this process's CPU time per operation: on a shared
machine the CPU time is the cost of the operation, the wall time also counts waiting for a core."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import psutil
from _report import bar_panels, write_report
from Crypto.Cipher import Blowfish
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from chainchat.crypto import (
    DeviceKeys,
    decrypt_chunks,
    encrypt_chunks,
    open_envelope,
    seal_envelope,
)
from chainchat_protocol.envelope import SUITES

MIB = 1024 * 1024


GOAL_SEAL_OPEN_US = 200.0  # issue 18: seal + open of 1 KiB to two devices <= 0.2 ms in Python
WEB = Path(__file__).resolve().parent.parent / "web"


def _per_op_us(fn: Callable[[], object], n: int) -> float:
    return _per_op(fn, n)[0]


def _per_op(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(wall µs, CPU µs of this process) per call, after one warm-up call."""
    fn()  # warm-up
    cpu, start = time.process_time(), time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def bench_envelope_versions(n: int) -> dict[str, Any]:
    """Seal + open of a 1 KiB text to two devices (the opening device one of them), v1 and v2."""
    alice, bob = DeviceKeys.generate(), DeviceKeys.generate()
    recipients, sender = [bob.public("bob"), alice.public("alice")], alice.public("alice")
    body = {"type": "text", "text": "x" * 1024, "sent_at": "2025-01-01T00:00:00.000Z"}
    out: dict[str, Any] = {}
    for suite in SUITES:
        for version, library in ((1, "pyhpke"), (2, "cryptography")):

            def seal_open(suite: str = suite, version: int = version) -> Any:
                env = seal_envelope(body, sender=alice, sender_id="alice", conversation_id="c",
                                    recipients=recipients, suite=suite, version=version)  # fmt: skip
                return open_envelope(env, device=bob, user_id="bob", sender=sender)

            wall, cpu = _per_op(seal_open, n)
            out[f"{suite} v{version} ({library})"] = {"seal_open_us": wall, "seal_open_cpu_us": cpu}
    return out


def bench_primitives(n: int) -> dict[str, float]:
    """CPU µs of the public-key operations one seal + open needs (two HPKE wraps, one unwrap, one
    Ed25519 signature and verification): the floor under any envelope code."""
    hpke = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
    keys = DeviceKeys.generate()
    ed = Ed25519PrivateKey.generate()
    digest, info = os.urandom(32), os.urandom(150)
    signature, wrapped = ed.sign(digest), hpke.encrypt(digest, keys.x25519_key.public_key(), info)
    wrap = _per_op(lambda: hpke.encrypt(digest, keys.x25519_key.public_key(), info), n)[1]
    unwrap = _per_op(lambda: hpke.decrypt(wrapped, keys.x25519_key, info), n)[1]
    sign = _per_op(lambda: ed.sign(digest), n)[1]
    verify = _per_op(lambda: ed.public_key().verify(signature, digest), n)[1]
    return {
        "hpke_wrap_cpu_us": wrap,
        "hpke_unwrap_cpu_us": unwrap,
        "ed25519_sign_cpu_us": sign,
        "ed25519_verify_cpu_us": verify,
        "floor_seal_open_cpu_us": 2 * wrap + unwrap + sign + verify,
    }


def bench_web(iterations: int) -> dict[str, Any]:
    """The web client's envelope code under vitest in Node (not Chromium); ``error`` if it cannot
    run (web/node_modules missing)."""
    npx = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "npx"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "web.json"
        env = {**os.environ, "BENCH_OUT": str(out), "BENCH_ITERATIONS": str(iterations),
               "PATH": f"{npx.parent}:{os.environ.get('PATH', '')}"}  # fmt: skip
        argv = [str(npx), "vitest", "run", "--config", "bench/vitest.config.ts"]
        try:
            done = subprocess.run(argv, cwd=WEB, env=env, capture_output=True, text=True, timeout=240)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        if done.returncode != 0 or not out.exists():
            return {"error": (done.stdout + done.stderr)[-500:]}
        result: dict[str, Any] = json.loads(out.read_text())
        return result


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


def bench_chromium(iterations: int) -> dict[str, Any]:
    """The same cases in Chromium (Playwright, Debian's browser): the web client's envelope code
    bundled by ``web/bench/vite.browser.config.ts`` and loaded from a 127.0.0.1 page. Wall time
    only (a page has no CPU clock); ``error`` if it cannot run."""
    from functools import partial
    from http.server import ThreadingHTTPServer

    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from devstack.browser import chromium_path, chromium_version

    executable = chromium_path()
    if executable is None:
        return {"error": "no Chromium installed"}
    npx = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "npx"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PATH": f"{npx.parent}:{os.environ.get('PATH', '')}"}
        argv = [str(npx), "vite", "build", "--config", "bench/vite.browser.config.ts", "--outDir", tmp]
        try:
            built = subprocess.run(argv, cwd=WEB, env=env, capture_output=True, text=True, timeout=180)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        if built.returncode != 0:
            return {"error": (built.stdout + built.stderr)[-500:]}
        Path(tmp, "index.html").write_text('<!doctype html><script src="envelope-bench.js"></script>')
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=tmp))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
                try:
                    page = browser.new_page()
                    page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
                    results = page.evaluate("n => ChainChatBench.run(n)", iterations)
                finally:
                    browser.close()
        except PlaywrightError as exc:
            return {"error": str(exc)[-500:]}
        finally:
            server.shutdown()
    return {"runtime": chromium_version(executable) + " (headless, Playwright)", "results": results}


def envelope_goal(versions: dict[str, Any], floor: dict[str, float]) -> dict[str, Any]:
    """Issue 18's envelope goal on the default suite: v2 (cryptography) against v1 (pyhpke)."""
    v1 = versions["hpke-x25519-aes256gcm v1 (pyhpke)"]
    v2 = versions["hpke-x25519-aes256gcm v2 (cryptography)"]
    return {
        "goal_us": GOAL_SEAL_OPEN_US,
        "v1_seal_open_cpu_us": v1["seal_open_cpu_us"],
        "v2_seal_open_cpu_us": v2["seal_open_cpu_us"],
        "v2_seal_open_us": v2["seal_open_us"],
        "v2_speedup": v1["seal_open_cpu_us"] / v2["seal_open_cpu_us"],
        "floor_seal_open_cpu_us": floor["floor_seal_open_cpu_us"],
        "met": v2["seal_open_cpu_us"] <= GOAL_SEAL_OPEN_US,
    }


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
    versions = bench_envelope_versions(n)
    floor = bench_primitives(n)
    goal = envelope_goal(versions, floor)
    web = bench_web(30 if args.quick else 300)
    chromium = bench_chromium(30 if args.quick else 300)
    stream = bench_stream(total)
    data = {
        "quick": args.quick,
        "envelope_iterations": n,
        "envelopes": envelopes,  # the default version (v2)
        "envelope_versions": versions,
        "primitives": floor,
        "envelope_goal": goal,
        "web": web,
        "chromium": chromium,
        "stream": stream,
    }
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
                f"seal + open, 1 KiB to 2 devices, CPU (goal ≤ {GOAL_SEAL_OPEN_US:.0f} µs in Python)",
                "CPU µs / op",
                {
                    **{f"Python {k}": v["seal_open_cpu_us"] for k, v in versions.items()},
                    **{f"web (Node) {k}": v["seal_open_cpu_us"] for k, v in web.get("results", {}).items()},
                },
            ),
            (
                "seal + open, 1 KiB to 2 devices, wall time",
                "µs / op",
                {
                    **{f"Python {k}": v["seal_open_us"] for k, v in versions.items()},
                    **{f"Chromium {k}": v["seal_open_us"] for k, v in chromium.get("results", {}).items()},
                },
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
    for k, v in versions.items():
        print(f"{k:>70}: seal+open {v['seal_open_us']:8.1f} µs wall, {v['seal_open_cpu_us']:8.1f} µs CPU")
    for k, v in web.get("results", {}).items():
        wall, cpu = v["seal_open_us"], v["seal_open_cpu_us"]
        print(f"{'web ' + k:>70}: seal+open {wall:8.1f} µs wall, {cpu:8.1f} µs CPU")
    for k, v in chromium.get("results", {}).items():
        print(f"{'Chromium ' + k:>70}: seal+open {v['seal_open_us']:8.1f} µs wall")
    for name, result in (("web (Node)", web), ("Chromium", chromium)):
        if "error" in result:
            print(f"{name} benchmark did not run: {result['error']}")
    floor_us = floor["floor_seal_open_cpu_us"]
    print(f"{'primitive floor (2 wraps, unwrap, sign, verify)':>70}: {floor_us:8.1f} µs CPU")
    print(f"{'goal: v2 seal+open <= 200 µs CPU':>70}: {'met' if goal['met'] else 'missed'}")
    for k, v in stream.items():
        print(f"{k:>70}: {v:,.1f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
