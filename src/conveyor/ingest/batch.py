"""One micro-batch of one stream: bronze, silver, quarantine and the ledger, exactly once.

Every Delta write carries `txnAppId` (the checkpoint's app id) and `txnVersion` (the batch id),
so a batch Spark replays after a crash skips the writes that already committed. Everything a
batch decides (validity, lateness, duplicates) is derived from its input and from tables as
they were before it, so a replay decides the same. An empty silver or quarantine share is not
written once its table exists (the first batch creates every table, empty or not).

The work per batch is kept to a fixed number of Spark jobs: the records are routed once (to
silver, quarantine or "duplicate"), one aggregate gives every count the ledger needs, then each
table gets one append.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from conveyor.catalog import Layer, StreamSpec, TableRef, ledger_uri, table_uri
from conveyor.ingest import quality
from conveyor.ingest.bronze import BRONZE_COLUMNS, to_bronze
from conveyor.ingest.ledger import (
    LedgerEntry,
    PartitionRange,
    append_entry,
    previous_max_event_time,
    table_exists,
)
from conveyor.ingest.offsets import MonitoringGroup
from conveyor.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

KAFKA_COORDINATES = ("topic", "partition", "offset")
DESTINATION = "_destination"
TO_SILVER, TO_QUARANTINE, DUPLICATE = "silver", "quarantine", "duplicate"
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

    def table(self, layer: Layer) -> TableRef:
        return self.stream.table(layer)

    def uri(self, layer: Layer) -> str:
        match layer:
            case Layer.BRONZE:
                return self.bronze
            case Layer.SILVER:
                return self.silver
            case Layer.QUARANTINE:
                return self.quarantine


@dataclass
class RunState:
    """What one run of a stream carries from batch to batch, so a batch need not re-read it:
    the newest event time landed so far and whether silver exists. On the first batch of a run
    (and on any batch id it did not expect) it is read from the tables instead."""

    settings: Settings
    newest: datetime | None = None
    next_batch: int | None = None
    written: set[Layer] = field(default_factory=set)
    monitoring: MonitoringGroup | None = field(default=None, repr=False)

    def exists(self, spark: SparkSession, target: StreamTarget, layer: Layer) -> bool:
        """Whether the layer's table exists (looked at once per run, then remembered)."""
        if layer not in self.written and table_exists(spark, target.uri(layer)):
            self.written.add(layer)
        return layer in self.written

    def newest_before(
        self, spark: SparkSession, target: StreamTarget, batch_id: int
    ) -> datetime | None:
        """Newest event time landed by batches before batch_id (deterministic on replay)."""
        if self.next_batch != batch_id:
            self.newest = previous_max_event_time(
                spark, target.ledger, target.stream.name, target.app_id, batch_id
            )
        return self.newest

    def landed(self, batch_id: int, newest: datetime | None) -> None:
        if newest is not None:
            self.newest = max(newest, self.newest) if self.newest else newest
        self.next_batch = batch_id + 1

    def _group(self, target: StreamTarget) -> MonitoringGroup:
        if self.monitoring is None:
            self.monitoring = MonitoringGroup(self.settings, target.monitoring_group)
        return self.monitoring

    def backlog(self, target: StreamTarget, ranges: list[PartitionRange]) -> int | None:
        """Records left in Kafka after the batch, for the ledger; None when Kafka did not say
        (monitoring only: never fail a batch over it)."""
        try:
            return self._group(target).backlog(ranges)
        except Exception as exc:
            log.warning(
                "stream %s: could not read Kafka's end offsets: %s", target.stream.name, exc
            )
            self.close()
            return None

    def commit_offsets(self, target: StreamTarget, ranges: list[PartitionRange]) -> None:
        """Monitoring only: never fail a landed batch over it."""
        try:
            self._group(target).commit(ranges)
        except Exception as exc:
            log.warning("could not update monitoring group %s: %s", target.monitoring_group, exc)
            self.close()

    def close(self) -> None:
        if self.monitoring is not None:
            self.monitoring.close()
            self.monitoring = None


def silver_columns(stream: StreamSpec) -> list[str]:
    return [
        *stream.event_schema.fields,
        quality.EVENT_DATE,
        *KAFKA_COORDINATES,
        "kafka_timestamp",
        "ingest_time",
    ]


@dataclass(frozen=True)
class BatchCounts:
    """What one aggregate over the routed batch found."""

    ranges: list[PartitionRange]
    silver: int
    quarantined: int
    duplicates: int
    newest: datetime | None
    event_dates: list[date]

    @property
    def rows(self) -> int:
        return sum(r.end_offset - r.start_offset for r in self.ranges)


def process_batch(
    spark: SparkSession,
    target: StreamTarget,
    batch: DataFrame,
    batch_id: int,
    state: RunState,
) -> LedgerEntry | None:
    """Land one micro-batch in every table and the ledger; None for an empty batch."""
    started = datetime.now(UTC)
    stream = target.stream
    cached: list[DataFrame] = []
    try:
        previous_max = state.newest_before(spark, target, batch_id)
        watermark = previous_max - stream.event_schema.late_tolerance if previous_max else None
        # Kafka is read once, into this cache (the routing reads it twice); the parsed VARIANT
        # is dropped first, so the batch is held about once, not once per step.
        assessed = quality.assess(to_bronze(batch), stream.event_schema).drop(quality.PARSED)
        classified = _classify(assessed, watermark).persist()
        cached.append(classified)
        routed = _route(spark, classified, target, state, previous_max).persist()
        cached.append(routed)
        counts = _count(routed, stream)
        classified.unpersist()  # routed holds every column from here on
        if not counts.ranges:
            return None
        shares = {
            Layer.BRONZE: routed.select(*BRONZE_COLUMNS),
            Layer.SILVER: routed.where(F_dest(TO_SILVER)).select(*silver_columns(stream))
            if counts.silver or not state.exists(spark, target, Layer.SILVER)
            else None,
            Layer.QUARANTINE: _quarantine_rows(routed.where(F_dest(TO_QUARANTINE)))
            if counts.quarantined or not state.exists(spark, target, Layer.QUARANTINE)
            else None,
        }
        versions = _append_all(target, batch_id, shares)
        state.written.update(layer for layer, frame in shares.items() if frame is not None)
        late_dates = [d for d in counts.event_dates if previous_max and d < previous_max.date()]
        newest = [t for t in (counts.newest, previous_max) if t]
        entry = LedgerEntry(
            stream=stream.name,
            kind="batch",
            app_id=target.app_id,
            batch_id=batch_id,
            started_at=started,
            ended_at=datetime.now(UTC),
            offsets=counts.ranges,
            rows_read=counts.rows,
            bronze_rows=counts.rows,
            silver_rows=counts.silver,
            quarantined=counts.quarantined,
            duplicates_dropped=counts.duplicates,
            bronze_version=versions[Layer.BRONZE],
            silver_version=versions[Layer.SILVER],
            quarantine_version=versions[Layer.QUARANTINE],
            event_dates=counts.event_dates,
            late_dates=late_dates,
            max_event_time=max(newest) if newest else None,
            backlog=state.backlog(target, counts.ranges),
        )
        append_entry(spark, target.ledger, entry)
    finally:
        for frame in cached:
            frame.unpersist()
    state.landed(batch_id, counts.newest)
    state.commit_offsets(target, counts.ranges)
    return entry


def F_dest(destination: str) -> Column:
    from pyspark.sql import functions as F

    return F.col(DESTINATION) == destination


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


def _route(
    spark: SparkSession,
    classified: DataFrame,
    target: StreamTarget,
    state: RunState,
    previous_max: datetime | None,
) -> DataFrame:
    """Add DESTINATION: quarantine (any problem), duplicate (a repeat of the dedup key within
    the batch, or of a silver row within the late-data tolerance of its event time), or silver.
    The first of several repeats in a batch (by Kafka time, partition, offset) is kept."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    stream = target.stream
    keys = list(stream.event_schema.dedup_key)
    bad = F.size(F.col(quality.PROBLEMS)) > 0
    if not keys:
        return classified.withColumn(
            DESTINATION, F.when(bad, F.lit(TO_QUARANTINE)).otherwise(F.lit(TO_SILVER))
        )
    first = Window.partitionBy(*keys, F.col("_valid")).orderBy(
        "kafka_timestamp", "partition", "offset"
    )
    ranked = classified.withColumn("_valid", ~bad).withColumn(
        "_rank", F.when(~bad, F.row_number().over(first))
    )
    repeat_in_batch = F.col("_rank") > 1
    seen = _seen_in_silver(spark, ranked.where(~bad), target, state, previous_max)
    if seen is not None:
        ranked = ranked.join(seen, on=list(KAFKA_COORDINATES), how="left")
        repeat = repeat_in_batch | F.coalesce(F.col("_seen"), F.lit(False))
    else:
        repeat = repeat_in_batch
    destination = (
        F.when(bad, F.lit(TO_QUARANTINE)).when(repeat, F.lit(DUPLICATE)).otherwise(F.lit(TO_SILVER))
    )
    return ranked.withColumn(DESTINATION, destination).drop("_valid", "_rank", "_seen")


def _seen_in_silver(
    spark: SparkSession,
    valid: DataFrame,
    target: StreamTarget,
    state: RunState,
    previous_max: datetime | None,
) -> DataFrame | None:
    """Kafka coordinates of valid records whose dedup key is already in silver from another
    Kafka record, with an event time within the late-data tolerance (the same record, landed
    by an earlier attempt of this batch, is not a repeat). None when silver does not exist.

    Valid records are no older than the watermark (previous_max - tolerance), so their repeats
    in silver are no older than previous_max - 2 x tolerance: only that slice of silver is read
    (partition pruning by date, file skipping by the event time's stats). Without a previous
    maximum the batch's own event-time range bounds the slice."""
    from pyspark.sql import functions as F

    if not state.exists(spark, target, Layer.SILVER):
        return None
    stream = target.stream
    keys = list(stream.event_schema.dedup_key)
    tolerance = stream.event_schema.late_tolerance
    time_field = stream.event_schema.event_time
    existing = spark.read.format("delta").load(target.silver)
    if previous_max is not None:
        lo = previous_max - 2 * tolerance
        existing = existing.where(F.col(quality.EVENT_DATE) >= F.lit(lo.date())).where(
            F.col(time_field) >= F.lit(lo)
        )
    else:
        bounds = valid.agg(
            F.min(quality.EVENT_TIME).alias("lo"), F.max(quality.EVENT_TIME).alias("hi")
        ).first()
        if not bounds or bounds["lo"] is None:
            return None
        lo, hi = bounds["lo"] - tolerance, bounds["hi"] + tolerance
        existing = existing.where(
            F.col(quality.EVENT_DATE).between(F.lit(lo.date()), F.lit(hi.date()))
        ).where(F.col(time_field).between(F.lit(lo), F.lit(hi)))
    existing = existing.select(
        *keys,
        F.col(time_field).alias("_seen_time"),
        F.struct(*KAFKA_COORDINATES).alias("_seen_at"),
    )
    here = F.struct(*[F.col(c) for c in KAFKA_COORDINATES])
    near = F.abs(
        F.unix_micros(F.col(quality.EVENT_TIME)) - F.unix_micros(F.col("_seen_time"))
    ) <= F.lit(int(tolerance.total_seconds() * 1_000_000))
    matches = valid.select(*keys, quality.EVENT_TIME, *KAFKA_COORDINATES).join(existing, on=keys)
    return (
        matches.where(near & (F.col("_seen_at") != here))
        .select(*KAFKA_COORDINATES)
        .distinct()
        .withColumn("_seen", F.lit(True))
    )


def _count(routed: DataFrame, stream: StreamSpec) -> BatchCounts:
    """One job: offsets per partition, rows per destination, newest event time, event dates."""
    from pyspark.sql import functions as F

    to_silver = F.col(DESTINATION) == TO_SILVER
    per_partition = (
        routed.groupBy("topic", "partition")
        .agg(
            F.min("offset").alias("lo"),
            F.max("offset").alias("hi"),
            F.count(F.when(to_silver, 1)).alias("silver"),
            F.count(F.when(F.col(DESTINATION) == TO_QUARANTINE, 1)).alias("quarantined"),
            F.count(F.when(F.col(DESTINATION) == DUPLICATE, 1)).alias("duplicates"),
            F.max(F.when(to_silver, F.col(stream.event_schema.event_time))).alias("newest"),
            F.collect_set(F.when(to_silver, F.col(quality.EVENT_DATE))).alias("dates"),
        )
        .collect()
    )
    ranges = sorted(
        (PartitionRange(r["topic"], r["partition"], r["lo"], r["hi"] + 1) for r in per_partition),
        key=lambda r: (r.topic, r.partition),
    )
    newest = [r["newest"] for r in per_partition if r["newest"] is not None]
    return BatchCounts(
        ranges=ranges,
        silver=sum(r["silver"] for r in per_partition),
        quarantined=sum(r["quarantined"] for r in per_partition),
        duplicates=sum(r["duplicates"] for r in per_partition),
        newest=max(newest) if newest else None,
        event_dates=sorted({d for r in per_partition for d in r["dates"]}),
    )


def _quarantine_rows(classified: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    problems = F.col(quality.PROBLEMS)
    return classified.select(
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


def _append_all(
    target: StreamTarget, batch_id: int, shares: dict[Layer, DataFrame | None]
) -> dict[Layer, int | None]:
    """Append each table's share at once (separate tables: their commits never conflict, and
    one's file and commit I/O overlaps another's work). An empty share is not written.
    Returns each table's version afterwards (None when not written)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(shares), thread_name_prefix="append") as pool:
        futures = {
            layer: pool.submit(_append, frame, target.uri(layer), target, batch_id, layer)
            for layer, frame in shares.items()
            if frame is not None
        }
    # every write has ended here; the first failure is raised, the batch is retried as a whole
    return {layer: futures[layer].result() if layer in futures else None for layer in shares}


def _append(
    frame: DataFrame, uri: str, target: StreamTarget, batch_id: int, layer: Layer
) -> int | None:
    """Idempotent append (skipped by Delta when this app id already wrote this batch), into
    the table's catalog partitioning. Returns the table's version afterwards."""
    (
        frame.write.format("delta")
        .mode("append")
        .option("txnAppId", target.app_id)
        .option("txnVersion", batch_id)
        .partitionBy(*target.table(layer).partition_by)
        .save(uri)
    )
    return _version(frame.sparkSession, uri)


def _version(spark: SparkSession, uri: str) -> int | None:
    """The table's version as the session's Delta log knows it (our commit just updated it),
    without a Spark job."""
    jvm: Any = spark._jvm
    session: Any = spark._jsparkSession
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(session, uri)
    version = int(delta_log.unsafeVolatileSnapshot().version())
    return version if version >= 0 else None
