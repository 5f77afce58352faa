"""Spark's JVM from Python, for what neither PySpark's public API nor delta-rs offers: Hadoop's
FileSystem on any URI the session can reach (file sizes, exclusive creation for locks and
checkpoint ids, listings), the Delta version a commit just made, an idempotent Delta append that
reads the table's app transactions from its checksum file (`append_once`, `append_idempotent`),
and whether a SparkContext is already running. Delta's internals themselves are driven only
through `conveyor.spark.delta_internals`."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conveyor.spark import delta_internals

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileInfo:
    """One file: full URI, size in bytes, last modification (UTC)."""

    uri: str
    size: int
    modified_at: datetime


def _info(status: Any) -> FileInfo:
    return FileInfo(
        uri=str(status.getPath().toString()),
        size=int(status.getLen()),
        modified_at=datetime.fromtimestamp(status.getModificationTime() / 1000, UTC),
    )


class HadoopFiles:
    """File operations on any URI the session's Hadoop configuration can reach."""

    def __init__(self, spark: SparkSession) -> None:
        jvm: Any = spark._jvm
        jsc: Any = spark._jsc
        self._jvm = jvm
        self._conf = jsc.hadoopConfiguration()

    def _path(self, uri: str) -> tuple[Any, Any]:
        path = self._jvm.org.apache.hadoop.fs.Path(uri)
        return path, path.getFileSystem(self._conf)

    def exists(self, uri: str) -> bool:
        path, fs = self._path(uri)
        return bool(fs.exists(path))

    def files_in(self, folder: str) -> dict[str, FileInfo]:
        """Files (not folders) directly inside `folder`, by name; {} when it does not exist."""
        path, fs = self._path(folder)
        if not fs.exists(path):
            return {}
        found = {}
        for status in fs.listStatus(path):
            if status.isFile():
                info = _info(status)
                found[info.uri.rsplit("/", 1)[-1]] = info
        return found

    def data_files(self, table: str) -> Iterator[FileInfo]:
        """Every file under a table folder except Delta's log and hidden (`_`, `.`) entries:
        what VACUUM considers."""
        path, fs = self._path(table)
        if not fs.exists(path):
            return
        root = str(fs.makeQualified(path).toString()).rstrip("/") + "/"
        files = fs.listFiles(path, True)
        while files.hasNext():
            info = _info(files.next())
            relative = info.uri[len(root) :] if info.uri.startswith(root) else info.uri
            if not any(part.startswith(("_", ".")) for part in relative.split("/")):
                yield info

    def create_new(self, uri: str, text: str) -> bool:
        """Create a file holding `text` only if nothing is there (atomic on HDFS); False when
        it already existed or another writer won the race."""
        from py4j.protocol import Py4JJavaError

        path, fs = self._path(uri)
        try:
            out = fs.create(path, False)
        except Py4JJavaError as exc:
            # it existed when we tried, even if its holder removed it since: the caller looks again
            if "FileAlreadyExistsException" in str(exc.java_exception) or fs.exists(path):
                return False
            raise
        try:
            out.write(bytearray(text.encode()))
        finally:
            out.close()
        return True

    def read_text(self, uri: str) -> str | None:
        """The file's text, or None when it does not exist (any more)."""
        from py4j.protocol import Py4JJavaError

        path, fs = self._path(uri)
        try:
            stream = fs.open(path)
        except Py4JJavaError as exc:
            # gone, or gone when opened and re-created since: both read as "not there" now
            if "FileNotFoundException" in str(exc.java_exception) or not fs.exists(path):
                return None
            raise
        try:
            return str(self._jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
        finally:
            stream.close()

    def modified_at(self, uri: str) -> datetime | None:
        path, fs = self._path(uri)
        if not fs.exists(path):
            return None
        return _info(fs.getFileStatus(path)).modified_at

    def rename(self, source: str, target: str) -> bool:
        """Atomic on HDFS: of two renames of the same file, one wins."""
        src, fs = self._path(source)
        dst, _ = self._path(target)
        return bool(fs.rename(src, dst))

    def delete(self, uri: str) -> bool:
        path, fs = self._path(uri)
        return bool(fs.delete(path, False))

    def set_modified_at(self, uri: str, when: datetime) -> None:
        """Backdate a file (tests plant old orphan files with it)."""
        path, fs = self._path(uri)
        millis = int(when.timestamp() * 1000)
        fs.setTimes(path, millis, -1)

    def mkdirs(self, uri: str) -> None:
        path, fs = self._path(uri)
        fs.mkdirs(path)


def delta_version(spark: SparkSession, uri: str) -> int | None:
    """The table's version as the session's Delta log knows it (a commit of this session just
    updated it), without a Spark job; None when the table has no commit."""
    version = delta_internals.known_version(spark, uri)
    return version if version >= 0 else None


def append_once(frame: DataFrame, uri: str, app_id: str, version: int) -> int | None:
    """Append `frame` to the Delta table at `uri` as app transaction (app_id, version), exactly
    as Delta's writer does with `txnAppId` / `txnVersion`: skipped when the table already holds
    that transaction, else the files and the transaction in one commit. Returns the table's
    version afterwards, or None when this way does not apply and the caller must use the writer:
    no table yet, no checksum file holding the table's transactions, or a frame whose schema is
    not exactly the table's (a new column is the writer's schema evolution).

    Why: Delta 4.4's writer looks the app id up in the snapshot's fully rebuilt state, three
    Spark jobs over the log on every idempotent write (about 1 s on a small table, four times a
    batch), while each commit already keeps the table's transactions in its checksum file.
    Unlike the writer, the commit does not guard against a concurrent writer with the same app
    id: one streaming query per checkpoint (and so per app id) is what rules that out."""
    spark = frame.sparkSession
    table_log = delta_internals.delta_log(spark, uri)
    snapshot = delta_internals.latest_snapshot(spark, table_log)
    if snapshot.version() < 0:
        return None
    known = delta_internals.transactions(snapshot)
    if known is None:
        log.debug("%s: no transactions in the checksum of version %d", uri, snapshot.version())
        return None
    if snapshot.schema().simpleString() != frame._jdf.schema().simpleString():
        log.debug("%s: the frame's schema is not the table's; the writer evolves it", uri)
        return None
    if known.get(app_id, -1) >= version:
        return int(snapshot.version())
    return delta_internals.commit_append(spark, table_log, snapshot, frame._jdf, app_id, version)


def append_idempotent(
    frame: DataFrame,
    uri: str,
    app_id: str,
    version: int,
    partition_by: list[str],
    *,
    merge_schema: bool = False,
    properties: Mapping[str, str] | None = None,
) -> int | None:
    """Append `frame` as app transaction (app_id, version), skipped when the table already holds
    it: `append_once` where it applies, else Delta's writer with `txnAppId` / `txnVersion`
    (creating the table partitioned by `partition_by`, with the Delta table `properties`, or
    adding the frame's new columns when `merge_schema`). Returns the table's version
    afterwards."""
    written = append_once(frame, uri, app_id, version)
    if written is not None:
        return written
    writer = (
        frame.write.format("delta")
        .mode("append")
        .option("txnAppId", app_id)
        .option("txnVersion", version)
    )
    for key, value in (properties or {}).items():  # taken when the write creates the table
        writer = writer.option(key, value)
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    writer.partitionBy(*partition_by).save(uri)
    return delta_version(frame.sparkSession, uri)


def spark_context_running() -> bool:
    """Whether this process already runs a SparkContext (e.g. inside spark-submit)."""
    from pyspark import SparkContext

    return SparkContext._active_spark_context is not None
