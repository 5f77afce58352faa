"""The analytics DAG against the test stack: its sensor defers until the click stream's
watermark passes the day (read by the triggerer through the lake connection), then the gold
tables are computed with spark-submit, from the hand-made story (`tests.analytics_story`)."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conveyor import connections
from conveyor.analytics import GOLD_TABLES
from conveyor.catalog import Catalog
from conveyor.settings import Settings
from conveyor.stack.process import wait_until
from tests.analytics_story import D1, D2, answers, at, expected, ledger_row, run_log, write_story


@pytest.fixture
def lake(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose lake is a fresh folder of the test stack's HDFS."""
    path = f"/lake-tests/analytics-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CONVEYOR_LAKE_PATH", path)
    return Settings()


@pytest.fixture
def story(spark: Any, lake: Settings, tmp_path: Path) -> Catalog:
    return write_story(spark, lake, tmp_path / "catalog")


def test_dag_waits_for_the_watermark_and_computes_the_day(
    spark: Any, lake: Settings, story: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    import conveyor.provider.triggers.watermark as triggers
    from tests.conftest import REPO

    # at first the click stream has landed events up to D2 01:00 only: its watermark (minus the
    # 2h tolerance) is short of the end of D1 plus the session gap, so the sensor defers
    ledger_row(spark, lake, story, [D1], started=datetime(2026, 3, 2), newest=at(D2, "01:00:00"))
    monkeypatch.setenv("CONVEYOR_CATALOG", str(story.source))
    monkeypatch.setenv("CONVEYOR_SENSOR_POKE_INTERVAL_S", "1")
    # the sensor, its trigger and the Spark job find this test's lake through the connection
    lake_connection = {
        "conn_type": "hdfs",
        "host": lake.fs_uri,
        "extra": {"lake_path": lake.lake_path, "checkpoint_path": lake.checkpoint_path},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{connections.LAKE.upper()}", json.dumps(lake_connection))
    monkeypatch.delenv("CONVEYOR_LAKE_PATH")  # so only the connection can say where it is
    looks: list[datetime | None] = []
    real = triggers.watermark_of

    def counted(
        stream: str, settings: Settings, catalog_path: str | None = None
    ) -> datetime | None:
        looks.append(real(stream, settings, catalog_path))
        return looks[-1]

    monkeypatch.setattr(triggers, "watermark_of", counted)
    monkeypatch.setattr("conveyor.provider.sensors.watermark.watermark_of", counted)

    def stream_moves_on() -> None:
        # after the sensor looked and its trigger looked again, events up to D3 12:00 land
        wait_until(lambda: len(looks) >= 2, 120, what="the sensor and its trigger to look")
        ledger_row(spark, lake, story, [D1, D2], started=datetime(2026, 3, 4), batch_id=1)

    helper = threading.Thread(target=stream_moves_on)
    helper.start()

    bag = DagBag(dag_folder=str(REPO / "dags" / "conveyor_clickstream_analytics.py"))
    assert bag.import_errors == {}
    dag = bag.get_dag("conveyor_clickstream_analytics")
    (compute,) = [t for t in dag.tasks if t.task_id == "compute_gold_tables"]
    assert {a.uri.rsplit("/", 1)[-1] for a in compute.outlets} == {t.name for t in GOLD_TABLES}

    # a run at D2 00:00 covers the interval that just ended: D1
    run = dag.test(logical_date=datetime(2026, 3, 2, tzinfo=UTC))
    helper.join(timeout=130)
    assert looks[0] is not None and looks[0] < datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    assert looks[-1] is not None and looks[-1] >= datetime(2026, 3, 2, 0, 30, tzinfo=UTC)

    assert run.state == "success"
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {
        "wait_for_watermark": "success",
        "compute_gold_tables": "success",
    }
    assert [(r.date, r.reason) for r in run_log(spark, lake)] == [(D1, "requested")]
    assert answers(spark, lake, D1) == expected(D1)
