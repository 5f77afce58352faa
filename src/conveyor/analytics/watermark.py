"""A stream's watermark, from the ingest ledger: the newest event time landed minus the
stream's late-data tolerance. Events older than the watermark are quarantined as `too_late`, so
once it has passed a moment, no event before that moment can still arrive."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from conveyor.catalog import StreamSpec, ledger_uri
from conveyor.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def stream_watermark(
    spark: SparkSession, settings: Settings, stream: StreamSpec
) -> datetime | None:
    """The stream's watermark (naive UTC), or None when nothing was landed yet."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    uri = ledger_uri(settings)
    if not DeltaTable.isDeltaTable(spark, uri):
        return None
    row = (
        spark.read.format("delta")
        .load(uri)
        .where((F.col("stream") == stream.name) & (F.col("kind") == "batch"))
        .agg(F.max("max_event_time").alias("newest"))
        .first()
    )
    newest: datetime | None = row["newest"] if row else None
    return newest - stream.event_schema.late_tolerance if newest else None
