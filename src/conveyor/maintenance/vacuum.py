"""VACUUM that keeps at least the safe retention (`retention.RetentionRule`), with Delta's own
retention check left on. A cdc stream's delete markers past their retention are dropped before
their table is vacuumed (`markers`).

Two Delta 4.4 behaviours are handled here, for the duration of the call only:
- by default Delta *ignores* an explicit retention and uses the table's
  `delta.deletedFileRetentionDuration` (`vacuum.retentionWindowIgnore.enabled`): that could keep
  less than the safe retention, so the explicit retention is made to count;
- VACUUM lists the table with `parallelPartitionDiscovery.parallelism` tasks (10,000 by
  default): on small clusters that is minutes of empty tasks, so it is set to the cluster's
  parallelism unless configured.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from conveyor.catalog import Catalog, CdcTable, TableRef, table_uri
from conveyor.errors import ConveyorError
from conveyor.maintenance.lock import DEFAULT_TTL, HEARTBEAT_S, LockHeld, table_lock
from conveyor.maintenance.log import MaintenanceRun, RunStatus, record_run
from conveyor.maintenance.markers import prune_markers
from conveyor.maintenance.retention import (
    RetentionRule,
    safe_retention,
    span,
    static_floor,
    whole_hours,
)
from conveyor.maintenance.stats import latest_version, table_exists
from conveyor.settings import Settings
from conveyor.spark.jvm import HadoopFiles
from conveyor.units import parse_duration

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

TEST_FLOOR_VARIABLE = "CONVEYOR_TEST_ONLY_MIN_VACUUM_RETENTION"
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"


class VacuumRefused(ConveyorError):
    """VACUUM was asked to keep less history than is safe; nothing was deleted."""


def test_floor(settings: Settings) -> timedelta:
    """The test-only floor; raises VacuumRefused when it is not configured."""
    raw = settings.test_only_min_vacuum_retention
    if raw is None:
        raise VacuumRefused(
            f"--i-know-this-is-a-test only works with {TEST_FLOOR_VARIABLE} set (a test-only "
            "duration such as 0s); it is not set, so the safe retention applies"
        )
    try:
        return parse_duration(raw)
    except ValueError as exc:
        raise VacuumRefused(f"{TEST_FLOOR_VARIABLE}={raw!r}: {exc}") from None


@dataclass(frozen=True)
class VacuumOptions:
    """How to vacuum: keep `retention` of history (None: the safe retention; less is refused),
    only list the files with `dry_run`, and with `allow_test_floor` go down to the test-only
    floor instead of the safe retention (tests only). `run_id` names the run in the
    maintenance log (default: a new id)."""

    retention: timedelta | None = None
    dry_run: bool = False
    allow_test_floor: bool = False
    lock_ttl: timedelta = DEFAULT_TTL
    run_id: str | None = None

    def refuse_unsafe(self, settings: Settings, tables: Iterable[TableRef]) -> None:
        """Raise VacuumRefused, before any Spark work, when the retention is below what the
        catalog alone already makes unsafe for any of the tables (the ledger's stream lag can
        only raise the floor; `vacuum_table` checks that one)."""
        if self.retention is None:
            return
        for ref in tables:
            if self.allow_test_floor:
                floor, why = test_floor(settings), f"{TEST_FLOOR_VARIABLE} (test only)"
            else:
                floor = static_floor(ref)
                why = (
                    f"the largest of the catalog's vacuum_retention "
                    f"({span(ref.maintenance.vacuum_retention)}) and Delta's minimum (7d); the "
                    "stream lag in the ledger can only raise it"
                )
            if self.retention < floor:
                raise VacuumRefused(_refusal(ref, self.retention, floor, why))


def vacuum_table(
    spark: SparkSession,
    settings: Settings,
    catalog: Catalog,
    ref: TableRef,
    options: VacuumOptions = VacuumOptions(),
) -> MaintenanceRun:
    """VACUUM `ref` (see `VacuumOptions`).

    Raises VacuumRefused when the retention is below the safe retention (below the test-only
    floor when `allow_test_floor`), or when Delta's retention check refuses it; nothing is
    deleted then. With `dry_run` nothing is deleted and `run.paths` lists what would be.
    """
    run_id = options.run_id or uuid.uuid4().hex
    run = MaintenanceRun.start(run_id, ref, "vacuum", datetime.now(UTC))
    uri = table_uri(settings, ref)
    if not table_exists(spark, uri):
        return _finish(run, RunStatus.SKIPPED, f"table {ref.name} does not exist yet")
    rule = safe_retention(spark, settings, catalog.stream(ref.stream), ref)
    floor, why = (
        (test_floor(settings), f"{TEST_FLOOR_VARIABLE} (test only)")
        if options.allow_test_floor
        else (rule.safe, f"the safe retention: {rule.explain()}")
    )
    keep = rule.safe if options.retention is None else options.retention
    if keep < floor:
        raise VacuumRefused(_refusal(ref, keep, floor, why))
    run.retention_hours = float(whole_hours(keep))
    try:
        with table_lock(
            spark, settings, ref.name, "vacuum", ttl=options.lock_ttl, heartbeat_s=HEARTBEAT_S
        ):
            pruned = _prune(spark, settings, catalog, ref, options.dry_run)
            _vacuum(spark, uri, ref, run, options.dry_run, rule)
            if pruned:
                run.message = f"dropped {pruned} delete marker(s) past the retention; {run.message}"
    except LockHeld as held:
        _finish(run, RunStatus.LOCKED, str(held))
    if run.status != RunStatus.SKIPPED:
        record_run(spark, settings, run)
    return run


def _prune(
    spark: SparkSession, settings: Settings, catalog: Catalog, ref: TableRef, dry_run: bool
) -> int:
    """On a cdc stream's delete-markers table, drop the markers past their retention first."""
    if dry_run or ref.layer is not CdcTable.DELETE_MARKERS:
        return 0
    return prune_markers(spark, settings, catalog.stream(ref.stream))


def _vacuum(
    spark: SparkSession,
    uri: str,
    ref: TableRef,
    run: MaintenanceRun,
    dry_run: bool,
    rule: RetentionRule,
) -> None:
    from delta.tables import DeltaTable

    files = HadoopFiles(spark)
    before = list(files.data_files(uri))
    run.version_before = latest_version(spark, uri)
    hours = int(run.retention_hours or 0)
    try:
        with _session_conf(spark, _vacuum_conf(spark)):
            if dry_run:
                listed = spark.sql(f"VACUUM delta.`{uri}` RETAIN {hours} HOURS DRY RUN")
                run.paths = sorted(str(r[0]) for r in listed.collect())
            else:
                DeltaTable.forPath(spark, uri).vacuum(float(hours))
    except Exception as exc:
        if "DELTA_VACUUM_RETENTION_PERIOD_TOO_SHORT" in str(exc):
            raise VacuumRefused(
                f"Delta refused to vacuum {ref.name} keeping {hours}h: its retention check "
                "(kept on) requires at least the table's delta.deletedFileRetentionDuration "
                "(7d by default); nothing was deleted"
            ) from None
        raise
    after = before if dry_run else list(files.data_files(uri))
    run.files_before, run.bytes_before = len(before), sum(f.size for f in before)
    run.files_after, run.bytes_after = len(after), sum(f.size for f in after)
    run.version_after = latest_version(spark, uri)
    if dry_run:
        _finish(
            run,
            RunStatus.DRY_RUN,
            f"would delete {len(run.paths)} file(s) unreferenced for more than {hours}h "
            f"(safe retention {span(rule.safe)}: {rule.explain()})",
        )
    else:
        _finish(
            run,
            RunStatus.DONE,
            f"deleted {len(before) - len(after)} file(s) unreferenced for more than {hours}h "
            f"(safe retention {span(rule.safe)}: {rule.explain()})",
        )


def _vacuum_conf(spark: SparkSession) -> dict[str, str]:
    conf = {"spark.databricks.delta.vacuum.retentionWindowIgnore.enabled": "false"}
    if not spark.sparkContext.getConf().contains(LISTING_PARALLELISM):
        conf[LISTING_PARALLELISM] = str(max(2, spark.sparkContext.defaultParallelism))
    return conf


@contextmanager
def _session_conf(spark: SparkSession, conf: Mapping[str, str]) -> Iterator[None]:
    """Set SQL settings for the block, then put back what was there."""
    previous: dict[str, str | None] = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def _refusal(ref: TableRef, asked: timedelta, floor: timedelta, why: str) -> str:
    return (
        f"refused to vacuum {ref.name} keeping only {span(asked)} of history: the minimum is "
        f"{span(floor)} ({why}). Files removed more recently may still be read by a lagging "
        f"stream or reader, or by time travel. Keep at least {whole_hours(floor)}h, or leave "
        "the retention out to use the safe one. Nothing was deleted."
    )


def _finish(run: MaintenanceRun, status: RunStatus, message: str) -> MaintenanceRun:
    run.status, run.message, run.ended_at = status, message, datetime.now(UTC)
    return run
