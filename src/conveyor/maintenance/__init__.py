"""Table maintenance that never fights the stream: compaction, Z-order and safe VACUUM.

- `stats`: per-partition file counts and sizes of a table at one Delta version.
- `compact`: bin-packing (or Z-order) of *closed* partitions that crossed the catalog's small-file
  thresholds. Delta's OPTIMIZE commits with dataChange=false and does not conflict with appends,
  so a running stream never notices; conflicts with other rewrites are retried with backoff.
- `lock`: a lease file per table and operation outside the table, so a second compaction of the
  same table ends cleanly instead of racing the first.
- `retention` and `vacuum`: VACUUM keeps the largest of the catalog's retention, Delta's 7-day
  minimum and the longest stream lag seen in the ledger plus a margin; less is refused.
- `log`: every run (table, operation, partitions, files and bytes before and after, versions,
  duration) is appended to the maintenance log table `<lake>/_conveyor/maintenance`.
- `report`: `conveyor tables`, one maintenance pass over the catalog (`maintenance_pass`), and the
  tables the CLI and the demo print.
"""

from __future__ import annotations

from conveyor.maintenance.compact import (
    CompactionConflict,
    CompactOptions,
    compact_table,
    plan_compaction,
)
from conveyor.maintenance.lock import LockHeld
from conveyor.maintenance.log import MaintenanceRun, RunStatus, maintenance_log_uri
from conveyor.maintenance.report import (
    TableReport,
    maintain,
    maintenance_pass,
    print_runs,
    reports_table,
    runs_table,
    table_reports,
)
from conveyor.maintenance.retention import RetentionRule, safe_retention
from conveyor.maintenance.stats import PartitionStats, TableStats, table_stats
from conveyor.maintenance.targets import UnknownTable, find_table, select_tables
from conveyor.maintenance.vacuum import VacuumOptions, VacuumRefused, vacuum_table

__all__ = [
    "CompactOptions",
    "CompactionConflict",
    "LockHeld",
    "MaintenanceRun",
    "PartitionStats",
    "RetentionRule",
    "RunStatus",
    "TableReport",
    "TableStats",
    "UnknownTable",
    "VacuumOptions",
    "VacuumRefused",
    "compact_table",
    "find_table",
    "maintain",
    "maintenance_log_uri",
    "maintenance_pass",
    "plan_compaction",
    "print_runs",
    "reports_table",
    "runs_table",
    "safe_retention",
    "select_tables",
    "table_reports",
    "table_stats",
    "vacuum_table",
]
