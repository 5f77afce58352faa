"""Quarantine replay and silver rebuild: records judged again with the catalog as it is now.

`replay` re-validates quarantined records of a stream (chosen by reason code and by the time
they were quarantined). A record that now passes lands in silver, or counts as a duplicate
when silver already holds its dedup key within the late-data tolerance (decided by the
stream's own code, `conveyor.ingest.dedup.repeats`); one that still fails stays, with its new reason.
Quarantine rows are marked (`replayed_at`, `replay_run`, `replay_outcome`), never deleted,
so every bronze record is in exactly one of silver, the duplicates, or quarantine unmarked.
A replayed row keeps its original `ingest_time` (silver's ingest time is always bronze's).

A record lands in silver at most once, ever: silver is appended first, then quarantine is
marked (one MERGE). A run killed between the two leaves records in silver unmarked; the next
run finds their Kafka coordinates in silver, lands nothing twice and marks them.

`rebuild` re-derives silver and quarantine from bronze for a range of ingest dates (or all of
it): rows that now fail go to quarantine, rows that now pass to silver, duplicates are decided
as the stream decides, within the range and against silver outside it. A record the stream
judged too late stays so (its lateness depended on arrival order; `replay --reason too_late`
lands it). Silver and quarantine are each replaced in one commit (`replaceWhere` over the
range); a rerun derives the same rows and writes nothing when nothing changed.

Both hold the stream's write lease (`maintenance.lock.stream_lock`) for their run: the
stream's batches take it too and wait while a replay or rebuild holds it, so no dedup key gets
into silver twice while both run. The lease is the stream's rather than a coordination inside
the stream so that a replay works the same whether the stream runs or not. A commit that
races a compaction of the same table is retried. Each run is a ledger row (`kind = replay` or
`rebuild`) whose `event_dates` are the days it changed, which `analytics --with-late`
recomputes.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from conveyor.catalog import Catalog, Layer, StreamSpec
from conveyor.catalog.models import UnknownStream
from conveyor.errors import ConveyorError
from conveyor.ingest import decode, dedup, quality
from conveyor.ingest.core import KAFKA_COORDINATES, RunState, StreamTarget
from conveyor.ingest.crash import kill_point
from conveyor.ingest.quality import QuarantineReason
from conveyor.ingest.quarantine import REPLAY_COLUMNS, no_problems, quarantine_rows
from conveyor.ingest.silver import silver_columns
from conveyor.ledger import LedgerEntry, ReworkRecord, append_entry, table_exists
from conveyor.settings import Settings
from conveyor.spark.conflicts import retry_conflicts
from conveyor.spark.jvm import delta_version
from conveyor.spark.sql import identifier

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

REPLAY, REBUILD = "replay", "rebuild"


class ReworkArgumentError(ConveyorError):
    """A replay or rebuild asked for something that cannot be: nothing was written."""

    exit_code = 2


# --- arguments -------------------------------------------------------------------------------


RECORD_COLUMNS = (
    "value",
    "key",
    *KAFKA_COORDINATES,
    "kafka_timestamp",
    "ingest_time",
    "ingest_date",
)
"""A stored record's columns in the shape the decode stage reads (bronze's and quarantine's)."""


def reworkable(catalog: Catalog, name: str) -> StreamSpec:
    """The append stream `name`; ReworkArgumentError (one line) for an unknown stream or a cdc
    stream, whose silver follows its source table rather than bronze."""
    try:
        stream = catalog.stream(name)
    except UnknownStream as exc:
        raise ReworkArgumentError(str(exc)) from None
    if stream.cdc is not None:
        raise ReworkArgumentError(
            f"stream {name!r} is a cdc stream: replay and rebuild apply to append streams "
            "(a cdc stream's silver follows the source table; re-snapshot the connector instead)"
        )
    return stream


def parse_moment(text: str, option: str, *, end: bool = False) -> datetime:
    """An ISO-8601 timestamp (UTC unless it says otherwise) or date; a date as `--until`
    (`end`) means the end of that day."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1 if end else 0), time(), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ReworkArgumentError(
            f"{option} {text!r}: not an ISO-8601 date or timestamp (e.g. 2026-12-04 or "
            "2026-12-04T09:30:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ReplaySelection:
    """Which quarantined records a replay re-judges: reason codes, quarantined in
    [since, until)."""

    reasons: tuple[str, ...]
    since: datetime | None = None
    until: datetime | None = None


REPLAYED_BY_DEFAULT = tuple(r.value for r in QuarantineReason if r is not QuarantineReason.TOO_LATE)
"""Every reason but `too_late`: a late record is replayed only when named."""


def replay_selection(
    reasons: Sequence[str], since: str | None, until: str | None, now: datetime | None = None
) -> ReplaySelection:
    """Check a replay's arguments (ReworkArgumentError names the wrong one)."""
    known = {r.value for r in QuarantineReason}
    unknown = [r for r in reasons if r not in known]
    if unknown:
        raise ReworkArgumentError(
            f"--reason {unknown[0]!r}: not a quarantine reason code (codes: "
            f"{', '.join(sorted(known))})"
        )
    lo = parse_moment(since, "--since") if since else None
    hi = parse_moment(until, "--until", end=True) if until else None
    _check_range(lo, hi, f"--since {since}", f"--until {until}", now)
    chosen = tuple(dict.fromkeys(reasons)) if reasons else REPLAYED_BY_DEFAULT
    return ReplaySelection(chosen, lo, hi)


def rebuild_range(
    from_date: str | None, to_date: str | None, everything: bool, now: datetime | None = None
) -> tuple[date, date] | None:
    """The ingest dates a rebuild covers, inclusive; None for `--all`."""
    if everything:
        if from_date or to_date:
            raise ReworkArgumentError(
                "--all rebuilds every ingest date: give it without --from/--to"
            )
        return None
    if not (from_date and to_date):
        raise ReworkArgumentError("give --from DATE and --to DATE (ingest dates), or --all")
    days = []
    for text, option in ((from_date, "--from"), (to_date, "--to")):
        try:
            days.append(date.fromisoformat(text))
        except ValueError:
            raise ReworkArgumentError(
                f"{option} {text!r}: not an ISO-8601 date (e.g. 2026-12-04)"
            ) from None
    lo, hi = days
    _check_range(
        datetime.combine(lo, time(), UTC),
        datetime.combine(hi + timedelta(days=1), time(), UTC),
        f"--from {from_date}",
        f"--to {to_date}",
        now,
    )
    return lo, hi


def _check_range(
    lo: datetime | None, hi: datetime | None, first: str, last: str, now: datetime | None
) -> None:
    now = now or datetime.now(UTC)
    if lo is not None and hi is not None and lo >= hi:
        raise ReworkArgumentError(f"{first} is not before {last}: empty range")
    if lo is not None and lo > now:
        raise ReworkArgumentError(f"{first} is in the future")


# --- what a run found ------------------------------------------------------------------------


@dataclass
class ReworkResult:
    """What a replay or rebuild did (or, with dry_run, would do)."""

    stream: str
    kind: str
    run: str
    dry_run: bool
    by_reason: dict[str, dict[str, int]] = field(default_factory=dict)
    """replay: old reason code -> {outcome: records}, outcomes silver, duplicate,
    still_failing, already_landed."""
    read: int = 0
    silver: int = 0
    duplicates: int = 0
    quarantined: int = 0
    still_failing: int = 0
    already_landed: int = 0
    silver_before: int = 0
    quarantined_before: int = 0
    event_dates: list[date] = field(default_factory=list)
    silver_version: int | None = None
    quarantine_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["event_dates"] = [d.isoformat() for d in self.event_dates]
        return data


def _new_run(kind: str) -> str:
    return f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def ensure_replay_columns(spark: SparkSession, settings: Settings, stream: StreamSpec) -> None:
    """Add quarantine's replay marks to a table created before they existed (a no-op after)."""
    from conveyor.catalog import table_uri
    from conveyor.delta_rs import open_table

    uri = table_uri(settings, stream.table(Layer.QUARANTINE))
    table = open_table(uri)
    if table is None:
        return
    have = {f.name for f in table.schema().fields}
    missing = [(n, k) for n, k in REPLAY_COLUMNS if n not in have]
    if missing:
        columns = ", ".join(f"{identifier(n)} {k}" for n, k in missing)
        spark.sql(f"ALTER TABLE delta.{identifier(uri)} ADD COLUMNS ({columns})")
        log.info("quarantine of %s: added the replay marks %s", stream.name, columns)


def _record(
    settings: Settings,
    spark: SparkSession,
    result: ReworkResult,
    work: ReworkRecord,
    started: datetime,
) -> None:
    from conveyor.catalog import ledger_uri

    append_entry(
        ledger_uri(settings),
        LedgerEntry(
            stream=result.stream,
            kind=result.kind,
            app_id=f"conveyor-{result.kind}",
            batch_id=-1,
            started_at=started,
            ended_at=datetime.now(UTC),
            rows_read=result.read,
            silver_rows=result.silver,
            quarantined=result.quarantined,
            duplicates_dropped=result.duplicates,
            silver_version=result.silver_version,
            quarantine_version=result.quarantine_version,
            event_dates=result.event_dates,
            rework=work,
        ),
        txn=False,
        spark=spark,
    )


# --- replay ----------------------------------------------------------------------------------


def replay(
    spark: SparkSession,
    settings: Settings,
    catalog: Catalog,
    name: str,
    selection: ReplaySelection,
    *,
    dry_run: bool = False,
) -> ReworkResult:
    """Replay stream `name`'s quarantined records chosen by `selection` (see the module)."""
    from conveyor.maintenance.lock import stream_lock

    stream = reworkable(catalog, name)
    target = StreamTarget.resolve(settings, stream, f"conveyor-{REPLAY}")
    result = ReworkResult(stream=name, kind=REPLAY, run=_new_run(REPLAY), dry_run=dry_run)
    if not table_exists(spark, target.quarantine):
        return result
    if dry_run:
        _replay(spark, settings, target, selection, result)
        return result
    started = datetime.now(UTC)
    ensure_replay_columns(spark, settings, stream)
    with stream_lock(spark, settings, name, batch=False):
        _replay(spark, settings, target, selection, result)
        _record(
            settings,
            spark,
            result,
            ReworkRecord(
                run=result.run,
                reasons=list(selection.reasons),
                since=selection.since,
                until=selection.until,
                still_failing=result.still_failing,
                already_landed=result.already_landed,
            ),
            started,
        )
    return result


def _replay(
    spark: SparkSession,
    settings: Settings,
    target: StreamTarget,
    selection: ReplaySelection,
    result: ReworkResult,
) -> None:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    records = _replay_candidates(spark, target, selection)
    assessed = decode.assess(records, target.stream.event_schema)
    assessed = assessed.persist(StorageLevel.MEMORY_AND_DISK)
    held = [assessed]
    try:
        repeats = dedup.repeats(spark, assessed, target, RunState(settings), None)
        landed = _in_silver(spark, target, assessed.where(no_problems()))
        marked = _flag(_flag(assessed, landed, "_landed"), repeats, "_repeat")
        outcome = (
            F.when(~no_problems(), F.lit("still_failing"))
            .when(F.col("_landed"), F.lit("already_landed"))
            .when(F.col("_repeat"), F.lit("duplicate"))
            .otherwise(F.lit("silver"))
        )
        marked = marked.withColumn("_outcome", outcome).persist(StorageLevel.MEMORY_AND_DISK)
        held += [f for f in (repeats, landed, marked) if f is not None]
        _tally_replay(marked, result)
        if result.dry_run or not result.read:
            return
        if result.silver:
            rows = marked.where(F.col("_outcome") == "silver").select(
                *silver_columns(target.stream)
            )
            writer = rows.write.format("delta").mode("append")
            writer.partitionBy(*target.stream.table(Layer.SILVER).partition_by).save(target.silver)
        result.silver_version = delta_version(spark, target.silver)
        kill_point("replay-after-silver")
        result.quarantine_version = _mark(spark, target, marked, result.run)
    finally:
        for frame in held:
            frame.unpersist()


def _replay_candidates(
    spark: SparkSession, target: StreamTarget, selection: ReplaySelection
) -> DataFrame:
    """Quarantine's records that `selection` chooses and no earlier replay settled, in the
    shape the decode stage reads, with their old reason code as `_old_reason`."""
    from pyspark.sql import functions as F

    quarantine = spark.read.format("delta").load(target.quarantine)
    chosen = quarantine.where(F.col("reason_code").isin(*selection.reasons))
    if "replay_outcome" in quarantine.columns:
        chosen = chosen.where(F.col("replay_outcome").isNull())
    if selection.since:
        chosen = chosen.where(F.col("ingest_time") >= F.lit(selection.since))
    if selection.until:
        chosen = chosen.where(F.col("ingest_time") < F.lit(selection.until))
    return chosen.select(*RECORD_COLUMNS, F.col("reason_code").alias("_old_reason"))


def _tally_replay(marked: DataFrame, result: ReworkResult) -> None:
    """Count `marked`'s records by old reason and outcome into `result` (one Spark job), with
    the event dates of the records bound for silver."""
    from pyspark.sql import functions as F

    counts = marked.groupBy("_old_reason", "_outcome").count().collect()
    for row in counts:
        result.by_reason.setdefault(row["_old_reason"], {})[row["_outcome"]] = int(row["count"])

    def total(outcome: str) -> int:
        return sum(int(r["count"]) for r in counts if r["_outcome"] == outcome)

    result.read = sum(int(r["count"]) for r in counts)
    result.silver = total("silver")
    result.duplicates = total("duplicate")
    result.still_failing = total("still_failing")
    result.already_landed = total("already_landed")
    new = marked.where(F.col("_outcome") == "silver")
    result.event_dates = sorted(r[0] for r in new.select(quality.EVENT_DATE).distinct().collect())


def _flag(frame: DataFrame, coordinates: DataFrame | None, flag: str) -> DataFrame:
    """`frame` with a boolean column `flag`: its Kafka coordinates are among `coordinates`."""
    from pyspark.sql import functions as F

    if coordinates is None:
        return frame.withColumn(flag, F.lit(False))
    marks = coordinates.select(*KAFKA_COORDINATES).distinct().withColumn(flag, F.lit(True))
    joined = frame.join(F.broadcast(marks), on=list(KAFKA_COORDINATES), how="left")
    return joined.withColumn(flag, F.coalesce(F.col(flag), F.lit(False)))


def _in_silver(spark: SparkSession, target: StreamTarget, valid: DataFrame) -> DataFrame | None:
    """Coordinates of `valid` records silver already holds (landed by a replay killed before
    it marked them), reading only their event dates' partitions."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    if not table_exists(spark, target.silver):
        return None
    dates = [r[0] for r in valid.select(quality.EVENT_DATE).distinct().collect()]
    if not dates:
        return None
    silver = spark.read.format("delta").load(target.silver)
    present = silver.where(F.col(quality.EVENT_DATE).isin(*dates)).select(*KAFKA_COORDINATES)
    probe = valid.select(*KAFKA_COORDINATES)
    found = present.join(F.broadcast(probe), on=list(KAFKA_COORDINATES))
    return found.persist(StorageLevel.MEMORY_AND_DISK)


def _mark(spark: SparkSession, target: StreamTarget, marked: DataFrame, run: str) -> int | None:
    """One MERGE into quarantine: moved records get their replay marks, records that still
    fail their new reason. Returns quarantine's version after it."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    problems = F.col(quality.PROBLEMS)
    moved = F.col("s._outcome") != F.lit("still_failing")
    source = marked.select(
        *KAFKA_COORDINATES,
        "ingest_date",
        "_outcome",
        F.when(F.size(problems) > 0, F.get(problems, 0)["code"]).alias("_code"),
        F.array_join(F.transform(problems, lambda p: p["message"]), "; ").alias("_reason"),
    )
    now = datetime.now(UTC)
    on = " AND ".join(f"t.`{c}` = s.`{c}`" for c in (*KAFKA_COORDINATES, "ingest_date"))

    def merge() -> None:
        table = DeltaTable.forPath(spark, target.quarantine)
        (
            table.alias("t")
            .merge(source.alias("s"), f"{on} AND t.replay_outcome IS NULL")
            .whenMatchedUpdate(
                condition=moved,
                set={
                    "replayed_at": F.lit(now),
                    "replay_run": F.lit(run),
                    # `already_landed`: silver has it from a killed run of a replay
                    "replay_outcome": F.when(
                        F.col("s._outcome") == "duplicate", F.lit("duplicate")
                    ).otherwise(F.lit("silver")),
                },
            )
            .whenMatchedUpdate(
                condition=(F.col("t.reason_code") != F.col("s._code"))
                | (F.col("t.reason") != F.col("s._reason")),
                set={"reason_code": F.col("s._code"), "reason": F.col("s._reason")},
            )
            .execute()
        )

    retry_conflicts(merge, f"the quarantine's MERGE at {target.quarantine}", max_pause_s=20.0)
    return delta_version(spark, target.quarantine)


# --- rebuild ---------------------------------------------------------------------------------


def rebuild(
    spark: SparkSession,
    settings: Settings,
    catalog: Catalog,
    name: str,
    span: tuple[date, date] | None,
    *,
    dry_run: bool = False,
) -> ReworkResult:
    """Re-derive stream `name`'s silver and quarantine rows of the bronze records ingested in
    `span` (inclusive ingest dates; None: all of bronze) (see the module)."""
    from conveyor.maintenance.lock import stream_lock

    stream = reworkable(catalog, name)
    target = StreamTarget.resolve(settings, stream, f"conveyor-{REBUILD}")
    result = ReworkResult(stream=name, kind=REBUILD, run=_new_run(REBUILD), dry_run=dry_run)
    if not table_exists(spark, target.bronze):
        return result
    if dry_run:
        _rebuild(spark, settings, target, span, result)
        return result
    started = datetime.now(UTC)
    ensure_replay_columns(spark, settings, stream)
    with stream_lock(spark, settings, name, batch=False):
        _rebuild(spark, settings, target, span, result)
        _record(
            settings,
            spark,
            result,
            ReworkRecord(
                run=result.run,
                from_date=span[0] if span else None,
                to_date=span[1] if span else None,
                silver_before=result.silver_before,
                quarantined_before=result.quarantined_before,
            ),
            started,
        )
    return result


def _ingested(span: tuple[date, date] | None) -> str | None:
    """SQL: silver rows whose bronze record was ingested in `span` (None: every row)."""
    if span is None:
        return None
    lo = datetime.combine(span[0], time(), UTC)
    hi = datetime.combine(span[1] + timedelta(days=1), time(), UTC)
    # the session's time zone is UTC (conveyor.spark.session)
    return (
        f"ingest_time >= TIMESTAMP '{lo:%Y-%m-%d %H:%M:%S}' "
        f"AND ingest_time < TIMESTAMP '{hi:%Y-%m-%d %H:%M:%S}'"
    )


def _ingest_dates(span: tuple[date, date] | None) -> str | None:
    """SQL: bronze or quarantine rows (partitioned by ingest date) of `span`."""
    if span is None:
        return None
    # not BETWEEN: Spark 4 rewrites it into an expression Delta's replaceWhere cannot resolve
    return f"ingest_date >= DATE '{span[0]}' AND ingest_date <= DATE '{span[1]}'"


def _rebuild(
    spark: SparkSession,
    settings: Settings,
    target: StreamTarget,
    span: tuple[date, date] | None,
    result: ReworkResult,
) -> None:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    stream = target.stream
    in_range, dates = _ingested(span), _ingest_dates(span)
    records = _bronze_records(spark, target, dates)
    quarantine_exists = table_exists(spark, target.quarantine)
    old_quarantine = _range_of(spark, target.quarantine, dates) if quarantine_exists else None
    assessed = decode.assess(records, stream.event_schema)
    if old_quarantine is not None:
        assessed = _keep_too_late(assessed, old_quarantine)
    assessed = assessed.persist(StorageLevel.MEMORY_AND_DISK)
    held: list[DataFrame] = [assessed]
    try:
        # against silver outside the range only: the range's own rows are being re-derived
        outside = F.lit(False) if in_range is None else ~F.expr(in_range)
        repeats = dedup.repeats(spark, assessed, target, RunState(settings), None, outside)
        if repeats is not None:
            held.append(repeats)
        valid = assessed.where(no_problems())
        if repeats is not None:
            valid = valid.join(F.broadcast(repeats), on=list(KAFKA_COORDINATES), how="left_anti")
        columns = silver_columns(stream)
        new_silver = valid.select(*columns).persist(StorageLevel.MEMORY_AND_DISK)
        new_quarantine = quarantine_rows(assessed.where(~no_problems())).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        held += [new_silver, new_quarantine]
        old_silver = spark.read.format("delta").load(target.silver).select(*columns)
        if in_range is not None:
            old_silver = old_silver.where(in_range)
        old_silver = old_silver.persist(StorageLevel.MEMORY_AND_DISK)
        held.append(old_silver)
        _tally_rebuild(result, assessed, (old_silver, new_silver), (old_quarantine, new_quarantine))
        quarantine_same = _same_quarantine(old_quarantine, new_quarantine)
        if result.dry_run:
            return
        if result.event_dates:
            _replace(spark, new_silver, target.silver, stream, Layer.SILVER, in_range)
        result.silver_version = delta_version(spark, target.silver)
        kill_point("rebuild-after-silver")
        if not quarantine_same:
            _replace(spark, new_quarantine, target.quarantine, stream, Layer.QUARANTINE, dates)
        result.quarantine_version = delta_version(spark, target.quarantine)
    finally:
        for frame in held:
            frame.unpersist()


def _bronze_records(spark: SparkSession, target: StreamTarget, dates: str | None) -> DataFrame:
    """Bronze's records of the ingest `dates` (all with None), in the shape the decode stage
    reads."""
    bronze = spark.read.format("delta").load(target.bronze)
    if dates is not None:
        bronze = bronze.where(dates)
    return bronze.select(*RECORD_COLUMNS)


def _tally_rebuild(
    result: ReworkResult,
    assessed: DataFrame,
    silver: tuple[DataFrame, DataFrame],
    quarantine: tuple[DataFrame | None, DataFrame],
) -> None:
    """Count the records read, the (old, new) silver and quarantine rows into `result`, with
    the event dates whose silver rows change."""
    from pyspark.sql import functions as F

    old_silver, new_silver = silver
    old_quarantine, new_quarantine = quarantine
    result.read = assessed.count()
    result.silver = new_silver.count()
    result.quarantined = new_quarantine.count()
    result.duplicates = result.read - result.silver - result.quarantined
    result.silver_before = old_silver.count()
    result.quarantined_before = (
        old_quarantine.where(F.col("replay_outcome").isNull()).count()
        if old_quarantine is not None
        else 0
    )
    changed = old_silver.exceptAll(new_silver).unionByName(new_silver.exceptAll(old_silver))
    result.event_dates = sorted(
        r[0] for r in changed.select(quality.EVENT_DATE).distinct().collect()
    )


def _same_quarantine(old: DataFrame | None, new: DataFrame) -> bool:
    """Whether the re-derived quarantine rows equal the old ones (coordinates, reasons, marks)."""
    if old is None:
        return False
    compared = ["topic", "partition", "offset", "reason_code", "reason", "replay_outcome"]
    before, after = old.select(*compared), new.select(*compared)
    return not (before.exceptAll(after).take(1) or after.exceptAll(before).take(1))


def _range_of(spark: SparkSession, uri: str, dates: str | None) -> DataFrame:
    """Quarantine's rows of the ingest `dates` (all with None), with replay marks (null in a
    table created before them)."""
    from pyspark.sql import functions as F

    frame = spark.read.format("delta").load(uri)
    if dates is not None:
        frame = frame.where(dates)
    for name, kind in REPLAY_COLUMNS:
        if name not in frame.columns:
            frame = frame.withColumn(name, F.lit(None).cast(kind))
    return frame


def _keep_too_late(assessed: DataFrame, quarantine: DataFrame) -> DataFrame:
    """A record the stream judged too late (and no replay has landed) stays too late when it
    passes every check now: its lateness depended on what had arrived before it."""
    from pyspark.sql import functions as F

    late = quarantine.where(
        (F.col("reason_code") == QuarantineReason.TOO_LATE.value) & F.col("replay_outcome").isNull()
    ).select(*KAFKA_COORDINATES, F.col("reason").alias("_late_reason"))
    joined = assessed.join(F.broadcast(late), on=list(KAFKA_COORDINATES), how="left")
    too_late = quality.problem(QuarantineReason.TOO_LATE, F.col("_late_reason"))
    problems = F.when(
        no_problems() & F.col("_late_reason").isNotNull(), F.array(too_late)
    ).otherwise(F.col(quality.PROBLEMS))
    return joined.withColumn(quality.PROBLEMS, problems).drop("_late_reason")


def _replace(
    spark: SparkSession,
    rows: DataFrame,
    uri: str,
    stream: StreamSpec,
    layer: Layer,
    where: str | None,
) -> None:
    """Replace the rows of table `uri` that the SQL `where` selects (all with None) by `rows`,
    in one commit; a commit that races a compaction is retried."""
    partition_by = list(stream.table(layer).partition_by)

    def write() -> None:
        writer = rows.write.format("delta").mode("overwrite")
        if where is not None:
            writer = writer.option("replaceWhere", where)
        writer.partitionBy(*partition_by).save(uri)

    retry_conflicts(write, f"the rebuild's write of {uri}", max_pause_s=20.0)
