"""One micro-batch of one stream: bronze, silver, quarantine and the ledger, exactly once.

Every Delta write carries `txnAppId` (the checkpoint's app id) and `txnVersion` (the batch id),
so a batch Spark replays after a crash skips the writes that already committed. Everything a
batch decides (validity, lateness, duplicates) is derived from its input and from tables as
they were before it, so a replay decides the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from conveyor.catalog import Layer, StreamSpec, ledger_uri, table_uri
from conveyor.ingest import quality
from conveyor.ingest.bronze import to_bronze
from conveyor.ingest.ledger import (
    LedgerEntry,
    PartitionRange,
    append_entry,
    previous_max_event_time,
)
from conveyor.ingest.offsets import commit_monitoring_offsets
from conveyor.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

KAFKA_COORDINATES = ("topic", "partition", "offset")
QUARANTINE_COLUMNS = (
    "value",
    "key",
    "topic",
    "partition",
    "offset",
    "kafka_timestamp",
    "reason_code",
    "reason",
    "ingest_time",
    "ingest_date",
)


@dataclass(frozen=True)
class StreamTarget:
    """Where one stream lands, resolved once per run."""

    stream: StreamSpec
    app_id: str
    bronze: str
    silver: str
    quarantine: str
    ledger: str
    monitoring_group: str

    @classmethod
    def resolve(cls, settings: Settings, stream: StreamSpec, app_id: str) -> StreamTarget:
        return cls(
            stream=stream,
            app_id=app_id,
            bronze=table_uri(settings, stream.table(Layer.BRONZE)),
            silver=table_uri(settings, stream.table(Layer.SILVER)),
            quarantine=table_uri(settings, stream.table(Layer.QUARANTINE)),
            ledger=ledger_uri(settings),
            monitoring_group=f"conveyor.{stream.name}",
        )


def silver_columns(stream: StreamSpec) -> list[str]:
    return [
        *stream.event_schema.fields,
        quality.EVENT_DATE,
        *KAFKA_COORDINATES,
        "kafka_timestamp",
        "ingest_time",
    ]


def process_batch(
    spark: SparkSession, settings: Settings, target: StreamTarget, batch: DataFrame, batch_id: int
) -> LedgerEntry | None:
    """Land one micro-batch in every table and the ledger; None for an empty batch."""
    from pyspark.sql import functions as F

    started = datetime.now(UTC)
    rows = to_bronze(batch).persist()
    try:
        ranges = _offset_ranges(rows)
        if not ranges:
            return None
        stream = target.stream
        bronze_rows = sum(r.end_offset - r.start_offset for r in ranges)
        bronze_version = _append(rows, target.bronze, target, batch_id, ["ingest_date"])

        previous_max = previous_max_event_time(
            spark, target.ledger, stream.name, target.app_id, batch_id
        )
        assessed = quality.assess(rows, stream.event_schema).persist()
        watermark = previous_max - stream.event_schema.late_tolerance if previous_max else None
        classified = _classify(assessed, watermark)
        valid = classified.where(F.size(quality.PROBLEMS) == 0)
        silver, duplicates = _deduplicate(spark, valid, target, stream)
        silver = silver.select(*silver_columns(stream)).persist()
        silver_rows = silver.count()
        silver_version = _append(silver, target.silver, target, batch_id, ["event_date"])
        quarantine = _quarantine_rows(classified).persist()
        quarantined = quarantine.count()
        quarantine_version = _append(
            quarantine, target.quarantine, target, batch_id, ["ingest_date"]
        )

        stats = silver.agg(
            F.max(F.col(stream.event_schema.event_time)).alias("max_time"),
            F.collect_set(quality.EVENT_DATE).alias("dates"),
        ).first()
        event_dates = sorted(stats["dates"]) if stats else []
        late_dates = [d for d in event_dates if previous_max and d < previous_max.date()]
        newest = [t for t in (stats["max_time"] if stats else None, previous_max) if t]
        entry = LedgerEntry(
            stream=stream.name,
            kind="batch",
            app_id=target.app_id,
            batch_id=batch_id,
            started_at=started,
            ended_at=datetime.now(UTC),
            offsets=ranges,
            rows_read=bronze_rows,
            bronze_rows=bronze_rows,
            silver_rows=silver_rows,
            quarantined=quarantined,
            duplicates_dropped=duplicates,
            bronze_version=bronze_version,
            silver_version=silver_version,
            quarantine_version=quarantine_version,
            event_dates=event_dates,
            late_dates=late_dates,
            max_event_time=max(newest) if newest else None,
        )
        append_entry(spark, target.ledger, entry)
        silver.unpersist()
        quarantine.unpersist()
        assessed.unpersist()
    finally:
        rows.unpersist()
    try:
        commit_monitoring_offsets(settings, target.monitoring_group, ranges)
    except Exception as exc:  # monitoring only: never fail a landed batch over it
        log.warning("could not update monitoring group %s: %s", target.monitoring_group, exc)
    return entry


def _offset_ranges(rows: DataFrame) -> list[PartitionRange]:
    from pyspark.sql import functions as F

    found = (
        rows.groupBy("topic", "partition")
        .agg(F.min("offset").alias("lo"), F.max("offset").alias("hi"))
        .collect()
    )
    return sorted(
        (PartitionRange(r["topic"], r["partition"], r["lo"], r["hi"] + 1) for r in found),
        key=lambda r: (r.topic, r.partition),
    )


def _classify(assessed: DataFrame, watermark: datetime | None) -> DataFrame:
    """Add the too-late problem to otherwise valid events older than the watermark."""
    from pyspark.sql import functions as F

    if watermark is None:
        return assessed
    too_late = quality.problem(
        quality.QuarantineReason.TOO_LATE,
        F.format_string(
            f"event time %s is behind the stream's watermark {watermark:%Y-%m-%d %H:%M:%S} "
            "(newest event time seen minus the late-data tolerance)",
            F.col(quality.EVENT_TIME).cast("string"),
        ),
    )
    late = (F.size(quality.PROBLEMS) == 0) & (F.col(quality.EVENT_TIME) < F.lit(watermark))
    return assessed.withColumn(
        quality.PROBLEMS, F.when(late, F.array(too_late)).otherwise(F.col(quality.PROBLEMS))
    )


def _deduplicate(
    spark: SparkSession, valid: DataFrame, target: StreamTarget, stream: StreamSpec
) -> tuple[DataFrame, int]:
    """Drop repeats of the dedup key within the batch and against silver (within the
    late-data tolerance). Returns the rows to land and how many were dropped."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = list(stream.event_schema.dedup_key)
    if not keys:
        return valid, 0
    first = Window.partitionBy(*keys).orderBy("kafka_timestamp", "partition", "offset")
    ranked = valid.withColumn("_rank", F.row_number().over(first))
    candidates = ranked.where(F.col("_rank") == 1).drop("_rank")
    within_batch = ranked.where(F.col("_rank") > 1).count()

    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, target.silver):
        return candidates, within_batch
    bounds = candidates.agg(
        F.min(quality.EVENT_DATE).alias("lo"), F.max(quality.EVENT_DATE).alias("hi")
    ).first()
    if not bounds or bounds["lo"] is None:
        return candidates, within_batch
    margin = timedelta(days=1) + stream.event_schema.late_tolerance
    window_lo, window_hi = bounds["lo"] - margin, bounds["hi"] + margin
    existing = (
        spark.read.format("delta")
        .load(target.silver)
        .where(F.col(quality.EVENT_DATE).between(F.lit(window_lo), F.lit(window_hi)))
        .select(*keys, F.struct(*KAFKA_COORDINATES).alias("_seen_at"))
    )
    here = F.struct(*[F.col(c) for c in KAFKA_COORDINATES])
    # a key already in silver from another Kafka record is a duplicate; the same record
    # (a replayed batch) is not
    joined = candidates.join(existing, on=keys, how="left")
    is_repeat = F.col("_seen_at").isNotNull() & (F.col("_seen_at") != here)
    marked = joined.withColumn("_repeat", is_repeat)
    flags = marked.groupBy(*KAFKA_COORDINATES).agg(F.max("_repeat").alias("_dup"))
    kept = candidates.join(flags, on=list(KAFKA_COORDINATES)).where(~F.col("_dup")).drop("_dup")
    across = flags.where(F.col("_dup")).count()
    return kept, within_batch + across


def _quarantine_rows(classified: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    problems = F.col(quality.PROBLEMS)
    return classified.where(F.size(problems) > 0).select(
        "value",
        "key",
        "topic",
        "partition",
        "offset",
        "kafka_timestamp",
        problems[0]["code"].alias("reason_code"),
        F.array_join(F.transform(problems, lambda p: p["message"]), "; ").alias("reason"),
        "ingest_time",
        "ingest_date",
    )


def _append(
    frame: DataFrame, uri: str, target: StreamTarget, batch_id: int, partition_by: list[str]
) -> int | None:
    """Idempotent append (skipped by Delta when this app id already wrote this batch).
    Returns the table's version afterwards."""
    from delta.tables import DeltaTable

    (
        frame.write.format("delta")
        .mode("append")
        .option("txnAppId", target.app_id)
        .option("txnVersion", batch_id)
        .partitionBy(*partition_by)
        .save(uri)
    )
    history = DeltaTable.forPath(frame.sparkSession, uri).history(1).select("version").first()
    return int(history["version"]) if history else None
