"""The append landing: events land in silver once each, late ones and repeats decided.

Per batch, a fixed handful of Spark jobs over the batch, held once in memory, one after
another: one pass parses, validates and counts per partition (`scan_batch`); bronze is
appended; the dedup decision (`conveyor.ingest.dedup`) reads only narrow columns (dedup key,
event time, Kafka coordinates) and yields the coordinates of the repeats, which are small and
broadcast; one aggregate counts the silver share; silver and quarantine are appended. Everything
a batch decides (validity, lateness, duplicates) is derived from its input and from tables as
they were before it, so a replay decides the same. An empty silver or quarantine share is not
written once its table exists (the first batch creates every table, empty or not).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from conveyor.catalog import EventSchema, Layer, types
from conveyor.ingest import decode, quality
from conveyor.ingest.bronze import BRONZE_COLUMNS, kafka_columns, stamp_ingest
from conveyor.ingest.core import Batch, Landed
from conveyor.ingest.dedup import (
    SMALL_BATCH,
    SilverShare,
    decide_on_driver,
    repeats,
    share_of,
    silver_rows,
    silver_share,
)
from conveyor.ingest.quarantine import no_problems, quarantine_rows
from conveyor.ingest.silver import silver_columns
from conveyor.ledger import Partition, PartitionRange

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


@dataclass(frozen=True)
class BatchScan:
    """What the first pass over the batch found (it also fills the batch's cache): offsets
    per partition, how many records the certifier left to the reference checks, and the
    silver share of the certified records if none of them is a repeat (`settled`: the batch's
    share when `unsettled` is 0 and the batch has no repeats)."""

    ranges: list[PartitionRange]
    unsettled: int
    settled: SilverShare | None = None

    @property
    def rows(self) -> int:
        return sum(r.end_offset - r.start_offset for r in self.ranges)


@dataclass
class AppendLanding:
    """One batch of an append stream: `parse` (decode, check, classify late events; one pass
    counts it), then `land` (bronze, the repeats, silver, quarantine)."""

    batch: Batch
    previous: dict[Partition, datetime] = field(default_factory=dict)
    raw: DataFrame | None = None
    classified: DataFrame | None = None

    @property
    def previous_max(self) -> datetime | None:
        """The newest event time any earlier batch landed (from any partition)."""
        return max(self.previous.values(), default=None)

    def parse(self, raw: DataFrame) -> BatchScan:
        """Decode and check the batch, classify late events; one pass counts it."""
        from pyspark import StorageLevel

        batch = self.batch
        stream = batch.target.stream
        self.previous = batch.state.newest_before(batch.target, batch.batch_id)
        tolerance = stream.event_schema.late_tolerance
        watermarks = {
            partition: newest - tolerance
            for (topic, partition), newest in self.previous.items()
            if topic == stream.topic.name
        }
        # Kafka is read and each value parsed once (the certifier) into one cache, and the few
        # records the certifier leaves to the reference checks are assessed into a second, in
        # one job. Bronze is written from the first; the checked events are the certified ones
        # as they are plus the others. What changes from batch to batch (ingest time,
        # watermark) is applied on top of the caches, so the plans below them are the same
        # every batch and their generated code is compiled once per run.
        schema = stream.event_schema
        decoded = batch.hold(
            decode.decode(kafka_columns(raw), schema).persist(StorageLevel.MEMORY_AND_DISK)
        )
        scan = scan_batch(decoded, schema, watermarks)
        self.raw = stamp_ingest(decoded, batch.started)
        if scan.unsettled:
            settled, others = decode.split(decoded, schema)
            batch.hold(others.persist(StorageLevel.MEMORY_AND_DISK)).count()
            checked = decode.joined(settled, others, schema)
        else:  # every record settled: the reference checks' plan is not even built
            checked = decode.settled(decoded, schema).transform(quality.with_event_time(schema))
        self.classified = classify(stamp_ingest(checked, batch.started), watermarks)
        return scan

    def land(self, scan: BatchScan) -> Landed:
        """Append bronze, decide the repeats, append silver and quarantine (a share with no
        rows is not written once its table exists).

        A batch of at most SMALL_BATCH records decides its repeats on the driver (its keys
        collected, silver read for those keys only) and makes its three appends at once; a
        larger one decides them in Spark and appends one table after the other (each append
        has both cores to itself). Both decide the same repeats (tests/spark/
        test_dedup_paths.py)."""
        batch = self.batch
        spark, target, state, clock = batch.spark, batch.target, batch.state, batch.clock
        assert self.raw is not None and self.classified is not None, "parse() comes first"
        classified = self.classified
        bronze = self.raw.select(*BRONZE_COLUMNS)
        small = scan.rows <= SMALL_BATCH
        versions: dict[Layer, int | None] = dict.fromkeys(Layer)
        if not small:
            versions |= batch.append_each({Layer.BRONZE: bronze}, together=False)
        with clock.step("dedup"):
            if small:
                repeated, silver = decide_on_driver(spark, classified, target, state)
            else:
                with clock.step("dedup.repeats"):  # sub-steps: logged, not in the ledger
                    oldest = self._oldest_valid(scan)
                    repeated = repeats(
                        spark, classified, target, state, oldest, batch_rows=scan.rows
                    )
                if repeated is not None:
                    batch.hold(repeated)
            kept = silver_rows(classified, repeated)
            if not small and repeated is None and not scan.unsettled and scan.settled:
                silver = scan.settled  # the scan's count of the certified records stands
            elif not small:
                with clock.step("dedup.share"):
                    silver = silver_share(classified, repeated)
        shares: dict[Layer, DataFrame | None] = {Layer.BRONZE: bronze} if small else {}
        shares[Layer.SILVER] = (
            kept.select(*silver_columns(target.stream))
            if silver.rows or not state.exists(spark, target, Layer.SILVER)
            else None
        )
        shares[Layer.QUARANTINE] = (
            quarantine_rows(classified.where(~no_problems()))
            if silver.quarantined or not state.exists(spark, target, Layer.QUARANTINE)
            else None
        )
        frames = {k: v for k, v in shares.items() if v is not None}
        versions |= batch.append_each(frames, together=small)
        return Landed(versions, self._ledger(scan, silver), silver.per_partition)

    def _oldest_valid(self, scan: BatchScan) -> datetime | None:
        """A lower bound of the event times of the batch's valid records: the lowest watermark
        of the partitions it read, or None when one of them has none yet."""
        tolerance = self.batch.target.stream.event_schema.late_tolerance
        newest = [self.previous.get((r.topic, r.partition)) for r in scan.ranges]
        if not newest or any(t is None for t in newest):
            return None
        return min(t for t in newest if t is not None) - tolerance

    def _ledger(self, scan: BatchScan, silver: SilverShare) -> dict[str, object]:
        """What an append batch adds to its ledger row."""
        previous_max = self.previous_max
        late_dates = [d for d in silver.event_dates if previous_max and d < previous_max.date()]
        newest = [t for t in (silver.newest, previous_max) if t]
        return {
            "silver_rows": silver.rows,
            "quarantined": silver.quarantined,
            "duplicates_dropped": scan.rows - silver.quarantined - silver.rows,
            "event_dates": silver.event_dates,
            "late_dates": late_dates,
            "max_event_time": max(newest) if newest else None,
            "partition_event_times": silver.per_partition,
        }


def classify(assessed: DataFrame, watermarks: dict[int, datetime]) -> DataFrame:
    """Add the too-late problem to otherwise valid events older than their partition's
    watermark (the newest event time landed from that partition, minus the late-data
    tolerance). Lateness is judged per partition, as Kafka orders records per partition: a
    batch that reads partitions unevenly far into a backlog judges none against another's
    progress. A partition with nothing landed yet has no watermark."""
    from pyspark.sql import functions as F

    if not watermarks:
        return assessed
    watermark = _watermark(watermarks)
    too_late = quality.problem(
        quality.QuarantineReason.TOO_LATE,
        F.format_string(
            "event time %s is behind the watermark of partition %d, %s (the newest event time "
            "landed from that partition minus the late-data tolerance)",
            F.col(quality.EVENT_TIME).cast("string"),
            F.col("partition"),
            F.date_format(watermark, "yyyy-MM-dd HH:mm:ss"),
        ),
    )
    late = no_problems() & (F.col(quality.EVENT_TIME) < watermark)
    return assessed.withColumn(
        quality.PROBLEMS,
        # no watermark (null) is not late: CASE WHEN treats a null condition as false
        F.when(late, F.array(too_late)).otherwise(F.col(quality.PROBLEMS)),
    )


def _watermark(watermarks: dict[int, datetime]) -> Column:
    """The watermark of each record's partition (null for a partition without one)."""
    from pyspark.sql import functions as F

    by_partition = F.create_map(
        *(F.lit(v) for p, at in sorted(watermarks.items()) for v in (p, at))
    )
    return F.try_element_at(by_partition, F.col("partition"))


def scan_batch(
    decoded: DataFrame, schema: EventSchema, watermarks: dict[int, datetime]
) -> BatchScan:
    """One job, which fills the batch's cache: offsets per partition, the records the
    certifier did not settle, and the silver share of those it settled, were none a repeat:
    their count, newest event time and event dates but the too-late ones (`classify`), which
    count as quarantined."""
    from pyspark.sql import functions as F

    position = list(schema.fields).index(schema.event_time)
    spec = schema.fields[schema.event_time]
    answer = F.col(decode.CERTIFIED)
    at = decode.certified_value(answer[f"f{position}"], types.spark_type(spec.type))
    # a partition without a watermark (null) has nothing late, as in `classify`
    late = F.coalesce(at < _watermark(watermarks), F.lit(False)) if watermarks else F.lit(False)
    settled = answer.isNotNull()
    kept = settled & ~late
    per_partition = (
        decoded.groupBy("topic", "partition")
        .agg(
            F.min("offset").alias("lo"),
            F.max("offset").alias("hi"),
            F.count(F.when(~settled, 1)).alias("unsettled"),
            F.count(F.when(kept, 1)).alias("rows"),
            F.max(F.when(kept, at)).alias("newest"),
            F.collect_set(F.when(kept, F.to_date(at))).alias("dates"),
            F.count(F.when(settled & late, 1)).alias("late"),
        )
        .collect()
    )
    ranges = sorted(
        (PartitionRange(r["topic"], r["partition"], r["lo"], r["hi"] + 1) for r in per_partition),
        key=lambda r: (r.topic, r.partition),
    )
    return BatchScan(
        ranges=ranges,
        unsettled=sum(r["unsettled"] for r in per_partition),
        settled=share_of(per_partition, quarantined="late"),
    )
