"""The ledger: one row per micro-batch per stream (and one per accepted data gap).

It is the pipeline's account book: offsets read per partition, rows landed in each table,
duplicates dropped, Delta versions written, event dates touched (late ones flagged), timings.
Analytics reads it to recompute exactly the days that late events changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LEDGER_FIELDS = (
    ("stream", "STRING"),
    ("kind", "STRING"),
    ("app_id", "STRING"),
    ("batch_id", "BIGINT"),
    (
        "offsets",
        "ARRAY<STRUCT<topic: STRING, partition: INT, start_offset: BIGINT, end_offset: BIGINT>>",
    ),
    (
        "gaps",
        "ARRAY<STRUCT<topic: STRING, partition: INT, from_offset: BIGINT, to_offset: BIGINT>>",
    ),
    ("rows_read", "BIGINT"),
    ("bronze_rows", "BIGINT"),
    ("silver_rows", "BIGINT"),
    ("quarantined", "BIGINT"),
    ("duplicates_dropped", "BIGINT"),
    ("bronze_version", "BIGINT"),
    ("silver_version", "BIGINT"),
    ("quarantine_version", "BIGINT"),
    ("event_dates", "ARRAY<DATE>"),
    ("late_dates", "ARRAY<DATE>"),
    ("max_event_time", "TIMESTAMP"),
    ("started_at", "TIMESTAMP"),
    ("ended_at", "TIMESTAMP"),
    ("backlog", "BIGINT"),  # records Kafka held beyond the batch when it ended
)
LEDGER_SCHEMA = ", ".join(f"{name} {kind}" for name, kind in LEDGER_FIELDS)
LEDGER_COLUMNS = [name for name, _ in LEDGER_FIELDS]


@dataclass(frozen=True)
class PartitionRange:
    """Offsets a batch read from one partition: start inclusive, end exclusive."""

    topic: str
    partition: int
    start_offset: int
    end_offset: int


@dataclass(frozen=True)
class Gap:
    """Offsets that Kafka no longer held when the stream needed them: [from, to)."""

    topic: str
    partition: int
    from_offset: int
    to_offset: int

    def describe(self) -> str:
        return f"{self.topic}-{self.partition}: offsets {self.from_offset}..{self.to_offset - 1}"


@dataclass
class LedgerEntry:
    """One ledger row."""

    stream: str
    kind: str  # "batch" or "gap"
    app_id: str
    batch_id: int
    started_at: datetime
    ended_at: datetime
    offsets: list[PartitionRange] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    rows_read: int = 0
    bronze_rows: int = 0
    silver_rows: int = 0
    quarantined: int = 0
    duplicates_dropped: int = 0
    bronze_version: int | None = None
    silver_version: int | None = None
    quarantine_version: int | None = None
    event_dates: list[date] = field(default_factory=list)
    late_dates: list[date] = field(default_factory=list)
    max_event_time: datetime | None = None
    backlog: int | None = None  # records Kafka held beyond the batch when it ended (lag)

    def as_row(self) -> dict[str, Any]:
        row = dict(self.__dict__)
        row["offsets"] = [r.__dict__ for r in self.offsets]
        row["gaps"] = [g.__dict__ for g in self.gaps]
        return row


def append_entry(spark: SparkSession, uri: str, entry: LedgerEntry, *, txn: bool = True) -> None:
    """Append one row. Batch rows are idempotent per (app id, batch id) through Delta txn ids."""
    frame = spark.createDataFrame([entry.as_row()], LEDGER_SCHEMA)
    # mergeSchema: ledgers written before a column was added take it on
    writer = (
        frame.write.format("delta")
        .mode("append")
        .option("mergeSchema", "true")
        .partitionBy("stream")
    )
    if txn:
        writer = writer.option("txnAppId", entry.app_id).option("txnVersion", entry.batch_id)
    writer.save(uri)


def table_exists(spark: SparkSession, uri: str) -> bool:
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, uri))


def previous_max_event_time(
    spark: SparkSession, uri: str, stream: str, app_id: str, batch_id: int
) -> datetime | None:
    """Newest event time landed by this stream's earlier batches (deterministic on replay)."""
    from pyspark.sql import functions as F

    if not table_exists(spark, uri):
        return None
    row = (
        spark.read.format("delta")
        .load(uri)
        .where((F.col("stream") == stream) & (F.col("kind") == "batch"))
        .where(~((F.col("app_id") == app_id) & (F.col("batch_id") >= batch_id)))
        .agg(F.max("max_event_time").alias("m"))
        .first()
    )
    return row["m"] if row else None


def recorded_gaps(spark: SparkSession, uri: str, stream: str) -> set[Gap]:
    from pyspark.sql import functions as F

    if not table_exists(spark, uri):
        return set()
    rows = (
        spark.read.format("delta")
        .load(uri)
        .where((F.col("stream") == stream) & (F.col("kind") == "gap"))
        .select(F.explode("gaps").alias("g"))
        .select("g.*")
        .collect()
    )
    return {Gap(r["topic"], r["partition"], r["from_offset"], r["to_offset"]) for r in rows}
