"""Pruning a cdc stream's hard-delete markers past their retention.

A hard delete leaves a marker (key, LSN, `_deleted_at`) in the stream's `delete_markers` table so
that an older change the connector re-sends cannot bring the row back. Connect re-sends only from
its last flushed offset, so past the catalog's `cdc.delete_marker_retention` no such change can
arrive and the marker can go. `vacuum_table` prunes them before it vacuums that table, so the CLI
and the maintenance DAG do the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from conveyor.catalog import CdcTable, StreamSpec, table_uri
from conveyor.maintenance.stats import latest_version, table_exists
from conveyor.settings import Settings
from conveyor.spark.conflicts import retry_conflicts

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

HISTORY_SCAN = 20  # commits searched for the DELETE (the ingest's MERGEs may follow it)


def prune_markers(
    spark: SparkSession, settings: Settings, stream: StreamSpec, now: datetime | None = None
) -> int:
    """Delete the stream's markers whose delete (by the source's commit time) is older than its
    `delete_marker_retention`; returns how many. 0 for a stream without markers."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    if CdcTable.DELETE_MARKERS not in stream.cdc_tables:
        return 0
    uri = table_uri(settings, stream.table(CdcTable.DELETE_MARKERS))
    if not table_exists(spark, uri):
        return 0
    horizon = (now or datetime.now(UTC)) - stream.cdc_spec.delete_marker_retention
    before = latest_version(spark, uri)
    retry_conflicts(
        lambda: DeltaTable.forPath(spark, uri).delete(F.col("_deleted_at") < F.lit(horizon)),
        f"the delete-marker pruning of {uri}",
        attempts=10,
    )
    # the DELETE's commit, if it made one (no marker matched: none); the ingest may commit after
    deletes = (
        DeltaTable.forPath(spark, uri)
        .history(HISTORY_SCAN)
        .where((F.col("version") > before) & (F.col("operation") == "DELETE"))
        .select("operationMetrics")
        .collect()
    )
    return sum(int((r["operationMetrics"] or {}).get("numDeletedRows", 0)) for r in deletes)
