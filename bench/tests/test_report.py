"""The benchmark report generator: summary, goals met/missed/not measured, tables, plots, links."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import report


def _lat(p50: float, p95: float, p99: float) -> dict[str, float]:
    return {"p50": p50, "p95": p95, "p99": p99}


def _design(msgs_per_s: float, txs: float, gas: int, onchain_p50: float, plaintext: int) -> dict[str, Any]:
    return {
        "messages": 40,
        "messages_per_s": msgs_per_s,
        "ack_latency_ms": _lat(10, 20, 30),
        "onchain_latency_ms": _lat(onchain_p50, onchain_p50, onchain_p50),
        "delivery_latency_ms": None,
        "txs_per_message": txs,
        "gas_per_message": gas,
        "transactions_scanned": 80,
        "transactions_with_plaintext": plaintext,
        "file": {"size_MiB": 10.0, "upload_s": 1.0, "retrieval_s_median": 0.5, "txs": 2, "cipher": "x"},
    }


SAMPLE: dict[str, dict[str, Any]] = {
    "run": {
        "total_seconds": 600.0,
        "budget_seconds": 1200,
        "cpus": 2,
        "load_average_1m": {"before": 3.0, "after": 5.0},
        "benchmarks": {
            "original_design_bench": {"status": "ok", "exit_code": 0, "seconds": 100.0},
            "auth_bench": {"status": "ok", "exit_code": 0, "seconds": 40.0},
            "merkle_bench": {"status": "timeout", "exit_code": None, "seconds": 300.0},
        },
    },
    "original_design_bench": {
        "env": {"time": "2026-01-02T03:04:05Z", "python": "3.11.7", "platform": "Linux-test"},
        "original": _design(2.0, 2.0, 400_000, 450.0, 40),
        "original_compile_cached": _design(4.0, 2.0, 400_000, 250.0, 40),
        "chainchat": {**_design(40.0, 0.025, 2_000, 1500.0, 0), "proof_verified_on_chain": True},
    },
    "auth_bench": {
        "login": {
            "clients": 20,
            "mean_ms": 1500.0,
            "p50_ms": 900.0,
            "p95_ms": 2000.0,
            "p99_ms": 3000.0,
            "logins_per_s": 12.0,
            "failures": {},
        },
        "verifier": {"verifications_per_s": 1e6, "first_sight_verifications_per_s": 5000.0},
        "argon2id": {"ms_per_hash": 50.0},
    },  # fmt: skip
}


def _goal_results(text: str) -> dict[str, str]:
    """goal text → result cell, read from the rendered goals table."""
    rows = {}
    for line in text.split("### Key figures")[0].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 6 and cells[0] not in ("goal", "---"):
            rows[cells[0]] = cells[5]
    return rows


def _write(directory: Path, results: dict[str, dict[str, Any]]) -> None:
    directory.mkdir(parents=True)
    for name, data in results.items():
        (directory / f"{name}.json").write_text(json.dumps(data))


def test_goals_are_marked_met_missed_or_not_measured(tmp_path: Path) -> None:
    _write(tmp_path / "2026-01-02", SAMPLE)
    text = report.write_report(tmp_path / "2026-01-02").read_text()
    goals = _goal_results(text)
    assert goals["`make bench` finishes within 20 minutes"] == "✅ met"
    assert goals["fewer chain transactions per message than the original design"] == "✅ met"
    assert goals["more messages/s than the original design, same workload"] == "✅ met"
    assert goals["no message text in any chain transaction"] == "✅ met"
    assert goals["message on chain (anchored), p50"] == "✅ met"  # 1.5 s <= 2.1 s
    assert goals["login mean, 20 concurrent clients"] == "❌ missed"  # 1.5 s > 1.2 s
    assert goals["envelope seal or open, default suite (slower of the two)"] == "– not measured"
    assert len(goals) == len(report.GOALS)


def test_a_slower_chainchat_or_a_long_run_is_reported_as_missed(tmp_path: Path) -> None:
    slow = json.loads(json.dumps(SAMPLE))
    slow["run"]["total_seconds"] = 1500.0
    slow["original_design_bench"]["chainchat"]["messages_per_s"] = 1.0
    slow["original_design_bench"]["chainchat"]["transactions_with_plaintext"] = 3
    _write(tmp_path / "2026-01-03", slow)
    goals = _goal_results(report.write_report(tmp_path / "2026-01-03").read_text())
    assert goals["`make bench` finishes within 20 minutes"] == "❌ missed"
    assert goals["more messages/s than the original design, same workload"] == "❌ missed"
    assert goals["no message text in any chain transaction"] == "❌ missed"


def test_summary_tables_plots_and_links(tmp_path: Path) -> None:
    day = tmp_path / "2026-01-02"
    _write(day, SAMPLE)
    (day / "original_design_bench.png").write_bytes(b"\x89PNG")
    (tmp_path / "chaos").mkdir()
    (tmp_path / "chaos" / "report.md").write_text("# chaos\n")
    _write(tmp_path / "2025-12-31", {"run": {"total_seconds": 1.0, "benchmarks": {}}})
    report.write_report(tmp_path / "2025-12-31")
    text = report.write_report(day).read_text()

    summary = text.split("## Summary")[1].split('<a id="')[0]
    assert "total **10 min**" in text
    assert "| [original_design_bench](#original_design_bench) | ok | 100 | ChainChat 40 msg/s" in summary
    assert "| [merkle_bench](#merkle_bench) | timeout | 300 | no results |" in summary
    assert "[its report](../chaos/report.md)" in summary
    # the side-by-side table, with each design's row, and the ratios measured within the run
    assert "| original design: compile + deploy + store, per message | 40 | 2 |" in text
    assert "| ChainChat: SDK → gateway, E2E encrypted, Merkle anchors | 40 | 40 |" in text
    assert "| gas per message (original ÷ ChainChat) | 200× |" in text
    assert "![original_design_bench](original_design_bench.png)" in text
    assert "![auth_bench]" not in text  # no plot written: no broken image link
    assert "No results: timeout" in text

    index = (tmp_path / "README.md").read_text()
    assert "**Latest report: [2026-01-02](2026-01-02/report.md)**" in index
    assert "- [2025-12-31](2025-12-31/report.md)" in index


def test_numbers_are_formatted_for_people() -> None:
    assert report.fmt(19709280) == "19,709,280"
    assert report.fmt(1234.5) == "1,234"
    assert report.fmt(12.345) == "12.3"
    assert report.fmt(2.0) == "2"
    assert report.fmt(0.0123) == "0.0123"
    assert report.fmt(None) == "–"
    assert report.fmt(True) == "yes"


def _phase(name: str, sent: int, acked: int, errors: int, delivered: int) -> dict[str, Any]:
    return {"phase": name, "chat_instances": 1, "sent": sent, "acked": acked, "errors": errors,
            "delivered": delivered, "delivered_per_s": 10.0, "latency_ms": _lat(1, 2, 3)}  # fmt: skip


def test_chat_loss_counts_messages_never_delivered_not_late_acknowledgements(tmp_path: Path) -> None:
    # a late ack of phase one is counted in phase two: per phase acked != delivered, nothing is lost
    late = {"phases": [_phase("100/s", 100, 97, 0, 100), _phase("max", 50, 53, 0, 50)]}
    lost = {"phases": [_phase("100/s", 100, 100, 0, 100), _phase("500/s", 500, 300, 198, 300)]}
    _write(tmp_path / "2026-01-04", {"chat_bench": late, "chat_bench_postgres": lost})
    goals = _goal_results(report.write_report(tmp_path / "2026-01-04").read_text())
    assert goals["sent, not refused, never delivered: all chat phases (SQLite)"] == "✅ met"
    assert goals["sent, not refused, never delivered: all chat phases (PostgreSQL)"] == "❌ missed"
