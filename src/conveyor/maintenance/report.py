"""What the CLI, the job and the demo call: maintenance over several tables, per-table reports,
and the tables they print."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from conveyor.catalog import Catalog, TableRef, table_uri
from conveyor.maintenance.compact import CompactOptions, compact_table, plan_compaction
from conveyor.maintenance.log import MaintenanceRun, last_done
from conveyor.maintenance.stats import table_stats
from conveyor.maintenance.vacuum import VacuumOptions, vacuum_table
from conveyor.settings import Settings
from conveyor.units import mib

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def maintain(
    spark: SparkSession,
    settings: Settings,
    catalog: Catalog,
    tables: Sequence[TableRef],
    options: CompactOptions | VacuumOptions,
) -> list[MaintenanceRun]:
    """Compact (CompactOptions) or vacuum (VacuumOptions) each table in turn. Callers check a
    vacuum retention with `VacuumOptions.refuse_unsafe` before starting Spark."""
    if isinstance(options, VacuumOptions):
        return [vacuum_table(spark, settings, catalog, ref, options) for ref in tables]
    return [compact_table(spark, settings, catalog, ref, options) for ref in tables]


def maintenance_pass(
    spark: SparkSession,
    settings: Settings,
    catalog: Catalog,
    *,
    vacuum: bool = True,
    force: bool = False,
    include_open: bool = False,
) -> list[MaintenanceRun]:
    """One pass over every catalog table: compact (Z-order where the catalog declares columns)
    what crossed the thresholds, then vacuum at the safe retention. `force` lowers the
    small-file count that triggers compaction to 2 and `include_open` takes partitions still
    inside the late-data tolerance too (e.g. for a demo with few, recent files)."""
    tables = list(catalog.tables())
    compaction = CompactOptions(zorder=True, force=force, include_open=include_open)
    runs = maintain(spark, settings, catalog, tables, compaction)
    if vacuum:
        runs += maintain(spark, settings, catalog, tables, VacuumOptions())
    return runs


@dataclass
class TableReport:
    """One line of `conveyor tables`."""

    table: str
    stream: str
    layer: str
    uri: str
    exists: bool
    version: int | None = None
    files: int = 0
    bytes: int = 0
    average_file_size: float = 0.0
    small_share: float = 0.0
    needs_compaction: bool = False
    last_compaction: datetime | None = None
    last_vacuum: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("last_compaction", "last_vacuum"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


def table_reports(
    settings: Settings, catalog: Catalog, tables: Sequence[TableRef]
) -> list[TableReport]:
    """Version, files, average file size, share of small files, whether compaction is due, and
    the last compaction and vacuum (from the maintenance log) of each table; no Spark."""
    done = last_done(settings)
    now = datetime.now(UTC)
    reports = []
    for ref in tables:
        stats = table_stats(settings, ref)
        report = TableReport(
            table=ref.name,
            stream=ref.stream,
            layer=ref.layer.value,
            uri=table_uri(settings, ref),
            exists=stats is not None,
            last_compaction=max(
                (t for op in ("compact", "zorder") if (t := done.get((ref.name, op)))),
                default=None,
            ),
            last_vacuum=done.get((ref.name, "vacuum")),
        )
        if stats is not None:
            tolerance = catalog.stream(ref.stream).event_schema.late_tolerance
            plan = plan_compaction(stats, ref.maintenance, tolerance, now)
            report.version = stats.version
            report.files, report.bytes = stats.files, stats.bytes
            report.average_file_size = stats.average_file_size
            report.small_share = stats.small_share
            report.needs_compaction = bool(plan.partitions)
        reports.append(report)
    return reports


def runs_table(runs: Sequence[MaintenanceRun], title: str = "Maintenance") -> Table:
    """The runs as a narrow table: files and MB before -> after (of the partitions rewritten,
    or of the folder vacuumed), versions and duration; `run_notes` says what happened."""
    table = Table(title=title)
    for column in ("table", "operation", "status", "files", "MB", "version", "s"):
        table.add_column(column, justify="right" if column in ("files", "MB", "s") else "left")
    for run in runs:
        version = (
            f"{run.version_before} -> {run.version_after}"
            if run.version_after is not None
            else str(run.version_before if run.version_before is not None else "-")
        )
        table.add_row(
            run.table,
            run.operation,
            run.status.value,
            f"{run.files_before} -> {run.files_after}",
            f"{_mb(run.bytes_before)} -> {_mb(run.bytes_after)}",
            version,
            f"{run.duration_s:.1f}",
        )
    return table


def run_notes(runs: Sequence[MaintenanceRun]) -> list[str]:
    """One line per run: what it did or why it did nothing (rich markup)."""
    return [f"[bold]{r.table}[/] {r.operation}: {escape(r.message)}" for r in runs]


def print_runs(console: Console, runs: Sequence[MaintenanceRun], title: str) -> None:
    """`runs_table`, then `run_notes` below it."""
    console.print(runs_table(runs, title))
    for line in run_notes(runs):
        console.print(line, highlight=False)


def reports_table(reports: Sequence[TableReport]) -> Table:
    table = Table(title="Conveyor tables")
    for column in (
        "table",
        "version",
        "files",
        "avg size",
        "small files",
        "compaction due",
        "last compaction",
        "last vacuum",
    ):
        table.add_column(column)
    for r in reports:
        if not r.exists:
            table.add_row(r.table, "-", "-", "-", "-", "-", "-", "-")
            continue
        table.add_row(
            r.table,
            str(r.version),
            str(r.files),
            f"{_mb(int(r.average_file_size))} MB",
            f"{r.small_share:.0%}",
            "yes" if r.needs_compaction else "no",
            _when(r.last_compaction),
            _when(r.last_vacuum),
        )
    return table


def _mb(size: int) -> str:
    return f"{mib(size):.2f}"


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "never"
