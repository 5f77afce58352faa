"""`conveyor demo` (what `make demo` runs) on the test stack: the pipeline end to end, and output
a person can read: Conveyor's summary only, with Spark's own output in the file it names.

The demo runs on a renamed copy of the shipped catalog, so its events never reach the shipped
streams that the plugin test fills with known data. The DAGs it runs in Airflow read the catalog
the stack's Airflow was started with (the shipped one, whose topics hold nothing yet): what is
checked of them here is that each ran once through the REST API, succeeded and is paused."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from conveyor.airflow_api import AirflowApi
from conveyor.demo import DEMO_DAGS
from tests.catalogs import catalog_variant, stream_named

NOISE = re.compile(r"\bWARN\b|\bINFO\b|Deleted \d+ files|Exception|\tat |Traceback")


def test_demo_runs_end_to_end_and_prints_only_its_summary(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    catalog = catalog_variant(tmp_path)
    clicks = stream_named(catalog, "clicks")
    assert catalog.stream_names[0] == clicks  # the stream that gets --events
    conveyor = str(Path(sys.executable).parent / "conveyor")
    result = subprocess.run(
        [conveyor, "demo", "--events", "300"],
        capture_output=True,
        text=True,
        timeout=1200,
        # the test stack's CONVEYOR_HOME
        env={**os.environ, "CONVEYOR_CATALOG": str(tmp_path / "conveyor.yaml")},
        check=False,
    )
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed[-4000:]
    for step in ("2. Kafka topics", "4. Spark: ingest", "5. maintenance", "6. analytics"):
        assert step in printed, (step, printed[-4000:])
    assert "7. Airflow" in printed, printed[-4000:]
    # what the UI shows afterwards: one successful demo run of each DAG, and the DAGs paused
    api = AirflowApi(stack["airflow_url"], stack["airflow_user"], stack["airflow_password"])
    for dag_id in DEMO_DAGS:
        runs = api.runs(dag_id)
        demo_runs = [r for r in runs if r["dag_run_id"].startswith("conveyor_demo__")]
        assert [r["state"] for r in demo_runs] == ["success"], (dag_id, runs)
        assert api.active_runs(dag_id) == [], dag_id  # the scheduler added none of its own
        dag = api.dag(dag_id)
        assert dag is not None and dag["is_paused"] is True, dag_id
    assert re.search(rf"{clicks}\s*│\s*300\s*│", printed), printed  # the ingest table's row
    noise = [line for line in printed.splitlines() if NOISE.search(line)]
    assert noise == [], noise[:10]
    assert "…" not in printed, "a table was cut to 80 columns"
    found = re.search(r"log lines go to (\S+)", printed)
    assert found, printed[:2000]
    log = Path(found.group(1)).read_text()
    spark_output = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d WARN |^Deleted \d+ files", re.M)
    assert spark_output.search(log), log[:2000]  # what the JVM printed
    assert "steps (ms)" in log, log[-2000:]  # Conveyor's per-batch lines
