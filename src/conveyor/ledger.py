"""The ledger: one row per micro-batch per stream (and one per accepted data gap).

It is the pipeline's account book: offsets read per partition, rows landed in each table,
duplicates dropped, Delta versions written, event dates touched (late ones flagged), timings.
Analytics reads it to recompute exactly the days that late events changed.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from conveyor.catalog import LEDGER_PROPERTIES
from conveyor.rows import SQL_INT, ddl, spark_fields
from conveyor.spark.frames import local_frame
from conveyor.units import as_utc

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

STEPS = (
    "parse",
    "dedup",
    "bronze",
    "silver",
    "quarantine",
    "monitor",
    "lock",
    "markers",
    "history",
)
"""The timed steps of a batch, each a `<step>_ms` ledger column: parse (read Kafka, parse and
validate, hold the batch), dedup (repeats in the batch and in silver, and the counts), bronze /
silver / quarantine (that table's append, from its start to its commit), monitor
(Kafka's end offsets for the backlog), lock (taking the stream's write lease, waiting while a
replay or rebuild holds it); a cdc stream's silver step is its MERGE, markers the delete
markers' MERGE and history the scd2 table's MERGE. The ledger's own append follows the row and is logged."""


@dataclass(frozen=True)
class PartitionRange:
    """Offsets a batch read from one partition: start inclusive, end exclusive."""

    topic: str
    partition: int = field(metadata=SQL_INT)
    start_offset: int
    end_offset: int


Partition = tuple[str, int]
"""A Kafka (topic, partition)."""


@dataclass(frozen=True)
class PartitionTime:
    """The newest event time a batch landed in silver from one partition."""

    topic: str
    partition: int = field(metadata=SQL_INT)
    max_event_time: datetime


def merge_newest(newest: dict[Partition, datetime], times: Iterable[PartitionTime]) -> None:
    """Raise each partition's newest event time in `newest` to the later of the two."""
    for t in times:
        key = (t.topic, t.partition)
        at = as_utc(t.max_event_time)
        newest[key] = max(at, newest.get(key, at))


@dataclass(frozen=True)
class Gap:
    """Offsets that Kafka no longer held when the stream needed them: [from, to)."""

    topic: str
    partition: int = field(metadata=SQL_INT)
    from_offset: int
    to_offset: int

    def describe(self) -> str:
        return f"{self.topic}-{self.partition}: offsets {self.from_offset}..{self.to_offset - 1}"


@dataclass(frozen=True)
class SchemaChangeRecord:
    """What a `schema_change` row changed: which column of which table, from what to what."""

    table: str
    field: str
    change: str
    old_type: str | None
    new_type: str | None


@dataclass(frozen=True)
class ReworkRecord:
    """What a `replay` or `rebuild` row chose and found beyond the common counts.

    replay: `reasons`, `since`/`until` (quarantine time) chose the records; `still_failing`
    stayed in quarantine, `already_landed` were in silver from a run killed before it marked
    them. rebuild: `from_date`/`to_date` (ingest dates; null for --all); `silver_before` and
    `quarantined_before` are the range's rows before it."""

    run: str
    reasons: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    from_date: date | None = None
    to_date: date | None = None
    still_failing: int = 0
    already_landed: int = 0
    silver_before: int = 0
    quarantined_before: int = 0


@dataclass(frozen=True)
class ChangeCounts:
    """What a cdc stream's batch held, by record: inserts (`c`, and `r` from the snapshot),
    updates, no-ops (updates whose after-image equals the before-image), deletes, tombstones
    (Kafka's compaction markers, expected and skipped); `keys_changed` are silver's rows the
    MERGE inserted, updated or deleted (a key changed twice in a batch counts once, a change
    older than silver's row counts zero); `history_rows` the scd2 versions added."""

    inserts: int = 0
    updates: int = 0
    noops: int = 0
    deletes: int = 0
    tombstones: int = 0
    keys_changed: int = 0
    history_rows: int = 0


@dataclass
class LedgerEntry:
    """One ledger row."""

    stream: str
    kind: str  # "batch", "gap", "schema_change", "replay" or "rebuild"
    app_id: str
    batch_id: int
    started_at: datetime
    ended_at: datetime
    offsets: list[PartitionRange] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    rows_read: int = 0
    bronze_rows: int = 0
    silver_rows: int = 0
    quarantined: int = 0
    duplicates_dropped: int = 0
    bronze_version: int | None = None
    silver_version: int | None = None
    quarantine_version: int | None = None
    event_dates: list[date] = field(default_factory=list)
    late_dates: list[date] = field(default_factory=list)
    max_event_time: datetime | None = None
    partition_event_times: list[PartitionTime] = field(default_factory=list)
    backlog: int | None = None  # records Kafka held beyond the batch when it ended (lag)
    step_ms: dict[str, int] = field(default_factory=dict)  # STEPS -> milliseconds
    schema_change: SchemaChangeRecord | None = None  # on schema_change rows only
    rework: ReworkRecord | None = None  # on replay and rebuild rows only
    cdc: ChangeCounts | None = None  # on batch rows of cdc streams only

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        del row["step_ms"]
        row.update({f"{step}_ms": self.step_ms.get(step) for step in STEPS})
        return row


LEDGER_FIELDS = (
    *spark_fields(LedgerEntry, skip=["step_ms"]),
    # milliseconds each step of the batch took (see STEPS); null on gap rows
    *((f"{step}_ms", "BIGINT") for step in STEPS),
)
"""The ledger's columns and their Spark types: LedgerEntry's fields, `step_ms` as one column
per step."""
LEDGER_SCHEMA = ddl(LEDGER_FIELDS)
LEDGER_COLUMNS = [name for name, _ in LEDGER_FIELDS]

COLUMN_DOCS: Mapping[str, str] = types.MappingProxyType(
    {
        "stream": "The stream the row is about (the table is partitioned by it).",
        "kind": "`batch` (a micro-batch landed), `gap` (offsets Kafka no longer held, skipped "
        "with `--accept-data-loss`), `schema_change`, `replay` or `rebuild`.",
        "app_id": "The ingest's checkpoint id (a new checkpoint is a new id); with `batch_id`, "
        "the Delta app transaction every write of the batch carries.",
        "batch_id": "The micro-batch's id within the checkpoint.",
        "started_at": "When the batch (or the run) started.",
        "ended_at": "When it ended.",
        "offsets": "Per Kafka partition, the offsets the batch read: `[start_offset, end_offset)`.",
        "gaps": "On `gap` rows: the offsets per partition that were skipped.",
        "rows_read": "Records read from Kafka.",
        "bronze_rows": "Rows appended to bronze.",
        "silver_rows": "Rows appended to silver (a cdc stream: keys changed).",
        "quarantined": "Rows appended to quarantine.",
        "duplicates_dropped": "Repeats of the dedup key dropped (in the batch and against silver).",
        "bronze_version": "The Delta version of bronze after the batch (null: nothing written).",
        "silver_version": "The Delta version of silver after the batch.",
        "quarantine_version": "The Delta version of quarantine after the batch.",
        "event_dates": "The event dates of the rows the batch added to silver (what the "
        "analytics recompute).",
        "late_dates": "Those of them that were already closed (late arrivals).",
        "max_event_time": "The newest event time the batch landed.",
        "partition_event_times": "Per Kafka partition, the newest event time landed: the "
        "lateness watermark.",
        "backlog": "Records Kafka held beyond the batch when it ended (the lag).",
        "schema_change": "On `schema_change` rows: the table, field, change and old and new type.",
        "rework": "On `replay` and `rebuild` rows: what was chosen and what it did.",
        "cdc": "On a cdc stream's batch rows: inserts, updates, no-ops, deletes, tombstones, "
        "keys changed and history rows added.",
        **{
            f"{step}_ms": f"Milliseconds the batch spent in its `{step}` step (null on gap rows)."
            for step in STEPS
        },
    }
)
"""What each ledger column holds (the reference pages are generated from it)."""


def _arrow_type(ddl: str) -> pa.DataType:
    """The Arrow type of one of LEDGER_FIELDS' Spark DDL types (the few the ledger uses)."""
    import pyarrow as pa

    ddl = ddl.strip()
    simple = {
        "STRING": pa.string(),
        "BIGINT": pa.int64(),
        "INT": pa.int32(),
        "DATE": pa.date32(),
        "BOOLEAN": pa.bool_(),
        "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    }
    if ddl in simple:
        return simple[ddl]
    if ddl.startswith("ARRAY<") and ddl.endswith(">"):
        return pa.list_(_arrow_type(ddl[len("ARRAY<") : -1]))
    if ddl.startswith("STRUCT<") and ddl.endswith(">"):
        members = [part.split(":", 1) for part in ddl[len("STRUCT<") : -1].split(",")]
        return pa.struct([(name.strip(), _arrow_type(kind)) for name, kind in members])
    raise ValueError(f"no Arrow type for the ledger's DDL type {ddl!r}")


def arrow_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([(name, _arrow_type(kind)) for name, kind in LEDGER_FIELDS])


def append_entry(
    uri: str, entry: LedgerEntry, *, txn: bool = True, spark: SparkSession | None = None
) -> bool:
    """Append one row. Batch rows are idempotent per (app id, batch id): the commit carries
    them as Delta's app transaction, and a row whose transaction the table already holds is not
    written again. Columns added since a ledger was created are merged into its schema.

    With `spark` (a running job's batches) the row goes through Spark (`append_idempotent`);
    without, through delta-rs from the driver (one-off rows: gaps, tools, tests). A long-running job
    once hung inside delta-rs opening the ledger on HDFS (DeltaTable.__init__ never returned,
    seen in a thread dump), so a job never depends on it per batch. Returns whether the row was
    written (always True with `spark`: Delta skips a replayed transaction silently)."""
    if spark is not None:
        _append_with_spark(spark, uri, entry, txn)
        return True
    return _append_with_delta_rs(uri, entry, txn)


def _append_with_spark(spark: SparkSession, uri: str, entry: LedgerEntry, txn: bool) -> None:
    from conveyor.spark.conflicts import retry_conflicts
    from conveyor.spark.jvm import append_idempotent

    frame = local_frame(spark, [entry.as_row()], LEDGER_SCHEMA)

    def append() -> None:
        if txn:
            append_idempotent(
                frame,
                uri,
                entry.app_id,
                entry.batch_id,
                ["stream"],
                merge_schema=True,
                properties=LEDGER_PROPERTIES,
            )
            return
        writer = frame.write.format("delta").mode("append").option("mergeSchema", "true")
        for key, value in LEDGER_PROPERTIES.items():
            writer = writer.option(key, value)
        writer.partitionBy("stream").save(uri)

    # every stream appends here, and `schema apply` may set its properties meanwhile: a row
    # that met a concurrent metadata commit is appended again (idempotent per batch)
    retry_conflicts(append, "the ledger's append", max_pause_s=20.0)


def _append_with_delta_rs(uri: str, entry: LedgerEntry, txn: bool) -> bool:
    import pyarrow as pa
    from deltalake import CommitProperties, Transaction, write_deltalake

    from conveyor.delta_rs import open_table

    existing = open_table(uri)
    if txn and existing is not None:
        done = existing.transaction_version(entry.app_id)
        if done is not None and done >= entry.batch_id:
            return False
    row = pa.Table.from_pylist([entry.as_row()], schema=arrow_schema())
    commit = CommitProperties(
        max_commit_retries=20,
        app_transactions=[Transaction(entry.app_id, entry.batch_id)] if txn else None,
    )
    write_deltalake(
        existing if existing is not None else uri,
        row,
        mode="append",
        partition_by=["stream"],
        schema_mode="merge",
        commit_properties=commit,
        configuration=None if existing is not None else dict(LEDGER_PROPERTIES),
    )
    return True


def table_exists(spark: SparkSession, uri: str) -> bool:
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, uri))


def _stream_rows(uri: str, stream: str, kind: str, columns: list[str]) -> list[dict[str, Any]]:
    from conveyor.delta_rs import read_rows

    rows = read_rows(uri, ["kind", *columns], partitions=[("stream", "=", stream)])
    return [r for r in rows if r["kind"] == kind]


def previous_event_times(
    uri: str, stream: str, app_id: str, batch_id: int
) -> dict[Partition, datetime]:
    """Newest event time landed from each (topic, partition) by this stream's earlier batches
    (deterministic on replay), as aware UTC datetimes. A row written before the ledger kept
    times per partition counts its newest event time for every partition it read."""
    rows = _stream_rows(
        uri,
        stream,
        "batch",
        ["app_id", "batch_id", "offsets", "max_event_time", "partition_event_times"],
    )
    newest: dict[Partition, datetime] = {}
    for row in rows:
        if row["app_id"] == app_id and row["batch_id"] >= batch_id:
            continue
        per_partition = row.get("partition_event_times")
        if per_partition is not None:
            merge_newest(newest, (PartitionTime(**t) for t in per_partition))
        elif row["max_event_time"] is not None:
            merge_newest(
                newest,
                (
                    PartitionTime(r["topic"], r["partition"], row["max_event_time"])
                    for r in row["offsets"] or []
                ),
            )
    return newest


def recorded_gaps(uri: str, stream: str) -> set[Gap]:
    rows = _stream_rows(uri, stream, "gap", ["gaps"])
    return {
        Gap(g["topic"], g["partition"], g["from_offset"], g["to_offset"])
        for r in rows
        for g in r["gaps"] or []
    }
