"""A Delta table's active data files, kept current from its log without rebuilding its state.

Reading a Delta table through Spark at a new version makes Delta rebuild that version's state
(a shuffle over the log, several Spark jobs: about a second each time here), and the ingest's
dedup decision reads silver after every batch's commit. `ActiveFiles` has Delta rebuild the state
once, then applies each later commit's `add` and `remove` actions, read from its JSON file in
the log (through Hadoop's FileSystem, `HadoopFiles`). It reads only where that is exactly what
Delta would read: no deletion vectors, no column mapping, the metadata and protocol it started
from. On anything else (a schema change, a gap in the log) it starts over from Delta, and
`scan` returns None where it cannot stand in for Delta at all; the caller then reads through
Delta.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from conveyor.spark import delta_internals
from conveyor.spark.frames import local_frame
from conveyor.spark.jvm import HadoopFiles

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataFile:
    """One active file: its full path, partition values and column statistics (as logged)."""

    path: str
    partition: dict[str, str | None]
    min_values: dict[str, Any]
    max_values: dict[str, Any]
    records: int | None = None


def _data_file(root: str, add: dict[str, Any]) -> DataFile:
    stats = json.loads(add.get("stats") or "{}")
    path = unquote(add["path"])
    return DataFile(
        path=path if "://" in path else f"{root}/{path}",
        partition=dict(add.get("partitionValues") or {}),
        min_values=stats.get("minValues") or {},
        max_values=stats.get("maxValues") or {},
        records=stats.get("numRecords"),
    )


REPLAY_FROM_ZERO = 50
"""A table with fewer commits is read from its commit files on first use, not rebuilt."""


def _plain(snapshot: Any) -> bool:
    """No column mapping: data files name their columns as the schema does."""
    metadata = json.loads(snapshot.metadata().json())["metaData"]
    mapping = (metadata.get("configuration") or {}).get("delta.columnMapping.mode", "none")
    return bool(mapping == "none")


@dataclass
class ActiveFiles:
    """The active files of the Delta table at `uri`, as of `version`."""

    uri: str
    version: int = -1
    files: dict[str, DataFile] = field(default_factory=dict)
    usable: bool = False
    _shape: str = ""

    def refresh(self, spark: SparkSession) -> bool:
        """Bring the file list to the table's latest version; False when the table does not
        exist or cannot be read this way (then `scan` returns None)."""
        table_log = delta_internals.delta_log(spark, self.uri)
        snapshot = delta_internals.latest_snapshot(spark, table_log)
        latest = int(snapshot.version())
        if latest < 0:
            self.version, self.files, self.usable = -1, {}, False
            return False
        shape = f"{snapshot.metadata().json()}\n{snapshot.protocol().json()}"
        if self.version < 0 and latest < REPLAY_FROM_ZERO and self._from_zero(spark, latest):
            self._shape = shape
            self.usable = self.usable and _plain(snapshot)
        elif shape != self._shape or latest < self.version or not self._follow(spark, latest):
            self._start_over(spark, snapshot, shape)
        return self.usable

    def _from_zero(self, spark: SparkSession, latest: int) -> bool:
        """A young table's files from its first commits, without a state rebuild."""
        self.files, self.usable = {}, True
        if self._follow(spark, latest, replaying=True):
            return True
        self.version, self.files, self.usable = -1, {}, False
        return False

    def _start_over(self, spark: SparkSession, snapshot: Any, shape: str) -> None:
        """Delta's own state of `snapshot` (one rebuild)."""
        from pyspark.sql import DataFrame

        began = time.perf_counter()
        self._shape = shape
        self.version = int(snapshot.version())
        state = DataFrame(snapshot.allFiles().toDF(), spark)
        rows = state.selectExpr("path", "partitionValues", "stats", "deletionVector").collect()
        root = self.uri.rstrip("/")
        self.files = {}
        has_vectors = False
        for row in rows:
            add = row.asDict(recursive=True)
            has_vectors = has_vectors or add["deletionVector"] is not None
            data = _data_file(root, add)
            self.files[data.path] = data
        self.usable = _plain(snapshot) and not has_vectors
        log.info(
            "%s: %d active files at version %d (Delta's state, %.0f ms)",
            self.uri,
            len(self.files),
            self.version,
            (time.perf_counter() - began) * 1000,
        )

    def _follow(self, spark: SparkSession, latest: int, *, replaying: bool = False) -> bool:
        """Apply the commits after `version` up to `latest`; False when one cannot be read or
        changes what this reader relies on (then the state is rebuilt). `replaying`: from the
        table's first commit, whose metadata the snapshot's already says."""
        if self.version < 0 and not replaying:
            return False
        files = HadoopFiles(spark)
        root = self.uri.rstrip("/")
        for version in range(self.version + 1, latest + 1):
            text = files.read_text(f"{root}/_delta_log/{version:020d}.json")
            if text is None:
                return False
            for line in text.splitlines():
                action = json.loads(line) if line.strip() else {}
                if ("metaData" in action or "protocol" in action) and not replaying:
                    return False
                if "add" in action:
                    if action["add"].get("deletionVector"):
                        return False
                    data = _data_file(root, action["add"])
                    self.files[data.path] = data
                elif "remove" in action:
                    self.files.pop(_data_file(root, action["remove"]).path, None)
            self.version = version
        return True

    def records(self, keep: Callable[[DataFile], bool]) -> int | None:
        """The rows of the files `keep` selects, from their statistics; None when a file has
        none logged."""
        counts = [f.records for f in self.files.values() if keep(f)]
        return None if any(n is None for n in counts) else sum(n for n in counts if n)

    def scan(
        self, spark: SparkSession, schema: str, keep: Callable[[DataFile], bool]
    ) -> DataFrame | None:
        """The files `keep` selects, read as Parquet with `schema` (columns of the files, not
        partition columns); None when this reader cannot stand in for Delta."""
        if not self.usable:
            return None
        paths = [f.path for f in self.files.values() if keep(f)]
        if not paths:
            return local_frame(spark, [], schema)
        # the table's root as the base: partition folders are read as partition columns alike
        return spark.read.schema(schema).option("basePath", self.uri).parquet(*paths)
