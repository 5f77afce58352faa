"""Deciding an append stream's repeats: records whose dedup key the batch holds more than once,
or silver already holds within the late-data tolerance of their event time.

A batch of at most SMALL_BATCH records decides on the driver (`decide_on_driver`: its keys
collected, silver read for those keys only); a larger one in Spark (`repeats`). Both decide the
same duplicates (tests/spark/test_dedup_paths.py). Rework (replay, rebuild) decides its
records' repeats with `repeats` too, so a replayed record is judged as the stream judges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from conveyor.catalog import Layer
from conveyor.ingest import quality
from conveyor.ingest.core import KAFKA_COORDINATES, RunState, StreamTarget
from conveyor.ingest.quarantine import no_problems
from conveyor.ledger import Partition, PartitionTime
from conveyor.spark.delta_files import DataFile
from conveyor.spark.frames import local_frame

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession


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


SHUFFLED_SLICE = 2
"""Up to this many times a batch's rows in silver's slice, `repeats` finds the repeated keys
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
driver (`repeats`)."""


def repeats(
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
    valid = classified.where(no_problems()).select(
        *keys, quality.EVENT_TIME, quality.EVENT_DATE, "kafka_timestamp", *KAFKA_COORDINATES
    )
    found_slice = _silver_slice(spark, valid, target, state, oldest, silver_filter)
    existing, slice_rows = found_slice if found_slice is not None else (None, None)
    # keys renamed: a join condition over two columns of one lineage resolves to one
    renamed = [F.col(k).alias(f"_crowded{i}") for i, k in enumerate(keys)]
    shuffled = existing is not None and _shuffle_slice(slice_rows, batch_rows)
    crowded = _crowded(valid, existing if shuffled else None, keys).select(*renamed)
    if existing is not None and not shuffled:
        # a larger (or unknown) slice is scanned against the batch's keys, broadcast, never
        # shuffled: it can hold millions of rows (null keys match nothing, as in `_seen`)
        known = existing.join(F.broadcast(valid.select(*keys)), on=keys, how="left_semi")
        if silver_filter is None:
            decided, repeated = _few_repeats(spark, valid, known, crowded, target, state)
            if decided:
                return repeated
        crowded = crowded.unionByName(known.select(*renamed)).distinct()
    if silver_filter is None:
        found = crowded.limit(CROWDED_ON_DRIVER + 1).collect()
        if not found:
            return None
        if len(found) <= CROWDED_ON_DRIVER:
            wanted = [tuple(r) for r in found]
            return _repeats_of_keys(spark, valid, wanted, target, state)
    return _repeats_in_spark(valid, existing, crowded, target)


def _few_repeats(
    spark: SparkSession,
    valid: DataFrame,
    known: DataFrame,
    crowded: DataFrame,
    target: StreamTarget,
    state: RunState,
) -> tuple[bool, DataFrame | None]:
    """(True, the repeats) when silver's rows matching the batch's keys (`known`) and the
    batch's crowded keys are few enough to decide on the driver; (False, None) when not. The
    matching rows are kept from this one scan: what `_repeats_of_silver` would read again."""
    keys = list(target.stream.event_schema.dedup_key)
    seen = _found(known, keys, "_seen_time", [f"_seen_{c}" for c in KAFKA_COORDINATES])
    matched = seen.limit(CROWDED_ON_DRIVER + 1).collect()
    if len(matched) > CROWDED_ON_DRIVER:
        return False, None
    in_batch = crowded.limit(CROWDED_ON_DRIVER + 1).collect()
    if len(in_batch) > CROWDED_ON_DRIVER:
        return False, None
    repeated = {tuple(r) for r in in_batch} | {_key_of(r, len(keys)) for r in matched}
    if not repeated:
        return True, None
    return True, _repeats_of_keys(spark, valid, list(repeated), target, state, matched)


def _crowded(valid: DataFrame, existing: DataFrame | None, keys: list[str]) -> DataFrame:
    """The keys the batch holds more than once, or (with silver's slice about the batch's
    size, `existing`) once in the batch and again in the slice: one aggregation."""
    from pyspark.sql import functions as F

    if existing is None:
        counted = valid.groupBy(*keys).agg(F.count(F.lit(1)).alias("_n"))
        return counted.where(F.col("_n") > 1).select(*keys)
    sides = valid.select(*keys, F.lit(1).alias("_batch")).unionByName(
        existing.select(*keys, F.lit(0).alias("_batch"))
    )
    counted = sides.groupBy(*keys).agg(
        F.count(F.lit(1)).alias("_n"), F.sum("_batch").alias("_in_batch")
    )
    return counted.where((F.col("_n") > 1) & (F.col("_in_batch") > 0)).select(*keys)


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


def decide_on_driver(
    spark: SparkSession, classified: DataFrame, target: StreamTarget, state: RunState
) -> tuple[DataFrame | None, SilverShare]:
    """`repeats` and `silver_share` for a small batch: its records' validity, keys, times
    and coordinates collected (one job), the repeats within the batch found here, and silver read
    for the batch's keys within the tolerance of its event times (one job). The same decision
    as `repeats`: the first record of a key by Kafka time, partition and offset is kept, and
    a record whose key silver holds from another Kafka record within the late-data tolerance
    of its event time is a repeat."""

    stream = target.stream
    keys = list(stream.event_schema.dedup_key)
    everything = _narrow(classified, keys, no_problems().alias("valid")).collect()
    rows = [r for r in everything if r["valid"]]
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
    partition and offset), as Spark's window in `repeats` orders them."""
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


def silver_rows(classified: DataFrame, repeats: DataFrame | None) -> DataFrame:
    from pyspark.sql import functions as F

    valid = classified.where(no_problems())
    if repeats is None:
        return valid
    return valid.join(F.broadcast(repeats), on=list(KAFKA_COORDINATES), how="left_anti")


def silver_share(classified: DataFrame, repeats: DataFrame | None) -> SilverShare:
    """One job: rows, newest event time per partition and event dates of the silver share
    (the valid records but the repeats), and the records bound for quarantine."""
    from pyspark.sql import functions as F

    marked = classified.select("topic", "partition", quality.EVENT_TIME, quality.EVENT_DATE)
    valid = no_problems()
    if repeats is not None:
        flags = repeats.select(*KAFKA_COORDINATES, F.lit(True).alias("_repeat"))
        joined = classified.join(F.broadcast(flags), on=list(KAFKA_COORDINATES), how="left")
        marked = joined.select(
            "topic",
            "partition",
            quality.EVENT_TIME,
            quality.EVENT_DATE,
            valid.alias("valid"),
            F.col("_repeat").isNotNull().alias("_repeat"),
        )
        kept = F.col("valid") & ~F.col("_repeat")
        invalid = ~F.col("valid")
    else:
        marked = classified.select(
            "topic", "partition", quality.EVENT_TIME, quality.EVENT_DATE, valid.alias("valid")
        )
        kept, invalid = F.col("valid"), ~F.col("valid")
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
    return share_of(per_partition, quarantined="quarantined")


def share_of(per_partition: list[Any], *, quarantined: str) -> SilverShare:
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
