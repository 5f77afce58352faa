"""One micro-batch of one stream: bronze, silver, quarantine and the ledger, exactly once.

Every Delta write carries `txnAppId` (the checkpoint's app id) and `txnVersion` (the batch id),
so a batch Spark replays after a crash skips the writes that already committed. Everything a
batch decides (validity, lateness, duplicates) is derived from its input and from tables as
they were before it, so a replay decides the same. An empty silver or quarantine share is not
written once its table exists (the first batch creates every table, empty or not).

The work per batch is a fixed handful of Spark jobs over the batch, held once in memory, one
after another: one pass parses, validates and counts per partition; bronze is appended; the
dedup decision reads only narrow columns (dedup key, event time, Kafka coordinates) and yields
the coordinates of the repeats, which are small and broadcast; one aggregate counts the silver
share; silver and quarantine are appended. The ledger row is appended from the same session
(one small commit; see `append_entry`). Every append reads the table's app transactions from
its checksum file (`conveyor.spark.jvm.append_once`), not from a rebuilt snapshot state. Every
step's duration is logged and recorded in the ledger (`<step>_ms`, see
`conveyor.ingest.ledger.STEPS`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from conveyor.catalog import EventSchema, Layer, StreamSpec, TableRef, ledger_uri, table_uri, types
from conveyor.ingest import decode, quality
from conveyor.ingest.bronze import BRONZE_COLUMNS, kafka_columns, stamp_ingest
from conveyor.ingest.crash import kill_point
from conveyor.ingest.ledger import (
    LedgerEntry,
    Partition,
    PartitionRange,
    PartitionTime,
    append_entry,
    merge_newest,
    previous_event_times,
    table_exists,
)
from conveyor.ingest.offsets import MonitoringGroup
from conveyor.settings import Settings
from conveyor.spark.delta_checkpoints import Checkpointer
from conveyor.spark.delta_files import ActiveFiles, DataFile
from conveyor.spark.frames import local_frame
from conveyor.spark.jvm import append_idempotent, delta_version

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

KAFKA_COORDINATES = ("topic", "partition", "offset")


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
            monitoring_group=stream.monitoring_group,
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
    the newest event time landed so far from each partition and whether silver exists. On the
    first batch of a run (and on any batch id it did not expect) it is read from the tables."""

    settings: Settings
    newest: dict[Partition, datetime] = field(default_factory=dict)
    next_batch: int | None = None
    written: set[Layer] = field(default_factory=set)
    monitoring: MonitoringGroup | None = field(default=None, repr=False)
    silver_index: ActiveFiles | None = field(default=None, repr=False)
    checkpoints: Checkpointer | None = field(default=None, repr=False)

    def committed(self, spark: SparkSession, versions: dict[str, int | None]) -> None:
        """Tables a batch committed to (URI -> version): their Delta checkpoints are written
        beside the stream when due (`Checkpointer`)."""
        if self.checkpoints is None:
            self.checkpoints = Checkpointer(spark)
        for uri, version in versions.items():
            self.checkpoints.committed(uri, version)

    def silver_files(self, target: StreamTarget) -> ActiveFiles:
        """Silver's active files, kept for the run (see `ActiveFiles`)."""
        if self.silver_index is None:
            self.silver_index = ActiveFiles(target.silver)
        return self.silver_index

    def exists(self, spark: SparkSession, target: StreamTarget, layer: Layer) -> bool:
        """Whether the layer's table exists (looked at once per run, then remembered)."""
        if layer not in self.written and table_exists(spark, target.uri(layer)):
            self.written.add(layer)
        return layer in self.written

    def newest_before(self, target: StreamTarget, batch_id: int) -> dict[Partition, datetime]:
        """Newest event time landed from each partition by batches before batch_id
        (deterministic on replay)."""
        if self.next_batch != batch_id:
            self.newest = previous_event_times(
                target.ledger, target.stream.name, target.app_id, batch_id
            )
        return dict(self.newest)

    def landed(self, batch_id: int, newest: list[PartitionTime]) -> None:
        merge_newest(self.newest, newest)
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
        if self.checkpoints is not None:
            self.checkpoints.close()
            self.checkpoints = None


SILVER_EXTRA_COLUMNS = (
    (quality.EVENT_DATE, "date"),
    ("topic", "string"),
    ("partition", "int"),
    ("offset", "bigint"),
    ("kafka_timestamp", "timestamp"),
    ("ingest_time", "timestamp"),
)
"""What silver holds after the event's own fields, with its Spark types."""


CDC_SILVER_COLUMNS = (
    ("_lsn", "bigint"),
    ("_source_ts", "timestamp"),
    ("topic", "string"),
    ("partition", "int"),
    ("offset", "bigint"),
    ("ingest_time", "timestamp"),
)
"""What a cdc stream's silver holds after the table's columns: the LSN and commit time of the
change that made the row, that change's Kafka coordinates, when it landed."""
SOFT_DELETE_COLUMNS = (("_deleted", "boolean"), ("_deleted_at", "timestamp"))
"""Silver's columns of a cdc stream with `deletes: soft`."""


def silver_extra_columns(stream: StreamSpec) -> tuple[tuple[str, str], ...]:
    """The columns silver holds besides the catalog's fields (and `_unknown`)."""
    if stream.cdc is None:
        return SILVER_EXTRA_COLUMNS
    soft = SOFT_DELETE_COLUMNS if stream.cdc.deletes == "soft" else ()
    return CDC_SILVER_COLUMNS + soft


def _silver_fields(stream: StreamSpec) -> list[tuple[str, str]]:
    fields = [(n, quality.spark_type(f)) for n, f in stream.event_schema.fields.items()]
    kept = [(quality.UNKNOWN, "string")] if stream.event_schema.unknown_fields == "keep" else []
    # _unknown last: where `schema apply` added it to an older table, it is last there too
    return fields + list(silver_extra_columns(stream)) + kept


def silver_columns(stream: StreamSpec) -> list[str]:
    return [name for name, _ in _silver_fields(stream)]


def silver_schema(stream: StreamSpec) -> str:
    """The DDL of the stream's silver table, in `silver_columns` order (for reading a stream
    that was never ingested as an empty table)."""
    return ", ".join(f"`{name}` {kind}" for name, kind in _silver_fields(stream))


class StepClock:
    """Milliseconds per named step of one batch."""

    def __init__(self) -> None:
        self.ms: dict[str, int] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round((time.perf_counter() - began) * 1000)

    def timed(self, name: str, work: Callable[[], int | None]) -> int | None:
        with self.step(name):
            return work()


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


@dataclass(frozen=True)
class SilverShare:
    """What the silver share of a batch holds: rows, newest event time per partition, event
    dates; and how many of the batch's records go to quarantine."""

    rows: int
    per_partition: list[PartitionTime]
    event_dates: list[date]
    quarantined: int = 0

    @property
    def newest(self) -> datetime | None:
        return max((t.max_event_time for t in self.per_partition), default=None)


def process_batch(
    spark: SparkSession,
    target: StreamTarget,
    batch: DataFrame,
    batch_id: int,
    state: RunState,
) -> LedgerEntry | None:
    """Land one micro-batch in every table and the ledger; None for an empty batch."""
    from conveyor.maintenance.lock import stream_lock

    if target.stream.cdc is not None:
        from conveyor.ingest.cdc import process_change_batch

        return process_change_batch(spark, target, batch, batch_id, state)

    work = _BatchWork(spark, target, batch_id, state, started=datetime.now(UTC))
    try:
        with work.clock.step("parse"):
            classified, scan = work.parse(batch)
        if not scan.ranges:
            return None
        with work.clock.step("monitor"):
            backlog = state.backlog(target, scan.ranges)
        with ExitStack() as lease:
            # a replay or rebuild of the stream holds it for its run: never both at once
            with work.clock.step("lock"):
                lease.enter_context(
                    stream_lock(spark, state.settings, target.stream.name, batch=True)
                )
            versions, silver = work.land(classified, scan)
            entry = work.entry(scan, silver, versions, backlog)
            work.record(entry)
    finally:
        work.release()
    state.landed(batch_id, silver.per_partition)
    state.committed(
        spark,
        {
            **{target.uri(layer): version for layer, version in versions.items()},
            target.ledger: delta_version(spark, target.ledger),
        },
    )
    state.commit_offsets(target, scan.ranges)
    return entry


@dataclass
class _BatchWork:
    """One batch's steps, in order: parse, land (bronze, dedup, silver, quarantine), the
    ledger row. Frames it holds in memory are released by `release`."""

    spark: SparkSession
    target: StreamTarget
    batch_id: int
    state: RunState
    started: datetime
    clock: StepClock = field(default_factory=StepClock)
    held: list[DataFrame] = field(default_factory=list)
    previous: dict[Partition, datetime] = field(default_factory=dict)
    raw: DataFrame | None = None
    versions: dict[Layer, int | None] = field(default_factory=lambda: dict.fromkeys(Layer))

    @property
    def previous_max(self) -> datetime | None:
        """The newest event time any earlier batch landed (from any partition)."""
        return max(self.previous.values(), default=None)

    def parse(self, batch: DataFrame) -> tuple[DataFrame, BatchScan]:
        """Parse and validate the batch, classify late events; one pass counts it."""
        from pyspark import StorageLevel

        stream = self.target.stream
        self.previous = self.state.newest_before(self.target, self.batch_id)
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
        decoded = decode.decode(kafka_columns(batch), schema).persist(StorageLevel.MEMORY_AND_DISK)
        self.held.append(decoded)
        scan = _scan(decoded, schema, watermarks)
        self.raw = stamp_ingest(decoded, self.started)
        if scan.unsettled:
            settled, others = decode.split(decoded, schema)
            others = others.persist(StorageLevel.MEMORY_AND_DISK)
            self.held.append(others)
            others.count()
            checked = decode.joined(settled, others, schema)
        else:  # every record settled: the reference checks' plan is not even built
            checked = decode.settled(decoded, schema).transform(quality.with_event_time(schema))
        classified = _classify(stamp_ingest(checked, self.started), watermarks)
        return classified, scan

    def land(
        self, classified: DataFrame, scan: BatchScan
    ) -> tuple[dict[Layer, int | None], SilverShare]:
        """Append bronze, decide the duplicates, append silver and quarantine (a share with
        no rows is not written once its table exists); the Delta version of each append.

        A batch of at most SMALL_BATCH records decides its duplicates on the driver (its keys
        collected, silver read for those keys only) and makes its three appends at once; a
        larger one decides them in Spark and appends one table after the other (each append
        has both cores to itself). Both decide the same duplicates (tests/spark/
        test_dedup_paths.py)."""
        spark, target, state = self.spark, self.target, self.state
        assert self.raw is not None, "parse() comes first"
        bronze = self.raw.select(*BRONZE_COLUMNS)
        small = scan.rows <= SMALL_BATCH
        if not small:
            self._append_each({Layer.BRONZE: bronze}, together=False)
        with self.clock.step("dedup"):
            if small:
                repeats, silver = _decide_on_driver(spark, classified, target, state)
            else:
                with self.clock.step("dedup.repeats"):  # sub-steps: logged, not in the ledger
                    oldest = self._oldest_valid(scan)
                    repeats = _repeats(
                        spark, classified, target, state, oldest, batch_rows=scan.rows
                    )
                if repeats is not None:
                    self.held.append(repeats)
            silver_rows = _silver_rows(classified, repeats)
            if not small and repeats is None and not scan.unsettled and scan.settled:
                silver = scan.settled  # the scan's count of the certified records stands
            elif not small:
                with self.clock.step("dedup.share"):
                    silver = _silver_share(classified, repeats)
        shares: dict[Layer, DataFrame | None] = {Layer.BRONZE: bronze} if small else {}
        shares[Layer.SILVER] = (
            silver_rows.select(*silver_columns(target.stream))
            if silver.rows or not state.exists(spark, target, Layer.SILVER)
            else None
        )
        shares[Layer.QUARANTINE] = (
            _quarantine_rows(classified.where(~_valid()))
            if silver.quarantined or not state.exists(spark, target, Layer.QUARANTINE)
            else None
        )
        self._append_each({k: v for k, v in shares.items() if v is not None}, together=small)
        state.written.update(layer for layer, v in self.versions.items() if v is not None)
        return dict(self.versions), silver

    def _append_each(self, frames: dict[Layer, DataFrame], *, together: bool) -> None:
        """Append each frame to its table, one after the other or all at once: independent
        tables, each append idempotent, so they may commit in any order (the ledger row
        follows all of them)."""
        if not together or len(frames) < 2:
            for layer, frame in frames.items():
                self.versions[layer] = self.clock.timed(
                    layer.value, partial(self._append, frame, layer)
                )
            return
        with ThreadPoolExecutor(max_workers=len(frames)) as pool:
            running = {
                layer: pool.submit(self.clock.timed, layer.value, partial(self._append, f, layer))
                for layer, f in frames.items()
            }
            for layer, future in running.items():
                self.versions[layer] = future.result()

    def _append(self, frame: DataFrame, layer: Layer) -> int | None:
        version = _append(frame, self.target, self.batch_id, layer)
        kill_point(f"ingest-after-{layer.value}")
        return version

    def _oldest_valid(self, scan: BatchScan) -> datetime | None:
        """A lower bound of the event times of the batch's valid records: the lowest watermark
        of the partitions it read, or None when one of them has none yet."""
        tolerance = self.target.stream.event_schema.late_tolerance
        newest = [self.previous.get((r.topic, r.partition)) for r in scan.ranges]
        if not newest or any(t is None for t in newest):
            return None
        return min(t for t in newest if t is not None) - tolerance

    def entry(
        self,
        scan: BatchScan,
        silver: SilverShare,
        versions: dict[Layer, int | None],
        backlog: int | None,
    ) -> LedgerEntry:
        """The batch's ledger row."""
        previous_max = self.previous_max
        late_dates = [d for d in silver.event_dates if previous_max and d < previous_max.date()]
        newest = [t for t in (silver.newest, previous_max) if t]
        return LedgerEntry(
            stream=self.target.stream.name,
            kind="batch",
            app_id=self.target.app_id,
            batch_id=self.batch_id,
            started_at=self.started,
            ended_at=datetime.now(UTC),
            offsets=scan.ranges,
            rows_read=scan.rows,
            bronze_rows=scan.rows,
            silver_rows=silver.rows,
            quarantined=silver.quarantined,
            duplicates_dropped=scan.rows - silver.quarantined - silver.rows,
            bronze_version=versions[Layer.BRONZE],
            silver_version=versions[Layer.SILVER],
            quarantine_version=versions[Layer.QUARANTINE],
            event_dates=silver.event_dates,
            late_dates=late_dates,
            max_event_time=max(newest) if newest else None,
            partition_event_times=silver.per_partition,
            backlog=backlog,
            step_ms=self.clock.ms,
        )

    def record(self, entry: LedgerEntry) -> None:
        record_batch(self.spark, self.target, entry, self.clock)
        kill_point("ingest-after-ledger")

    def release(self) -> None:
        for frame in self.held:
            frame.unpersist()
        self.held.clear()


def record_batch(
    spark: SparkSession, target: StreamTarget, entry: LedgerEntry, clock: StepClock
) -> None:
    """Append a batch's ledger row (its last write) and log the steps' timings."""
    began = time.perf_counter()
    append_entry(target.ledger, entry, spark=spark)
    log.info(
        "stream %s batch %d steps (ms): %s, ledger %d",
        entry.stream,
        entry.batch_id,
        ", ".join(f"{k} {v}" for k, v in clock.ms.items()),
        round((time.perf_counter() - began) * 1000),
    )


def _valid() -> Column:
    from pyspark.sql import functions as F

    return F.size(F.col(quality.PROBLEMS)) == 0


def _classify(assessed: DataFrame, watermarks: dict[int, datetime]) -> DataFrame:
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
    late = _valid() & (F.col(quality.EVENT_TIME) < watermark)
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


def _scan(decoded: DataFrame, schema: EventSchema, watermarks: dict[int, datetime]) -> BatchScan:
    """One job, which fills the batch's cache: offsets per partition, the records the
    certifier did not settle, and the silver share of those it settled, were none a repeat:
    their count, newest event time and event dates but the too-late ones (`_classify`), which
    count as quarantined."""
    from pyspark.sql import functions as F

    position = list(schema.fields).index(schema.event_time)
    spec = schema.fields[schema.event_time]
    answer = F.col(decode.CERTIFIED)
    at = decode.certified_value(answer[f"f{position}"], types.spark_type(spec.type))
    # a partition without a watermark (null) has nothing late, as in `_classify`
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
        settled=_share_of(per_partition, quarantined="late"),
    )


SHUFFLED_SLICE = 2
"""Up to this many times a batch's rows in silver's slice, `_repeats` finds the repeated keys
in one aggregation over both (a shuffle of both); beyond, the slice is scanned against the
batch's keys, broadcast. Measured on 500k batches (2 cores, the repeats step): slice 500k, the
aggregation 2.4-3.1 s and the broadcast 4.4-4.7 s; slice 7.7M, the aggregation 17.1 and 26.2 s
and the broadcast 14.5 and 15.0 s. The broadcast scan keeps silver's matching rows, so silver is
read once (8.2M rows of history, the same machine, one run each: 23.0 and 17.3 s with a second
read for the matched keys, 14.7 and 14.2 s without)."""


def _shuffle_slice(slice_rows: int | None, batch_rows: int | None) -> bool:
    return (
        slice_rows is not None
        and batch_rows is not None
        and slice_rows <= SHUFFLED_SLICE * batch_rows
    )


CROWDED_ON_DRIVER = 50_000
"""Up to this many keys occurring more than once, a large batch decides their repeats on the
driver (`_repeats`)."""


def _repeats(
    spark: SparkSession,
    classified: DataFrame,
    target: StreamTarget,
    state: RunState,
    oldest: datetime | None,
    silver_filter: Column | None = None,
    batch_rows: int | None = None,
) -> DataFrame | None:
    """Kafka coordinates of the valid records that are duplicates (held in memory; None when
    there are none, or the stream has no dedup key): a repeat of the dedup key within the
    batch (the first by Kafka time, partition, offset is kept), or of a silver row (of those
    `silver_filter` keeps) within the late-data tolerance of its event time.

    The keys of the batch that occur more than once in it or in silver's slice are few
    (duplicates are rare): one aggregation over the batch's keys and the slice's finds them
    when the slice holds at most SHUFFLED_SLICE times the batch's `batch_rows`; a larger or
    unknown slice is scanned against the batch's keys, broadcast, instead. Their records are
    collected and decided as a small batch's are (`_repeats_within`, `_repeats_of_silver`);
    with more, or a `silver_filter`, a window and a join over those keys' records decide."""
    from pyspark.sql import functions as F

    keys = list(target.stream.event_schema.dedup_key)
    if not keys:
        return None
    valid = classified.where(_valid()).select(
        *keys, quality.EVENT_TIME, quality.EVENT_DATE, "kafka_timestamp", *KAFKA_COORDINATES
    )
    found_slice = _silver_slice(spark, valid, target, state, oldest, silver_filter)
    existing, slice_rows = found_slice if found_slice is not None else (None, None)
    # keys renamed: a join condition over two columns of one lineage resolves to one
    renamed = [F.col(k).alias(f"_crowded{i}") for i, k in enumerate(keys)]
    if existing is not None and _shuffle_slice(slice_rows, batch_rows):
        # silver's slice about the batch's size: one aggregation over both keys
        sides = valid.select(*keys, F.lit(1).alias("_batch")).unionByName(
            existing.select(*keys, F.lit(0).alias("_batch"))
        )
        counted = sides.groupBy(*keys).agg(
            F.count(F.lit(1)).alias("_n"), F.sum("_batch").alias("_in_batch")
        )
        crowded = counted.where((F.col("_n") > 1) & (F.col("_in_batch") > 0)).select(*renamed)
    else:
        counted = valid.groupBy(*keys).agg(F.count(F.lit(1)).alias("_n"))
        crowded = counted.where(F.col("_n") > 1).select(*renamed)
    if existing is not None and not _shuffle_slice(slice_rows, batch_rows):
        # a larger (or unknown) slice is scanned against the batch's keys, broadcast, never
        # shuffled: it can hold millions of rows (null keys match nothing, as in `_seen`)
        known = existing.join(F.broadcast(valid.select(*keys)), on=keys, how="left_semi")
        if silver_filter is None:
            # silver's matching rows, few, kept from this one scan: what `_repeats_of_silver`
            # would read from silver again
            seen = _found(known, keys, "_seen_time", [f"_seen_{c}" for c in KAFKA_COORDINATES])
            matched = seen.limit(CROWDED_ON_DRIVER + 1).collect()
            in_batch = (
                crowded.limit(CROWDED_ON_DRIVER + 1).collect()
                if len(matched) <= CROWDED_ON_DRIVER
                else None
            )
            if in_batch is not None and len(in_batch) <= CROWDED_ON_DRIVER:
                repeated = {tuple(r) for r in in_batch} | {_key_of(r, len(keys)) for r in matched}
                if not repeated:
                    return None
                return _repeats_of_keys(spark, valid, list(repeated), target, state, matched)
        crowded = crowded.unionByName(known.select(*renamed)).distinct()
    if silver_filter is None:
        found = crowded.limit(CROWDED_ON_DRIVER + 1).collect()
        if not found:
            return None
        if len(found) <= CROWDED_ON_DRIVER:
            wanted = [tuple(r) for r in found]
            return _repeats_of_keys(spark, valid, wanted, target, state)
    return _repeats_in_spark(valid, existing, crowded, target)


def _narrow(frame: DataFrame, keys: list[str], *extra: Column) -> DataFrame:
    """What the driver decides repeats from: keys (`_key<i>`), event time and Kafka time in
    microseconds (`_time`, `_kafka`), the event date and the coordinates (and `extra`)."""
    from pyspark.sql import functions as F

    return frame.select(
        *extra,
        *(F.col(k).alias(f"_key{i}") for i, k in enumerate(keys)),
        F.unix_micros(quality.EVENT_TIME).alias("_time"),
        F.col(quality.EVENT_DATE).alias("_date"),
        F.unix_micros("kafka_timestamp").alias("_kafka"),
        *KAFKA_COORDINATES,
    )


def _with_keys(frame: DataFrame, keys: list[str], wanted: list[tuple[Any, ...]]) -> DataFrame:
    """The rows of `frame` whose key is one of `wanted` (null-safe: a null key is a key): an IN
    list up to IN_LIST_KEYS keys, a broadcast join beyond."""
    from pyspark.sql import functions as F

    if len(keys) == 1 and len(wanted) <= IN_LIST_KEYS:
        values = [k[0] for k in wanted if k[0] is not None]
        match = F.col(keys[0]).isin(values) if values else F.lit(False)
        if any(k[0] is None for k in wanted):
            match = match | F.col(keys[0]).isNull()
        return frame.where(match)
    names = [f"_wanted{i}" for i in range(len(keys))]
    types = frame.select(*keys).schema
    probe = local_frame(
        frame.sparkSession,
        wanted,
        ", ".join(f"{n} {f.dataType.simpleString()}" for n, f in zip(names, types, strict=True)),
    )
    on = [F.col(k).eqNullSafe(F.col(n)) for k, n in zip(keys, names, strict=True)]
    return frame.join(F.broadcast(probe), on=on, how="left_semi")


def _repeats_of_keys(
    spark: SparkSession,
    valid: DataFrame,
    wanted: list[tuple[Any, ...]],
    target: StreamTarget,
    state: RunState,
    seen: list[Any] | None = None,
) -> DataFrame | None:
    """The repeats among the valid records of the `wanted` keys, decided on the driver;
    `seen`, when given, holds every silver row that can repeat them (as `_matches` takes
    them), so silver is not read again."""
    keys = list(target.stream.event_schema.dedup_key)
    collected = _narrow(_with_keys(valid, keys, wanted), keys).collect()
    of_silver = (
        _repeats_of_silver(spark, collected, target, state)
        if seen is None
        else _matches(collected, seen, target)
    )
    repeats = _repeats_within(collected, len(keys)) | of_silver
    if not repeats:
        return None
    return local_frame(spark, sorted(repeats), COORDINATES_SCHEMA)


def _repeats_in_spark(
    valid: DataFrame, existing: DataFrame | None, crowded: DataFrame, target: StreamTarget
) -> DataFrame | None:
    """The repeats among the valid records whose key `crowded` holds, decided in Spark (many
    such keys, or silver read through a filter): a window within the batch, a join with
    silver's slice."""
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    keys = list(target.stream.event_schema.dedup_key)
    crowded = crowded.persist(StorageLevel.MEMORY_AND_DISK)
    try:

        def of_crowded(frame: DataFrame) -> DataFrame:
            # null-safe: null keys group together (in the window below too)
            on = [F.col(k).eqNullSafe(F.col(f"_crowded{i}")) for i, k in enumerate(keys)]
            return frame.join(F.broadcast(crowded), on=on, how="left_semi")

        mine = of_crowded(valid)
        first = Window.partitionBy(*keys).orderBy("kafka_timestamp", "partition", "offset")
        repeats = (
            mine.withColumn("_rank", F.row_number().over(first))
            .where(F.col("_rank") > 1)
            .select(*KAFKA_COORDINATES)
        )
        if existing is not None:
            repeats = repeats.unionByName(_seen(of_crowded(existing), mine, target))
        held = repeats.persist(StorageLevel.MEMORY_AND_DISK)
        # filled now, in a job of its own, before any other query reads it
        held.count()
    finally:
        crowded.unpersist()
    return held


def _silver_slice(
    spark: SparkSession,
    valid: DataFrame,
    target: StreamTarget,
    state: RunState,
    oldest: datetime | None,
    silver_filter: Column | None = None,
) -> tuple[DataFrame, int | None] | None:
    """Silver's rows (of those `silver_filter` keeps) that can repeat a valid record of the
    batch: their key, event time (`_seen_time`) and coordinates (`_seen_<coordinate>`), and
    how many rows the files read hold (None when unknown); None when silver does not exist.

    Valid records are no older than `oldest` (their partitions' lowest watermark), so their
    repeats in silver are no older than oldest - tolerance: only that slice of silver is read
    (partition pruning by date, file skipping by the event time's stats). Without `oldest` the
    batch's own event-time range bounds the slice."""
    from pyspark.sql import functions as F

    if not state.exists(spark, target, Layer.SILVER):
        return None
    stream = target.stream
    keys = list(stream.event_schema.dedup_key)
    tolerance = stream.event_schema.late_tolerance
    time_field = stream.event_schema.event_time
    hi: datetime | None = None
    if oldest is not None:
        lo = oldest - tolerance
    else:
        bounds = valid.agg(
            F.min(quality.EVENT_TIME).alias("lo"), F.max(quality.EVENT_TIME).alias("hi")
        ).first()
        if not bounds or bounds["lo"] is None:
            return None
        lo, hi = bounds["lo"] - tolerance, bounds["hi"] + tolerance
    window = None if silver_filter is not None else _silver_window(spark, target, state, lo, hi)
    existing, rows = window if window is not None else (None, None)
    if existing is None:  # through Delta
        existing = spark.read.format("delta").load(target.silver)
        if silver_filter is not None:
            existing = existing.where(silver_filter)
        existing = existing.where(F.col(quality.EVENT_DATE) >= F.lit(lo.date()))
        if hi is not None:
            existing = existing.where(F.col(quality.EVENT_DATE) <= F.lit(hi.date()))
    existing = existing.where(F.col(time_field) >= F.lit(lo))
    if hi is not None:
        existing = existing.where(F.col(time_field) <= F.lit(hi))
    narrow = existing.select(
        *keys,
        F.col(time_field).alias("_seen_time"),
        *(F.col(c).alias(f"_seen_{c}") for c in KAFKA_COORDINATES),
    )
    return narrow, rows


def _seen(existing: DataFrame, valid: DataFrame, target: StreamTarget) -> DataFrame:
    """Coordinates of the `valid` records whose key `existing` (silver's rows, see
    `_silver_slice`) holds from another Kafka record within the late-data tolerance of their
    event time (the same record, landed by an earlier attempt of this batch, is not a repeat;
    null keys match nothing)."""
    from pyspark.sql import functions as F

    keys = list(target.stream.event_schema.dedup_key)
    tolerance = target.stream.event_schema.late_tolerance
    same_record = F.lit(True)
    for c in KAFKA_COORDINATES:
        same_record = same_record & (F.col(c) == F.col(f"_seen_{c}"))
    near = F.abs(
        F.unix_micros(F.col(quality.EVENT_TIME)) - F.unix_micros(F.col("_seen_time"))
    ) <= F.lit(int(tolerance.total_seconds() * 1_000_000))
    probe = valid.select(*keys, quality.EVENT_TIME, *KAFKA_COORDINATES)
    matches = existing.join(probe, on=keys)
    return matches.where(near & ~same_record).select(*KAFKA_COORDINATES)


SMALL_BATCH = 20_000
"""Batches of at most this many records decide their duplicates on the driver and append
their tables at once (`_BatchWork.land`)."""

IN_LIST_KEYS = 100
"""Up to this many keys silver is filtered with an IN list, beyond it joined with them: PySpark
builds each literal of an IN list with a call into the JVM (a live run's 18k-record batch spent
22 s in it, the join takes a fraction of a second)."""

Coordinates = tuple[str, int, int]
"""A Kafka record's (topic, partition, offset)."""
COORDINATES_SCHEMA = "topic string, partition int, offset bigint"


def _decide_on_driver(
    spark: SparkSession, classified: DataFrame, target: StreamTarget, state: RunState
) -> tuple[DataFrame | None, SilverShare]:
    """`_repeats` and `_silver_share` for a small batch: its records' validity, keys, times
    and coordinates collected (one job), the repeats within the batch found here, and silver read
    for the batch's keys within the tolerance of its event times (one job). The same decision
    as `_repeats`: the first record of a key by Kafka time, partition and offset is kept, and
    a record whose key silver holds from another Kafka record within the late-data tolerance
    of its event time is a repeat."""

    stream = target.stream
    keys = list(stream.event_schema.dedup_key)
    everything = _narrow(classified, keys, _valid().alias("_valid")).collect()
    rows = [r for r in everything if r["_valid"]]
    repeats: set[Coordinates] = set()
    if keys and rows:
        repeats |= _repeats_within(rows, len(keys))
        repeats |= _repeats_of_silver(spark, rows, target, state)
    kept = [r for r in rows if (r["topic"], r["partition"], r["offset"]) not in repeats]
    newest: dict[Partition, int] = {}
    for r in kept:
        at = (r["topic"], r["partition"])
        if r["_time"] is not None:
            newest[at] = max(newest.get(at, r["_time"]), r["_time"])
    share = SilverShare(
        rows=len(kept),
        per_partition=[
            PartitionTime(t, p, _from_micros(us)) for (t, p), us in sorted(newest.items())
        ],
        event_dates=sorted({r["_date"] for r in kept}),
        quarantined=len(everything) - len(rows),
    )
    if not repeats:
        return None, share
    frame = local_frame(spark, sorted(repeats), COORDINATES_SCHEMA)
    return frame, share


def _from_micros(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def _key_of(row: Any, size: int) -> tuple[Any, ...]:
    return tuple(row[f"_key{i}"] for i in range(size))


def _repeats_within(rows: list[Any], size: int) -> set[Coordinates]:
    """Records whose key an earlier record of the batch has (by Kafka time, nulls first, then
    partition and offset), as Spark's window in `_repeats` orders them."""
    by_key: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        by_key.setdefault(_key_of(row, size), []).append(row)
    repeats: set[Coordinates] = set()
    for group in by_key.values():
        group.sort(
            key=lambda r: (r["_kafka"] is not None, r["_kafka"] or 0, r["partition"], r["offset"])
        )
        repeats.update((r["topic"], r["partition"], r["offset"]) for r in group[1:])
    return repeats


def _repeats_of_silver(
    spark: SparkSession, rows: list[Any], target: StreamTarget, state: RunState
) -> set[Coordinates]:
    """Records whose key silver holds from another Kafka record within the late-data tolerance
    of their event time (null keys match nothing, as in a join)."""
    from pyspark.sql import functions as F

    if not state.exists(spark, target, Layer.SILVER):
        return set()
    stream = target.stream
    keys = list(stream.event_schema.dedup_key)
    tolerance = int(stream.event_schema.late_tolerance.total_seconds() * 1_000_000)
    time_field = stream.event_schema.event_time
    wanted = {_key_of(r, len(keys)) for r in rows}
    wanted = {k for k in wanted if all(v is not None for v in k)}
    if not wanted:
        return set()
    times = [r["_time"] for r in rows if r["_time"] is not None]
    if not times:
        return set()
    lo, hi = _from_micros(min(times) - tolerance), _from_micros(max(times) + tolerance)
    window = _silver_window(spark, target, state, lo, hi)
    if window is not None:
        existing = window[0]
    else:
        existing = (
            spark.read.format("delta")
            .load(target.silver)
            .where(F.col(quality.EVENT_DATE).between(F.lit(lo.date()), F.lit(hi.date())))
        )
    existing = existing.where(F.col(time_field).between(F.lit(lo), F.lit(hi)))
    if len(keys) == 1 and len(wanted) <= IN_LIST_KEYS:
        existing = existing.where(F.col(keys[0]).isin([k[0] for k in wanted]))
    else:
        probe = local_frame(spark, sorted(wanted), existing.select(*keys).schema)
        existing = existing.join(F.broadcast(probe), on=keys)
    found = _found(existing, keys, time_field, list(KAFKA_COORDINATES)).collect()
    return _matches(rows, found, target)


def _found(frame: DataFrame, keys: list[str], time: str, coordinates: list[str]) -> DataFrame:
    """Silver's rows as `_matches` takes them: keys `_key<i>`, `_time` in microseconds and the
    coordinates (`coordinates` names the frame's topic, partition and offset columns)."""
    from pyspark.sql import functions as F

    return frame.select(
        *(F.col(k).alias(f"_key{i}") for i, k in enumerate(keys)),
        F.unix_micros(time).alias("_time"),
        *(F.col(c).alias(name) for c, name in zip(coordinates, KAFKA_COORDINATES, strict=True)),
    )


def _matches(rows: list[Any], found: list[Any], target: StreamTarget) -> set[Coordinates]:
    """Coordinates of `rows` (as `_narrow` gives them) whose key a `found` silver row (keys
    `_key<i>`, `_time` in microseconds, its coordinates) holds from another Kafka record within
    the late-data tolerance of their event time."""
    size = len(target.stream.event_schema.dedup_key)
    tolerance = int(target.stream.event_schema.late_tolerance.total_seconds() * 1_000_000)
    seen: dict[tuple[Any, ...], list[tuple[int, Coordinates]]] = {}
    for match in found:
        coordinates = (match["topic"], match["partition"], match["offset"])
        seen.setdefault(_key_of(match, size), []).append((match["_time"], coordinates))
    repeats: set[Coordinates] = set()
    for row in rows:
        mine = (row["topic"], row["partition"], row["offset"])
        for at, theirs in seen.get(_key_of(row, size), ()):
            near = row["_time"] is not None and abs(row["_time"] - at) <= tolerance
            if theirs != mine and near:
                repeats.add(mine)
    return repeats


def _silver_rows(classified: DataFrame, repeats: DataFrame | None) -> DataFrame:
    from pyspark.sql import functions as F

    valid = classified.where(_valid())
    if repeats is None:
        return valid
    return valid.join(F.broadcast(repeats), on=list(KAFKA_COORDINATES), how="left_anti")


def _silver_share(classified: DataFrame, repeats: DataFrame | None) -> SilverShare:
    """One job: rows, newest event time per partition and event dates of the silver share
    (the valid records but the repeats), and the records bound for quarantine."""
    from pyspark.sql import functions as F

    marked = classified.select("topic", "partition", quality.EVENT_TIME, quality.EVENT_DATE)
    valid = _valid()
    if repeats is not None:
        flags = repeats.select(*KAFKA_COORDINATES, F.lit(True).alias("_repeat"))
        joined = classified.join(F.broadcast(flags), on=list(KAFKA_COORDINATES), how="left")
        marked = joined.select(
            "topic",
            "partition",
            quality.EVENT_TIME,
            quality.EVENT_DATE,
            valid.alias("_valid"),
            F.col("_repeat").isNotNull().alias("_repeat"),
        )
        kept = F.col("_valid") & ~F.col("_repeat")
        invalid = ~F.col("_valid")
    else:
        marked = classified.select(
            "topic", "partition", quality.EVENT_TIME, quality.EVENT_DATE, valid.alias("_valid")
        )
        kept, invalid = F.col("_valid"), ~F.col("_valid")
    per_partition = (
        marked.groupBy("topic", "partition")
        .agg(
            F.count(F.when(kept, 1)).alias("rows"),
            F.max(F.when(kept, F.col(quality.EVENT_TIME))).alias("newest"),
            F.collect_set(F.when(kept, F.col(quality.EVENT_DATE))).alias("dates"),
            F.count(F.when(invalid, 1)).alias("quarantined"),
        )
        .collect()
    )
    return _share_of(per_partition, quarantined="quarantined")


def _share_of(per_partition: list[Any], *, quarantined: str) -> SilverShare:
    """A `SilverShare` from per-partition rows with `rows`, `newest`, `dates` and the
    quarantined count in column `quarantined`."""
    return SilverShare(
        rows=sum(int(r["rows"]) for r in per_partition),
        per_partition=sorted(
            (
                PartitionTime(r["topic"], r["partition"], r["newest"].astimezone(UTC))
                for r in per_partition
                if r["newest"] is not None
            ),
            key=lambda t: (t.topic, t.partition),
        ),
        event_dates=sorted({d for r in per_partition for d in r["dates"]}),
        quarantined=sum(int(r[quarantined]) for r in per_partition),
    )


def _silver_window(
    spark: SparkSession, target: StreamTarget, state: RunState, lo: datetime, hi: datetime | None
) -> tuple[DataFrame, int | None] | None:
    """Silver's files that can hold event times in [lo, hi] (by their event-date partition and
    event-time statistics), read without Delta rebuilding the table's state for its new
    version (`ActiveFiles`), and their rows (None without statistics); None when silver cannot
    be read that way."""
    stream = target.stream
    time_field = stream.event_schema.event_time
    lo, hi = _aware(lo), _aware(hi) if hi is not None else None
    files = state.silver_files(target)
    if not files.refresh(spark):
        return None
    dated = quality.EVENT_DATE in target.table(Layer.SILVER).partition_by
    lo_day, hi_day = lo.date().isoformat(), hi.date().isoformat() if hi else None

    def keep(data: DataFile) -> bool:
        day = data.partition.get(quality.EVENT_DATE) if dated else None
        if day is not None and (day < lo_day or (hi_day is not None and day > hi_day)):
            return False
        # logged statistics of a timestamp are truncated to milliseconds
        newest, oldest = data.max_values.get(time_field), data.min_values.get(time_field)
        if newest is not None and _logged_time(newest) + timedelta(milliseconds=1) < lo:
            return False
        return hi is None or oldest is None or _logged_time(oldest) <= hi

    keys = {name: stream.event_schema.fields[name] for name in stream.event_schema.dedup_key}
    columns = [(name, quality.spark_type(spec)) for name, spec in keys.items()]
    columns += [(time_field, "timestamp"), ("topic", "string"), ("partition", "int")]
    columns += [("offset", "bigint")]
    schema = ", ".join(f"`{name}` {kind}" for name, kind in dict(columns).items())
    frame = files.scan(spark, schema, keep)
    return None if frame is None else (frame, files.records(keep))


def _aware(at: datetime) -> datetime:
    """A time Spark gave back (naive, local) or one made here (aware), in UTC."""
    return at.astimezone(UTC)


def _logged_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


REPLAY_COLUMNS = (
    ("replayed_at", "timestamp"),
    ("replay_run", "string"),
    ("replay_outcome", "string"),
)
"""Quarantine's marks of `conveyor replay` (null until a replay moves the record): when, which
run, and the outcome (`silver`, or `duplicate` of a record silver already held)."""


def _quarantine_rows(classified: DataFrame) -> DataFrame:
    """Quarantine's rows of invalid records: the raw record, its coordinates, the first
    problem's code, every problem's message, the ingest time, replay marks (null)."""
    from pyspark.sql import functions as F

    problems = F.col(quality.PROBLEMS)
    return classified.select(
        "value",
        "key",
        "topic",
        "partition",
        "offset",
        "kafka_timestamp",
        F.get(problems, 0)["code"].alias("reason_code"),
        F.array_join(F.transform(problems, lambda p: p["message"]), "; ").alias("reason"),
        "ingest_time",
        "ingest_date",
        *(F.lit(None).cast(kind).alias(name) for name, kind in REPLAY_COLUMNS),
    )


def _append(frame: DataFrame, target: StreamTarget, batch_id: int, layer: Layer) -> int | None:
    """Idempotent append (skipped when this app id already wrote this batch), into the table's
    catalog partitioning. Returns the table's version afterwards."""
    ref = target.table(layer)
    return append_idempotent(
        frame,
        target.uri(layer),
        target.app_id,
        batch_id,
        list(ref.partition_by),
        properties=dict(ref.properties),
    )
