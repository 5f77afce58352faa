"""`append_once`, the batch's idempotent Delta append: it commits the files and the app
transaction together, skips a transaction the table already holds, leaves a new table or a new
column to Delta's writer, and runs one Spark job where the writer with `txnAppId` runs four.
delta-rs, an independent reader, sees the same transactions Delta's own writer records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conveyor.delta_rs import open_table
from conveyor.spark.jvm import append_once


def _rows(spark: Any, first: int, count: int = 5) -> Any:
    return spark.createDataFrame(
        [(i, f"event-{i}", "2026-12-04") for i in range(first, first + count)],
        "id BIGINT, name STRING, day STRING",
    )


def _writer_append(frame: Any, uri: str, app_id: str, version: int) -> None:
    (
        frame.write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", version)
        .partitionBy("day")
        .save(uri)
    )


def _jobs(spark: Any, group: str, work: Any) -> tuple[Any, int]:
    context = spark.sparkContext
    context.setJobGroup(group, group)
    try:
        result = work()
    finally:
        context.setLocalProperty("spark.jobGroup.id", None)
    return result, len(context.statusTracker().getJobIdsForGroup(group))


def test_append_once_commits_once_and_records_the_transaction(spark: Any, tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/table"
    assert append_once(_rows(spark, 0), uri, "app-a", 0) is None, "no table: the writer's job"
    _writer_append(_rows(spark, 0), uri, "app-a", 0)

    assert append_once(_rows(spark, 5), uri, "app-a", 1) == 1
    assert append_once(_rows(spark, 10), uri, "app-a", 2) == 2
    # a replayed batch (same app id, same or older version) writes nothing
    assert append_once(_rows(spark, 10), uri, "app-a", 2) == 2
    assert append_once(_rows(spark, 5), uri, "app-a", 1) == 2
    # another app id (a new checkpoint) is its own sequence
    assert append_once(_rows(spark, 100), uri, "app-b", 0) == 3

    ids = sorted(r["id"] for r in spark.read.format("delta").load(uri).collect())
    assert ids == [*range(15), *range(100, 105)]
    table = open_table(uri)
    assert table is not None
    assert table.transaction_version("app-a") == 2
    assert table.transaction_version("app-b") == 0
    assert table.metadata().partition_columns == ["day"]
    assert all("/day=2026-12-04/" in f for f in table.file_uris()), table.file_uris()


def test_append_once_leaves_a_new_column_to_the_writer(spark: Any, tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/table"
    _writer_append(_rows(spark, 0), uri, "app", 0)
    wider = _rows(spark, 5).selectExpr("*", "'x' AS extra")
    assert append_once(wider, uri, "app", 1) is None
    assert spark.read.format("delta").load(uri).count() == 5


def test_append_once_runs_fewer_spark_jobs_than_the_writer(spark: Any, tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/table"
    _writer_append(_rows(spark, 0), uri, "app", 0)
    _, writer_jobs = _jobs(spark, "writer", lambda: _writer_append(_rows(spark, 5), uri, "app", 1))
    version, own_jobs = _jobs(spark, "once", lambda: append_once(_rows(spark, 10), uri, "app", 2))
    assert version == 2
    # the writer rebuilds the snapshot state to look the app id up; append_once reads the
    # checksum file and runs only the write
    assert own_jobs < writer_jobs, (own_jobs, writer_jobs)
    assert own_jobs == 1, own_jobs
