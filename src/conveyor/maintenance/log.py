"""The maintenance log: one Delta row per compaction or vacuum run, at `<lake>/_conveyor/maintenance`.

Runs that found nothing to do are not recorded (the hourly DAG would fill the log with them);
runs that did something, were stopped by another run's lock, or failed are.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from conveyor.catalog import TableRef, table_uri
from conveyor.rows import SQL_INT, ddl, spark_fields
from conveyor.settings import Settings
from conveyor.spark.frames import local_frame

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

MAINTENANCE_LOG_PATH = "_conveyor/maintenance"
"""The maintenance log table, relative to the lake."""

APPEND_ATTEMPTS = 5


class RunStatus(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"  # nothing needed doing (not recorded)
    LOCKED = "locked"  # another run of the same operation held the table's lock
    DRY_RUN = "dry_run"
    FAILED = "failed"


@dataclass
class MaintenanceRun:
    """What one compaction or vacuum of one table did.

    `files_*`/`bytes_*` cover the partitions it rewrote (compaction, at the version it read and
    at its own commit) or the table folder's physical files (vacuum); `table_files_*` count the
    table's referenced files before and after.
    """

    run_id: str
    table: str
    stream: str
    layer: str
    operation: str  # compact | zorder | vacuum
    status: RunStatus
    started_at: datetime
    ended_at: datetime
    partitions: list[str] = field(default_factory=list)
    files_before: int = 0
    files_after: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    table_files_before: int = 0
    table_files_after: int = 0
    version_before: int | None = None
    version_after: int | None = None
    retention_hours: float | None = None
    attempts: int = field(default=1, metadata=SQL_INT)
    message: str = ""
    paths: list[str] = field(default_factory=list)  # a dry run's files (not recorded)

    @classmethod
    def start(
        cls, run_id: str, ref: TableRef, operation: str, started_at: datetime
    ) -> MaintenanceRun:
        return cls(
            run_id=run_id,
            table=ref.name,
            stream=ref.stream,
            layer=ref.layer.value,
            operation=operation,
            status=RunStatus.SKIPPED,
            started_at=started_at,
            ended_at=started_at,
        )

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly (for XComs and `--json`)."""
        data = asdict(self)
        data["status"] = self.status.value
        data["started_at"] = self.started_at.isoformat()
        data["ended_at"] = self.ended_at.isoformat()
        data["duration_s"] = round(self.duration_s, 3)
        return data

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row.pop("paths")
        row["status"] = self.status.value
        row["duration_s"] = self.duration_s
        return row


LOG_SCHEMA = ddl([*spark_fields(MaintenanceRun, skip=["paths"]), ("duration_s", "DOUBLE")])
"""The maintenance log's columns: MaintenanceRun's fields (a dry run's paths are not kept)."""


def maintenance_log_uri(settings: Settings) -> str:
    return table_uri(settings, MAINTENANCE_LOG_PATH)


def record_run(spark: SparkSession, settings: Settings, run: MaintenanceRun) -> None:
    """Append the run to the log (retried when concurrent runs create the table together)."""
    from conveyor.spark.conflicts import retry_conflicts

    frame = local_frame(spark, [run.as_row()], LOG_SCHEMA)
    uri = maintenance_log_uri(settings)
    retry_conflicts(
        lambda: frame.write.format("delta").mode("append").save(uri),
        f"the maintenance log's append at {uri}",
        attempts=APPEND_ATTEMPTS,
    )


def logged_runs(settings: Settings, run_id: str) -> list[MaintenanceRun]:
    """The log's rows of run `run_id` (read without Spark); none when the run found nothing
    to do, which is not logged."""
    from conveyor.delta_rs import read_rows

    names = [f.name for f in fields(MaintenanceRun) if f.name != "paths"]
    rows = [r for r in read_rows(maintenance_log_uri(settings), names) if r["run_id"] == run_id]
    return [MaintenanceRun(**{**r, "status": RunStatus(r["status"])}) for r in rows]


def last_done(settings: Settings) -> dict[tuple[str, str], datetime]:
    """When each (table, operation) last completed, from the log (read without Spark); {}
    before the first run."""
    from conveyor.delta_rs import read_rows

    done: dict[tuple[str, str], datetime] = {}
    for row in read_rows(
        maintenance_log_uri(settings), ["table", "operation", "status", "ended_at"]
    ):
        if row["status"] == RunStatus.DONE.value and row["ended_at"] is not None:
            key = (row["table"], row["operation"])
            done[key] = max(row["ended_at"], done.get(key, row["ended_at"]))
    return done
