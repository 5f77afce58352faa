"""The benchmark harness works end to end (`--quick`): every contender's code path drains once and
lands every event exactly once, and the report, the JSON and the chart are written. Speed is
reported, never asserted.

The live runs, the steady state over history, the fixed cost and the lone events are further
measurements of the same code paths (the scripts drained here, the ingest the other tests
prove), each a JVM start or more: the full benchmark runs them, this test does not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO


def test_quick_benchmark_lands_every_event_once_per_contender(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "results"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks/ingest.py"),
            "--quick",
            *("--skip-latency", "--steady-state-rows", "0", "--fixed-cost-rounds", "0"),
            *("--single-events", "0", "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=1500,
        check=False,
    )
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    figures = json.loads((out / "results.json").read_text())
    events = figures["args"]["events"]
    # one drain per code path: the docs script's default trigger is the full benchmark's only
    assert set(figures["drain"]) == {
        "conveyor",
        "docs-medallion",
        "docs-baseline@conveyor-trigger",
        "delta-rs consumer",
        "ceiling: count bytes",
        "ceiling: parse + parquet",
    }
    for name, runs in figures["drain"].items():
        for run in runs:
            assert (run["rows"], run["duplicates"], run["correct"]) == (events, 0, True), name
            assert run["events_per_s"] > 0 and run["cpu_s"] >= 0, name
            if "table" in run:  # the writers run long enough for their CPU to be sampled
                assert run["cpu_s"] > 0 and run["files"] >= 1, name
    assert figures["latency_rates"] == [] and figures["latency"] == {}
    assert set(figures["query"]) == {
        "conveyor",
        "docs-medallion",
        "docs-baseline@conveyor-trigger",
        "delta-rs consumer",
    }
    # every conveyor batch accounts for its steps in the ledger
    (conveyor,) = figures["drain"]["conveyor"]
    assert conveyor["batches"] and all(b["parse_ms"] is not None for b in conveyor["batches"])
    assert "steady_state" not in figures and "fixed_cost" not in figures
    report = (out / "report.md").read_text()
    assert "## Backlog drain" in report and "| conveyor |" in report
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
