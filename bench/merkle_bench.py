"""Merkle log benchmarks (in-memory node store): append rate, root / inclusion / consistency proof
generation and verification at 1M and 10M leaves, memory per leaf.
Run: ``.venv/bin/python bench/merkle_bench.py [--quick]``."""

from __future__ import annotations

import argparse
import hashlib
import random
import time
from collections.abc import Callable
from typing import Any

import psutil
from _report import bar_panels, write_report

from chainchat_protocol.merkle import (
    MemoryNodeStore,
    MerkleTree,
    verify_consistency,
    verify_inclusion,
)

BATCH = 10_000


def _batch(start: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(start, start + BATCH)]


def grow(tree: MerkleTree, target: int) -> float:
    """Append leaf hashes up to ``target`` leaves; return seconds spent inside the tree only
    (generating the synthetic leaf hashes is not timed)."""
    spent = 0.0
    while tree.size < target:
        hashes = _batch(tree.size)[: target - tree.size]
        t0 = time.perf_counter()
        tree.extend_hashes(hashes)
        spent += time.perf_counter() - t0
    return spent


def _avg_us(fn: Callable[[int], object], args: list[int]) -> float:
    t0 = time.perf_counter()
    for a in args:
        fn(a)
    return (time.perf_counter() - t0) / len(args) * 1e6


def measure_at(tree: MerkleTree, samples: int) -> dict[str, float]:
    n, rng = tree.size, random.Random(7)
    idx = [rng.randrange(n) for _ in range(samples)]
    old = [rng.randrange(1, n) for _ in range(samples)]
    root = tree.root()
    incl = {i: tree.inclusion_proof(i) for i in idx[:500]}
    cons = {m: tree.consistency_proof(m) for m in old[:500]}
    roots = {m: tree.root(m) for m in old[:500]}
    return {
        "root_current_us": _avg_us(lambda _: tree.root(), idx),
        "root_historical_us": _avg_us(tree.root, old),
        "inclusion_proof_us": _avg_us(tree.inclusion_proof, idx),
        "inclusion_proof_historical_size_us": _avg_us(
            lambda i: tree.inclusion_proof(i // 2, max(i, 1)), idx),
        "consistency_proof_us": _avg_us(tree.consistency_proof, old),
        "inclusion+consistency_us": _avg_us(
            lambda i: (tree.inclusion_proof(i), tree.consistency_proof(max(i, 1))), idx),
        "verify_inclusion_us": _avg_us(
            lambda i: verify_inclusion(i, n, tree.leaf_hash_at(i), incl[i], root), list(incl)),
        "verify_consistency_us": _avg_us(
            lambda m: verify_consistency(m, n, roots[m], root, cons[m]), list(cons)),
    }  # fmt: skip


def single_append_rate(count: int) -> float:
    tree, hashes = MerkleTree(), _batch(0) * (count // BATCH)
    t0 = time.perf_counter()
    for h in hashes:
        tree.append_hash(h)
    return count / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smoke run (100k / 300k leaves)")
    args = parser.parse_args()
    sizes = [100_000, 300_000] if args.quick else [1_000_000, 10_000_000]
    samples = 500 if args.quick else 5000
    proc, store = psutil.Process(), MemoryNodeStore()
    tree, rss0 = MerkleTree(store), proc.memory_info().rss
    results: dict[str, Any] = {"quick": args.quick, "store": "MemoryNodeStore", "sizes": {}}
    spent = 0.0
    for size in sizes:
        spent += grow(tree, size)
        results["sizes"][str(size)] = {
            "append_leaves_per_s (batched extend_hashes, cumulative)": size / spent,
            "node_store_MiB": store.nbytes() / 2**20,
            "process_rss_delta_MiB": (proc.memory_info().rss - rss0) / 2**20,
            **measure_at(tree, samples),
        }
    results["single_append_hash_leaves_per_s"] = single_append_rate(200_000)
    path = write_report("merkle_bench", results)
    panels = [(f"{int(s):,} leaves", "µs / op", {k.removesuffix("_us"): v for k, v in
               r.items() if k.endswith("_us")}) for s, r in results["sizes"].items()]  # fmt: skip
    panels.append(("append rate", "k leaves / s", {
        **{f"batched, {int(s):,}": r["append_leaves_per_s (batched extend_hashes, cumulative)"]
           / 1e3 for s, r in results["sizes"].items()},
        "append_hash one by one": results["single_append_hash_leaves_per_s"] / 1e3}))  # fmt: skip
    bar_panels("merkle_bench", panels)
    for s, r in results["sizes"].items():
        print(f"--- {int(s):,} leaves")
        for k, v in r.items():
            print(f"{k:>60}: {v:,.2f}")
    print(f"{'single append_hash leaves/s':>60}: {results['single_append_hash_leaves_per_s']:,.0f}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
