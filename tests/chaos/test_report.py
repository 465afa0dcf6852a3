"""The chaos report writer merges rows by scenario name and renders the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.chaos import _report


@pytest.fixture
def report_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CHAINCHAT_CHAOS_REPORT_DIR", str(tmp_path))
    return tmp_path


def test_rows_merge_by_scenario_name(report_dir: Path) -> None:
    _report.record("kill chat", "4 senders x 5/s", 120, 0, 0, 1.5)
    _report.record("nats cluster node down", "2 senders", 40, 0, 0, None, note="R3")
    _report.record("kill chat", "4 senders x 5/s", 130, 1, 2, 2.25)

    rows = json.loads((report_dir / "report.json").read_text())["rows"]
    assert [r["scenario"] for r in rows] == ["kill chat", "nats cluster node down"]
    assert rows[0]["acknowledged"] == 130
    assert rows[0]["lost"] == 1
    assert rows[0]["duplicated"] == 2
    markdown = (report_dir / "report.md").read_text()
    assert "| kill chat | 4 senders x 5/s | 130 | 1 | 2 | 2.25 |  |" in markdown
    assert "| nats cluster node down | 2 senders | 40 | 0 | 0 | n/a | R3 |" in markdown
    assert "2 scenarios, 170 acknowledged operations, 1 lost, 2 duplicated" in markdown


def test_negative_counts_are_refused(report_dir: Path) -> None:
    with pytest.raises(ValueError, match="lost"):
        _report.record("x", "", 1, -1, 0, None)
    assert not (report_dir / "report.json").exists()
