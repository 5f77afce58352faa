"""How a table's files are spread over its partitions, at one Delta version.

The file list and sizes come from the Delta log (referenced files only, no data read, no Spark:
`conveyor.delta_rs`). Unreferenced files (rewritten but not yet vacuumed) are not counted.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from conveyor.catalog import TableRef, table_uri
from conveyor.settings import Settings
from conveyor.spark.jvm import HadoopFiles

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_COMMIT_FILE = re.compile(r"\d{20}\.json|_last_checkpoint")


@dataclass(frozen=True)
class PartitionStats:
    """One partition: its values (column, value; None for null) and its files."""

    values: tuple[tuple[str, str | None], ...]
    files: int
    bytes: int
    small_files: int

    @property
    def label(self) -> str:
        """`event_date=2026-11-20` (Hive style, as in the folder name)."""
        if not self.values:
            return "(unpartitioned)"
        return "/".join(f"{c}={HIVE_NULL if v is None else v}" for c, v in self.values)

    def day(self) -> date | None:
        """The first partition value that is a date (`ingest_date`, `event_date`), if any."""
        for _, value in self.values:
            try:
                return date.fromisoformat(value) if value and len(value) == 10 else None
            except ValueError:
                continue
        return None

    def is_closed(self, late_tolerance: timedelta, now: datetime) -> bool:
        """True once no on-time event can land here any more: the partition's day has ended
        and the stream's late-data tolerance has passed since. Partitions without a date are
        never closed."""
        day = self.day()
        if day is None:
            return False
        day_ends = datetime.combine(day + timedelta(days=1), time(), UTC)
        return day_ends + late_tolerance <= now

    def predicate(self) -> str:
        """A SQL condition selecting exactly this partition (for OPTIMIZE ... WHERE)."""
        if not self.values:
            return "true"
        return " AND ".join(
            f"`{c}` IS NULL" if v is None else f"`{c}` = '{_sql_string(v)}'" for c, v in self.values
        )


@dataclass(frozen=True)
class TableStats:
    """A table's partitions at `version`; `small` means below `small_file_threshold` bytes."""

    table: str
    uri: str
    version: int
    small_file_threshold: int
    partitions: tuple[PartitionStats, ...]

    @property
    def files(self) -> int:
        return sum(p.files for p in self.partitions)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.partitions)

    @property
    def small_files(self) -> int:
        return sum(p.small_files for p in self.partitions)

    @property
    def average_file_size(self) -> float:
        return self.bytes / self.files if self.files else 0.0

    @property
    def small_share(self) -> float:
        """Small files as a share of all files (0..1)."""
        return self.small_files / self.files if self.files else 0.0

    def only(self, labels: set[str] | list[str]) -> tuple[PartitionStats, ...]:
        wanted = set(labels)
        return tuple(p for p in self.partitions if p.label in wanted)


def table_exists(spark: SparkSession, uri: str) -> bool:
    """True once the table has a first commit.

    `DeltaTable.isDeltaTable` alone is not enough: probed while another process is creating the
    table (its `_delta_log` folder exists, the first commit does not yet), it caches an empty
    table and keeps answering False until something reads the table. So the log folder is
    looked at too, and a read refreshes Delta's cached view.
    """
    from delta.tables import DeltaTable

    if DeltaTable.isDeltaTable(spark, uri):
        return True
    names = HadoopFiles(spark).files_in(f"{uri}/_delta_log")
    if not any(_COMMIT_FILE.fullmatch(name) for name in names):
        return False
    spark.read.format("delta").load(uri).schema  # noqa: B018 - refreshes the cached snapshot
    return True


def latest_version(spark: SparkSession, uri: str) -> int:
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, uri).history(1).select("version").first()
    return int(row["version"]) if row else -1


def table_stats(
    settings: Settings, ref: TableRef, *, version: int | None = None
) -> TableStats | None:
    """Files per partition at `version` (default: the latest), from the Delta log alone (no
    Spark, no data read); None when the table does not exist yet."""
    from conveyor.delta_rs import data_files, open_table

    uri = table_uri(settings, ref)
    table = open_table(uri, version=version)
    if table is None:
        return None
    threshold = ref.maintenance.small_file_threshold
    by_partition: dict[tuple[tuple[str, str | None], ...], list[int]] = defaultdict(list)
    for file in data_files(table, ref.partition_by):
        by_partition[file.partition].append(file.size)
    partitions = [
        PartitionStats(
            values=values,
            files=len(sizes),
            bytes=sum(sizes),
            small_files=sum(1 for s in sizes if s < threshold),
        )
        for values, sizes in sorted(by_partition.items(), key=lambda kv: _label(kv[0]))
    ]
    return TableStats(
        table=ref.name,
        uri=uri,
        version=table.version(),
        small_file_threshold=threshold,
        partitions=tuple(partitions),
    )


def _label(values: tuple[tuple[str, str | None], ...]) -> str:
    return "/".join(f"{c}={HIVE_NULL if v is None else v}" for c, v in values)


def _sql_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
