"""`make bench`: run every bench/*_bench.py in turn; each writes bench/results/<name>.json and .png.

Benchmarks that need the stack start their own components on free ports. ``BENCH_QUICK=1`` passes
``--quick`` to each for a smoke run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def main() -> int:
    RESULTS.mkdir(exist_ok=True)
    only = set(sys.argv[1:])
    scripts = sorted(p for p in HERE.glob("*_bench.py") if not only or p.stem.removesuffix("_bench") in only)
    extra = ["--quick"] if os.environ.get("BENCH_QUICK") else []
    summary: dict[str, dict[str, object]] = {}
    failed = 0
    for script in scripts:
        started = time.monotonic()
        print(f"== {script.stem}", flush=True)
        proc = subprocess.run([sys.executable, str(script), *extra], cwd=HERE.parent, check=False)
        took = round(time.monotonic() - started, 1)
        summary[script.stem] = {"exit_code": proc.returncode, "seconds": took}
        failed += proc.returncode != 0
        print(f"   {script.stem}: exit {proc.returncode} in {took}s", flush=True)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"results in {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
