"""`make bench`: run every benchmark in turn, then write the dated report.

Each ``bench/*_bench.py`` (and the PostgreSQL variant of the chat benchmark) runs as its own process
with a time limit, writing ``bench/results/<YYYY-MM-DD>/<name>.json`` and ``.png``. Benchmarks that
need the stack start their own components on free ports on 127.0.0.1. The whole run has a budget
(``BENCH_BUDGET_S``, default 1200 s = issue 11's 20 minutes): a benchmark gets at most what is left,
and one that has no time left is recorded as skipped. ``BENCH_DEADLINE`` (a Unix time) tells each
benchmark when to stop starting new parts, so that it still writes what it measured. Then
``run.json`` (exit codes, seconds, total, load average) and ``report.md`` are written next to the
results, and ``bench/results/README.md`` points at the newest report.

    .venv/bin/python -m bench.run_all [NAME ...]    # e.g. `chat original_design`; default: all
    BENCH_QUICK=1 …                                  # passes --quick to each (a smoke run)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.report import ORDER, write_report
from devstack.browser import chromium_version

HERE = Path(__file__).resolve().parent
RESULTS_ROOT = HERE / "results"
DEFAULT_TIMEOUT_S = 300.0
TIMEOUTS = {"chat_bench": 330.0, "chat_bench_postgres": 330.0, "chat_bench_postgres_x2": 240.0,
            "original_design_bench": 300.0}  # fmt: skip
DEADLINE_MARGIN_S = 60.0  # a benchmark's own deadline: time to stop its stack and write its results
# extra runs of one script: PostgreSQL with one of each service, then two chat and two gateways
VARIANTS = {
    "chat_bench": [
        ("chat_bench_postgres", ["--postgres"]),
        ("chat_bench_postgres_x2",
         ["--postgres", "--instances", "2", "--gateways", "2", "--history-size", "0", "--no-overload"]),
    ]
}  # fmt: skip


def plan(only: set[str]) -> list[tuple[str, Path, list[str]]]:
    """(result name, script, extra arguments) for every benchmark, filtered by ``only``."""
    runs = []
    for script in sorted(HERE.glob("*_bench.py")):
        runs.append((script.stem, script, []))
        runs += [(name, script, args) for name, args in VARIANTS.get(script.stem, [])]
    wanted = {f"{n}_bench" if not n.endswith("_bench") else n for n in only}
    runs = [r for r in runs if not wanted or r[0] in wanted or r[1].stem in wanted]
    # the report's order: the original-design comparison first, so a spent budget never skips it
    return sorted(runs, key=lambda r: (ORDER.index(r[0]) if r[0] in ORDER else len(ORDER), r[0]))


def run_one(argv: list[str], env: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """Run one benchmark; on timeout interrupt it (its ``finally`` stops its stack), then kill it."""
    proc = subprocess.Popen(argv, cwd=HERE.parent, env=env, start_new_session=True)
    try:
        return proc.wait(timeout=timeout), "ok"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        return None, "timeout"


def main(argv: list[str]) -> int:
    budget = float(os.environ.get("BENCH_BUDGET_S", "1200"))
    directory = Path(os.environ.get("BENCH_RESULTS_DIR") or RESULTS_ROOT / time.strftime("%Y-%m-%d"))
    directory.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BENCH_RESULTS_DIR": str(directory)}
    extra = ["--quick"] if os.environ.get("BENCH_QUICK") else []
    load_before = os.getloadavg()[0]
    print(f"browser: {chromium_version()}", flush=True)
    started = time.monotonic()
    record: dict[str, dict[str, object]] = {}
    for name, script, args in plan(set(argv)):
        for suffix in (".json", ".png"):  # an earlier run's figures must not pass for this run's
            (directory / f"{name}{suffix}").unlink(missing_ok=True)
        left = budget - (time.monotonic() - started)
        if left < 30:
            record[name] = {"status": "skipped (budget spent)", "exit_code": None, "seconds": 0.0}
            print(f"== {name}: skipped, the {budget:.0f} s budget is spent", flush=True)
            continue
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        limit = min(TIMEOUTS.get(name, DEFAULT_TIMEOUT_S), left)
        env["BENCH_DEADLINE"] = str(time.time() + limit - DEADLINE_MARGIN_S)
        code, status = run_one([sys.executable, str(script), *args, *extra], env, limit)
        took = round(time.monotonic() - t0, 1)
        if status == "ok" and code != 0:
            status = "failed"
        record[name] = {"status": status, "exit_code": code, "seconds": took}
        print(f"   {name}: {status} (exit {code}) in {took} s", flush=True)
    total = round(time.monotonic() - started, 1)
    run = {
        "total_seconds": total,
        "budget_seconds": budget,
        "quick": bool(extra),
        "cpus": os.cpu_count(),
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "benchmarks": record,
    }
    (directory / "run.json").write_text(json.dumps(run, indent=2) + "\n", "utf-8")
    report = write_report(directory)
    print(f"total {total} s; report: {report}")
    return 1 if any(r["status"] != "ok" for r in record.values()) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
