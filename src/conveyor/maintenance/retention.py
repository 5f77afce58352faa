"""How much history VACUUM must keep: the safe retention of a table.

    safe = max(catalog vacuum_retention, Delta's 7-day minimum, longest stream lag + 1 day)

The longest stream lag is read from the ledger (one row per micro-batch, with started_at and
ended_at): the largest gap between consecutive batches of the stream (how long it was stopped
or stalled) plus its longest batch (how long one batch may still read an older snapshot). A
stream, or a reader that lags the same way, can then still read every file of the snapshot it
started from. The margin covers clock skew and a run that is slower than any seen so far.
Delta counts retention in whole hours, so VACUUM is given the safe retention rounded up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from conveyor.catalog import DELTA_MIN_VACUUM_RETENTION, StreamSpec, TableRef, ledger_uri
from conveyor.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LAG_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class RetentionRule:
    """The terms of the safe retention of one table, kept for the message that explains it."""

    table: str
    catalog: timedelta
    delta_minimum: timedelta
    longest_gap: timedelta
    longest_batch: timedelta
    margin: timedelta = LAG_MARGIN

    @property
    def stream_lag(self) -> timedelta:
        return self.longest_gap + self.longest_batch

    @property
    def safe(self) -> timedelta:
        return max(self.catalog, self.delta_minimum, self.stream_lag + self.margin)

    def explain(self) -> str:
        return (
            f"the largest of the catalog's vacuum_retention "
            f"({span(self.catalog)}), Delta's minimum ({span(self.delta_minimum)}) and the "
            f"longest stream lag seen in the ledger ({span(self.stream_lag)}: gap "
            f"{span(self.longest_gap)} + batch {span(self.longest_batch)}) plus a "
            f"{span(self.margin)} margin"
        )


def static_floor(ref: TableRef) -> timedelta:
    """The part of the safe retention known without Spark (the ledger can only raise it)."""
    return max(ref.maintenance.vacuum_retention, DELTA_MIN_VACUUM_RETENTION)


def safe_retention(
    spark: SparkSession, settings: Settings, stream: StreamSpec, ref: TableRef
) -> RetentionRule:
    """The table's retention rule, with the stream's lag measured in the ledger."""
    gap, batch = observed_lag(spark, settings, stream.name)
    return RetentionRule(
        table=ref.name,
        catalog=ref.maintenance.vacuum_retention,
        delta_minimum=DELTA_MIN_VACUUM_RETENTION,
        longest_gap=gap,
        longest_batch=batch,
    )


def observed_lag(
    spark: SparkSession, settings: Settings, stream: str
) -> tuple[timedelta, timedelta]:
    """(largest gap between consecutive batches, longest batch) of the stream; zeros when the
    ledger has no batches for it."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from conveyor.maintenance.stats import table_exists

    uri = ledger_uri(settings)
    if not table_exists(spark, uri):
        return timedelta(0), timedelta(0)
    order = Window.partitionBy("stream").orderBy("started_at")
    micros = F.unix_micros
    row = (
        spark.read.format("delta")
        .load(uri)
        .where((F.col("stream") == stream) & (F.col("kind") == "batch"))
        .withColumn("previous_end", F.lag("ended_at").over(order))
        .agg(
            F.max(micros(F.col("started_at")) - micros(F.col("previous_end"))).alias("gap"),
            F.max(micros(F.col("ended_at")) - micros(F.col("started_at"))).alias("batch"),
        )
        .first()
    )
    gap = row["gap"] if row and row["gap"] is not None else 0
    batch = row["batch"] if row and row["batch"] is not None else 0
    return timedelta(microseconds=max(gap, 0)), timedelta(microseconds=max(batch, 0))


def whole_hours(value: timedelta) -> int:
    """Delta's VACUUM takes whole hours: round up, never below what was asked."""
    return math.ceil(value.total_seconds() / 3600)


def span(value: timedelta) -> str:
    """`8d 2h`, `3m 12s`, `0s`: at most two units, to the second."""
    seconds = round(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts[:2]) or "0s"
