"""Compaction: bin-pack (or Z-order) the closed partitions that crossed the small-file thresholds.

A partition is compacted when it is *closed* (its day ended more than the stream's late-data
tolerance ago) and holds at least `min_small_files` files below `small_file_threshold`. Delta's
OPTIMIZE rewrites with dataChange=false and does not conflict with blind appends, so a running
stream is never failed or stalled by it. A conflict with another rewrite (a second OPTIMIZE, a
DELETE) is retried with exponential backoff, re-planning each time. One lease per table
(`lock.table_lock`) keeps a second compaction of the same table from starting at all.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from conveyor.catalog import Catalog, MaintenancePolicy, TableRef, table_uri
from conveyor.errors import ConveyorError, first_line
from conveyor.maintenance.lock import DEFAULT_TTL, HEARTBEAT_S, LockHeld, table_lock
from conveyor.maintenance.log import MaintenanceRun, RunStatus, record_run
from conveyor.maintenance.stats import PartitionStats, TableStats, table_stats
from conveyor.settings import Settings
from conveyor.units import mib

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

ATTEMPTS = 4
BACKOFF_S = 2.0
HISTORY_SCAN = 200  # commits searched for our OPTIMIZE (a busy stream commits meanwhile)


class CompactionConflict(ConveyorError):
    """OPTIMIZE kept conflicting with concurrent rewrites of the same files."""


@dataclass(frozen=True)
class CompactOptions:
    """How to compact: `zorder` by the catalog's zorder_by (tables without it are bin-packed),
    `include_open` partitions still inside the late-data tolerance, `force` 2+ small files
    instead of min_small_files. `lock=False` skips the table's lease and relies on Delta's
    conflict detection alone (tests use it); `attempts` bounds the conflict retries. `run_id`
    names the run in the maintenance log (default: a new id), so a scheduler can read its
    outcome back."""

    zorder: bool = False
    include_open: bool = False
    force: bool = False
    lock: bool = True
    lock_ttl: timedelta = DEFAULT_TTL
    attempts: int = ATTEMPTS
    run_id: str | None = None


@dataclass(frozen=True)
class CompactionPlan:
    """The partitions one compaction will rewrite, and why the others are left alone."""

    stats: TableStats
    min_small_files: int
    partitions: tuple[PartitionStats, ...]
    still_open: tuple[PartitionStats, ...]  # over the threshold but not closed yet

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.partitions]

    def describe(self) -> str:
        if self.partitions:
            small = sum(p.small_files for p in self.partitions)
            return f"{len(self.partitions)} partition(s) with {small} small file(s) to compact"
        reason = (
            f"no closed partition has {self.min_small_files} or more files below "
            f"{_mb(self.stats.small_file_threshold)}"
        )
        if self.still_open:
            reason += f"; {len(self.still_open)} open partition(s) wait until they close"
        return reason


def plan_compaction(
    stats: TableStats,
    policy: MaintenancePolicy,
    late_tolerance: timedelta,
    now: datetime,
    *,
    include_open: bool = False,
    force: bool = False,
) -> CompactionPlan:
    """Pick the partitions to compact: closed (unless include_open) and holding at least
    `min_small_files` small files (at least 2 when force)."""
    enough = 2 if force else policy.min_small_files
    crowded = [p for p in stats.partitions if p.small_files >= enough]
    ready = [p for p in crowded if include_open or p.is_closed(late_tolerance, now)]
    return CompactionPlan(
        stats=stats,
        min_small_files=enough,
        partitions=tuple(ready),
        still_open=tuple(p for p in crowded if p not in ready),
    )


def compact_table(
    spark: SparkSession,
    settings: Settings,
    catalog: Catalog,
    ref: TableRef,
    options: CompactOptions = CompactOptions(),
) -> MaintenanceRun:
    """Compact `ref` if its statistics say so (see `CompactOptions`).

    Returns the run: DONE, SKIPPED (nothing to do; not logged), or LOCKED (another compaction
    holds the table's lease; nothing done). Raises CompactionConflict after `options.attempts`
    conflicts; any other failure is logged as FAILED and raised.
    """
    operation = "zorder" if options.zorder and ref.zorder_by else "compact"
    run_id = options.run_id or uuid.uuid4().hex
    run = MaintenanceRun.start(run_id, ref, operation, datetime.now(UTC))
    if not options.lock:
        return _compact(spark, settings, catalog, ref, run, options)
    try:
        with table_lock(
            spark, settings, ref.name, "compact", ttl=options.lock_ttl, heartbeat_s=HEARTBEAT_S
        ):
            return _compact(spark, settings, catalog, ref, run, options)
    except LockHeld as held:
        run.status, run.message = RunStatus.LOCKED, str(held)
        run.ended_at = datetime.now(UTC)
        log.warning("%s", held)
        record_run(spark, settings, run)
        return run


def _compact(
    spark: SparkSession,
    settings: Settings,
    catalog: Catalog,
    ref: TableRef,
    run: MaintenanceRun,
    options: CompactOptions,
) -> MaintenanceRun:
    """Plan against the latest version and OPTIMIZE; a conflict with another rewrite backs
    off (exponential, jittered) and plans again."""
    from conveyor.spark.conflicts import retry_conflicts

    tolerance = catalog.stream(ref.stream).event_schema.late_tolerance

    def attempt() -> tuple[CompactionPlan, dict[str, Any]] | None:
        run.attempts += 1
        stats = table_stats(settings, ref)
        if stats is None:
            _finish(run, RunStatus.SKIPPED, f"table {ref.name} does not exist yet")
            return None
        plan = plan_compaction(
            stats,
            ref.maintenance,
            tolerance,
            datetime.now(UTC),
            include_open=options.include_open,
            force=options.force,
        )
        run.version_before, run.table_files_before = stats.version, stats.files
        run.table_files_after = stats.files
        if not plan.partitions:
            _finish(run, RunStatus.SKIPPED, plan.describe())
            return None
        log.info("%s: %s (version %d)", ref.name, plan.describe(), stats.version)
        return plan, _optimize(spark, settings, ref, plan, run.operation == "zorder")

    run.attempts = 0
    try:
        done = retry_conflicts(
            attempt,
            f"compaction of {ref.name}",
            attempts=options.attempts,
            backoff_s=BACKOFF_S,
            max_pause_s=BACKOFF_S * 2**options.attempts,
        )
    except Exception as exc:
        _failed(spark, settings, run, exc, options.attempts)
        raise  # _failed raised CompactionConflict instead for a conflict
    if done is None:
        return run
    plan, metrics = done
    _fill_outcome(spark, settings, ref, run, plan, metrics)
    record_run(spark, settings, run)
    return run


def _failed(
    spark: SparkSession, settings: Settings, run: MaintenanceRun, exc: Exception, attempts: int
) -> None:
    """Log the run as failed; for a conflict that outlasted every attempt, raise
    CompactionConflict saying to run it again later (the caller re-raises anything else)."""
    from conveyor.spark.conflicts import is_conflict

    if not is_conflict(exc):
        _finish(run, RunStatus.FAILED, f"{type(exc).__name__}: {first_line(exc)}")
        record_run(spark, settings, run)
        return
    message = (
        f"compaction of {run.table} conflicted with concurrent rewrites {attempts} "
        f"times; last: {first_line(exc)}. Run it again later."
    )
    _finish(run, RunStatus.FAILED, message)
    record_run(spark, settings, run)
    raise CompactionConflict(message) from exc


def _optimize(
    spark: SparkSession, settings: Settings, ref: TableRef, plan: CompactionPlan, zorder: bool
) -> dict[str, Any]:
    """Run OPTIMIZE on the planned partitions; returns Delta's metrics."""
    from delta.tables import DeltaTable

    # a session of its own, so the file sizes of this table's policy reach no other work
    session = spark.newSession()
    policy = ref.maintenance
    session.conf.set(
        "spark.databricks.delta.optimize.minFileSize", str(policy.small_file_threshold)
    )
    session.conf.set("spark.databricks.delta.optimize.maxFileSize", str(policy.target_file_size))
    where = " OR ".join(f"({p.predicate()})" for p in plan.partitions)
    builder = DeltaTable.forPath(session, table_uri(settings, ref)).optimize().where(where)
    result = builder.executeZOrderBy(*ref.zorder_by) if zorder else builder.executeCompaction()
    row = result.first()
    metrics: dict[str, Any] = row["metrics"].asDict(recursive=True) if row else {}
    return metrics


def _fill_outcome(
    spark: SparkSession,
    settings: Settings,
    ref: TableRef,
    run: MaintenanceRun,
    plan: CompactionPlan,
    metrics: dict[str, Any],
) -> None:
    labels = plan.labels
    run.partitions = labels
    run.files_before = sum(p.files for p in plan.partitions)
    run.bytes_before = sum(p.bytes for p in plan.partitions)
    committed = _optimize_version(spark, table_uri(settings, ref), plan.stats.version)
    run.version_after = committed
    after = table_stats(settings, ref, version=committed) if committed else plan.stats
    if after is None:
        raise RuntimeError(f"{ref.name}: no Delta table after its compaction committed")
    rewritten = after.only(labels)
    run.files_after = sum(p.files for p in rewritten)
    run.bytes_after = sum(p.bytes for p in rewritten)
    latest = table_stats(settings, ref)
    run.table_files_after = latest.files if latest else after.files
    removed, added = metrics.get("numFilesRemoved", 0), metrics.get("numFilesAdded", 0)
    _finish(
        run,
        RunStatus.DONE,
        f"rewrote {removed} file(s) into {added} in {len(labels)} partition(s)"
        + (f", Z-ordered by {', '.join(ref.zorder_by)}" if run.operation == "zorder" else ""),
    )


def _optimize_version(spark: SparkSession, uri: str, after: int) -> int | None:
    """The version our OPTIMIZE committed (None when it had nothing to rewrite)."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    row = (
        DeltaTable.forPath(spark, uri)
        .history(HISTORY_SCAN)
        .where((F.col("operation") == "OPTIMIZE") & (F.col("version") > after))
        .agg(F.max("version").alias("v"))
        .first()
    )
    return int(row["v"]) if row and row["v"] is not None else None


def _finish(run: MaintenanceRun, status: RunStatus, message: str) -> MaintenanceRun:
    run.status, run.message, run.ended_at = status, message, datetime.now(UTC)
    return run


def _mb(size: int) -> str:
    return f"{mib(size):g} MB"
