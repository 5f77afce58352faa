"""How a table's files are spread over its partitions, at one Delta version.

The file list comes from the Delta snapshot (`inputFiles()`: referenced files only, no data
read); sizes from one listing per partition folder. Unreferenced files (rewritten but not yet
vacuumed) are not counted.
"""

from __future__ import annotations

import re
import urllib.parse
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from conveyor.catalog import TableRef, table_uri
from conveyor.errors import ConveyorError
from conveyor.maintenance.files import LakeFiles
from conveyor.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_COMMIT_FILE = re.compile(r"\d{20}\.json|_last_checkpoint")


class TableFilesMissing(ConveyorError):
    """The Delta log references files the file system no longer has."""


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
    names = LakeFiles(spark).files_in(f"{uri}/_delta_log")
    if not any(_COMMIT_FILE.fullmatch(name) for name in names):
        return False
    spark.read.format("delta").load(uri).schema  # noqa: B018 - refreshes the cached snapshot
    return True


def latest_version(spark: SparkSession, uri: str) -> int:
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, uri).history(1).select("version").first()
    return int(row["version"]) if row else -1


def table_stats(
    spark: SparkSession, settings: Settings, ref: TableRef, *, version: int | None = None
) -> TableStats | None:
    """Files per partition at `version` (default: the latest); None when the table does not
    exist yet. Raises TableFilesMissing when the log references files that are gone."""
    uri = table_uri(settings, ref)
    if not table_exists(spark, uri):
        return None
    at = latest_version(spark, uri) if version is None else version
    referenced = spark.read.format("delta").option("versionAsOf", at).load(uri).inputFiles()
    by_folder: dict[str, list[str]] = defaultdict(list)
    for file in referenced:
        folder, name = file.rsplit("/", 1)
        by_folder[folder].append(name)

    threshold = ref.maintenance.small_file_threshold
    lake = LakeFiles(spark)
    partitions = []
    for folder, names in sorted(by_folder.items()):
        listed = lake.files_in(folder)
        missing = [n for n in names if n not in listed]
        if missing:
            raise TableFilesMissing(
                f"table {ref.name} ({uri}) version {at} references {len(missing)} file(s) that "
                f"are gone from {folder}, e.g. {missing[0]}: the table needs repair "
                "(`FSCK REPAIR TABLE`) before maintenance"
            )
        sizes = [listed[n].size for n in names]
        partitions.append(
            PartitionStats(
                values=_partition_values(uri, folder, ref.partition_by),
                files=len(sizes),
                bytes=sum(sizes),
                small_files=sum(1 for s in sizes if s < threshold),
            )
        )
    return TableStats(
        table=ref.name,
        uri=uri,
        version=at,
        small_file_threshold=threshold,
        partitions=tuple(partitions),
    )


def _partition_values(
    table: str, folder: str, columns: tuple[str, ...]
) -> tuple[tuple[str, str | None], ...]:
    """(column, value) pairs from a Hive-style folder path below the table."""
    found: dict[str, str | None] = {}
    relative = folder[len(table.rstrip("/")) :].strip("/")
    for segment in relative.split("/") if relative else []:
        column, sep, raw = segment.partition("=")
        if sep:
            value = urllib.parse.unquote(raw)
            found[column] = None if value == HIVE_NULL else value
    return tuple((c, found.get(c)) for c in columns if c in found)


def _sql_string(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
