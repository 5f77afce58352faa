"""The changes landing: one micro-batch of a cdc stream, Debezium change events -> bronze, a
MERGE into silver (the source table's current state), delete markers, the scd2 history,
quarantine, and what the batch adds to its ledger row.

Debezium's JSON envelope (`op` c/u/d/r, `before`, `after`, `source.lsn`, `source.ts_ms`) is read
with the after- and before-images as text maps, so every column is typed from its text by the
catalog's type (decimals come as strings, dates as days, timestamps without a zone as epoch
microseconds, timestamptz as ISO text, bytes as base64: the connector settings
`conveyor.debezium.connector` writes). A record that is not an envelope, has no LSN or image, an
unknown `op`, a key column missing, or a value its column's type cannot read goes to
quarantine with its reason; a tombstone (null value) is counted and skipped.

Order: a change applies to a key only when its LSN is above the LSN of the row silver holds (or
of the key's delete marker), the Kafka offset breaking ties inside a batch. So several changes
to one key in a batch, a change re-sent after a newer one (a Connect restart re-sends from its
last flushed offset), or a snapshot row read after a streaming change, all end in the state the
source had. A hard delete leaves a marker (key, LSN) in `<stream>/_delete_markers`, so an older
change re-sent later cannot bring the row back; `prune_markers` drops markers past the stream's
`delete_marker_retention` (`conveyor.maintenance.markers`, run by every vacuum of the markers'
table).

Exactly once: every write of the batch is Delta's app transaction (checkpoint app id, batch id):
appends through `append_idempotent`, MERGEs with Delta's session confs `txnAppId`/`txnVersion`
(set only around the MERGE, on the one thread that writes with this session), so a batch Spark
replays after a crash changes nothing it already committed. The writes go in the order silver,
markers, history, ledger; a replay of a batch that died between two of them finds the markers
and history as the first attempt read them, so it decides the same. A MERGE that meets a
concurrent compaction is retried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.catalog import CdcTable, FieldSpec, Layer, StreamSpec, TableRef, table_uri, types
from conveyor.debezium import UNAVAILABLE
from conveyor.ingest import quality
from conveyor.ingest.bronze import BRONZE_COLUMNS, kafka_columns, stamp_ingest
from conveyor.ingest.core import Batch, Landed, RunState, StreamTarget
from conveyor.ingest.quarantine import quarantine_rows
from conveyor.ingest.silver import silver_columns
from conveyor.ledger import ChangeCounts, PartitionRange
from conveyor.spark.conflicts import retry_conflicts
from conveyor.spark.jvm import append_idempotent, delta_version

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)

OPS = ("c", "u", "d", "r")
"""Debezium's row operations: create, update, delete, read (a snapshot row)."""
ENVELOPE = (
    "before MAP<STRING, STRING>, after MAP<STRING, STRING>, "
    "source STRUCT<lsn: BIGINT, ts_ms: BIGINT>, op STRING, _corrupt STRING"
)
"""What is read of each change event; columns as text, typed by the catalog afterwards."""
HISTORY_COLUMNS = (
    ("_op", "string"),
    ("_lsn", "bigint"),
    ("_valid_from", "timestamp"),
    ("_valid_to", "timestamp"),
    ("_is_current", "boolean"),
    ("topic", "string"),
    ("partition", "int"),
    ("offset", "bigint"),
    ("ingest_time", "timestamp"),
)
"""The scd2 history table's columns after the table's own: one row per version of a key, valid
from the source's commit time of the change that made it until the next change's; a delete is
a row of its own (`_op` = d, the last image, `_is_current` false)."""

ENV = "_env"
TOMBSTONE = "_tombstone"
NOOP = "_noop"
OP = "_op"
LSN = "_lsn"
SOURCE_TS = "_source_ts"
CONFLICT_RETRIES = 10


# ------------------------------------------------------------------ parsing


def _typed(text: Column, spec: FieldSpec) -> Column:
    """A column's value from Debezium's JSON text of it, as the catalog type (null where the
    text does not read as that type; `_wrong_type` tells those apart from a null)."""
    from pyspark.sql import functions as F

    kind = spec.type
    integer = text.rlike(r"^-?\d+$")
    if kind == "string":
        return text
    if kind == "bytes":
        return F.try_to_binary(text, F.lit("base64"))
    if kind == "date":  # days since the epoch, or an ISO date
        return F.when(integer, F.date_add(F.lit("1970-01-01").cast("date"), text.cast("int")))
    if kind == "timestamp":  # epoch microseconds (timestamp), or ISO text (timestamptz)
        return F.when(integer, F.timestamp_micros(text.cast("bigint"))).otherwise(
            text.try_cast("timestamp")
        )
    return text.try_cast(quality.spark_type(spec))


def _cdc_problem(stream: StreamSpec) -> Column:
    """The first problem of a change event (null when it has none or is a tombstone): the
    envelope's, then its columns', then its undeclared columns' (`unknown_fields: quarantine`)."""
    from pyspark.sql import functions as F

    chain = F.when(F.col("value").isNull(), F.lit(None))
    chain = _envelope_problems(chain)
    chain = _column_problems(chain, stream)
    if stream.event_schema.unknown_fields == "quarantine":
        unknown = F.col("_unknown_keys")
        chain = chain.when(
            F.size(unknown) > 0,
            quality.problem(
                quality.QuarantineReason.UNKNOWN_FIELD,
                F.format_string(
                    "column(s) %s are not declared in the catalog", F.array_join(unknown, ", ")
                ),
            ),
        )
    return chain


def _envelope_problems(chain: Column) -> Column:
    """`chain` with the envelope's checks: a change event, a known op, an LSN, its image."""
    from pyspark.sql import functions as F

    reason, problem = quality.QuarantineReason, quality.problem
    env, image = F.col(ENV), F.col("_image")
    op = env["op"]
    checks = [
        (
            env.isNull() | env["_corrupt"].isNotNull(),
            problem(
                reason.MALFORMED_ENVELOPE,
                F.lit("value is not a Debezium change event (JSON with op, source, before/after)"),
            ),
        ),
        (op.isNull(), problem(reason.MALFORMED_ENVELOPE, F.lit("the change event has no `op`"))),
        (
            ~op.isin(*OPS),
            problem(
                reason.UNKNOWN_OP,
                F.format_string(
                    "op %s is not one of c, u, d, r (create, update, delete, read)", op
                ),
            ),
        ),
        (
            env["source"]["lsn"].isNull(),
            problem(reason.MALFORMED_ENVELOPE, F.lit("the change event has no source.lsn")),
        ),
        (
            image.isNull(),
            problem(
                reason.MALFORMED_ENVELOPE,
                F.format_string(
                    "op %s without its %s-image", op, F.when(op == "d", "before").otherwise("after")
                ),
            ),
        ),
    ]
    for condition, found in checks:
        chain = chain.when(condition, found)
    return chain


def _column_problems(chain: Column, stream: StreamSpec) -> Column:
    """`chain` with the image's checks: its keys present, each column of its catalog type
    (never Debezium's unchanged-TOAST placeholder), required columns present."""
    from pyspark.sql import functions as F

    reason, problem = quality.QuarantineReason, quality.problem
    image, op = F.col("_image"), F.col(ENV)["op"]
    cdc = stream.cdc_spec
    for key in cdc.primary_key:
        chain = chain.when(
            image[key].isNull(),
            problem(reason.MISSING_KEY, F.lit(f"key column {key!r} is missing or null")),
        )
    for name, spec in stream.event_schema.fields.items():
        text = image[name]
        if spec.type == "string":  # (other types fail their cast below)
            chain = chain.when(
                text == UNAVAILABLE,
                problem(
                    reason.MALFORMED_ENVELOPE,
                    F.lit(
                        f"column {name!r} holds Debezium's unchanged-TOAST placeholder: set "
                        "REPLICA IDENTITY FULL on the source table (`conveyor cdc apply` does)"
                    ),
                ),
            )
        chain = chain.when(
            text.isNotNull() & F.col(name).isNull(),
            problem(
                reason.WRONG_TYPE,
                F.format_string(f"column {name!r}: %s is not {types.article(spec.type)}", text),
            ),
        )
        if spec.required and name not in cdc.primary_key:
            chain = chain.when(
                (op != "d") & text.isNull(),
                problem(reason.MISSING_FIELD, F.lit(f"required column {name!r} is null")),
            )
    return chain


def parse_changes(rows: DataFrame, stream: StreamSpec) -> DataFrame:
    """Bronze's columns (`kafka_columns`) plus each change event read: `_op`, `_lsn`,
    `_source_ts`, the table's columns typed, `_unknown` (undeclared columns as JSON text),
    `_noop`, `_tombstone` and quality.PROBLEMS (empty when the change is valid). Pure."""
    from pyspark.sql import functions as F

    fields = stream.event_schema.fields
    options = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt"}
    env = F.col(ENV)
    op = env["op"]
    parsed = rows.withColumn(ENV, F.from_json(F.col("value").cast("string"), ENVELOPE, options))
    parsed = parsed.withColumn("_image", F.when(op == "d", env["before"]).otherwise(env["after"]))
    declared = F.array(*(F.lit(n) for n in fields))
    parsed = parsed.withColumn(
        "_unknown_keys",
        F.coalesce(F.array_sort(F.array_except(F.map_keys(F.col("_image")), declared)), F.array()),
    )
    parsed = parsed.select(
        "*", *(_typed(F.col("_image")[n], spec).alias(n) for n, spec in fields.items())
    )
    same = F.lit(True)
    for name in fields:
        same = same & env["before"][name].eqNullSafe(env["after"][name])
    problem = _cdc_problem(stream)
    unknown_json = F.when(
        F.size(F.col("_unknown_keys")) > 0,
        F.to_json(F.map_filter(F.col("_image"), lambda k, _v: ~F.array_contains(declared, k))),
    )
    return parsed.select(
        *BRONZE_COLUMNS_WITHOUT_INGEST,
        *fields,
        op.alias(OP),
        env["source"]["lsn"].alias(LSN),
        F.timestamp_millis(env["source"]["ts_ms"]).alias(SOURCE_TS),
        unknown_json.alias(quality.UNKNOWN),
        F.col("value").isNull().alias(TOMBSTONE),
        ((op == "u") & env["before"].isNotNull() & same).alias(NOOP),
        F.when(problem.isNull(), F.array().cast(quality.PROBLEM_TYPE))
        .otherwise(F.array(problem))
        .alias(quality.PROBLEMS),
    )


BRONZE_COLUMNS_WITHOUT_INGEST = tuple(
    c for c in BRONZE_COLUMNS if c not in ("ingest_time", "ingest_date")
)


def _valid_change() -> Column:
    from pyspark.sql import functions as F

    return ~F.col(TOMBSTONE) & (F.size(F.col(quality.PROBLEMS)) == 0)


def latest_per_key(changes: DataFrame, keys: list[str]) -> DataFrame:
    """The newest change of each key in the batch: highest LSN, then highest offset."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    newest = Window.partitionBy(*keys).orderBy(F.col(LSN).desc(), F.col("offset").desc())
    return changes.withColumn("_rank", F.row_number().over(newest)).where("_rank = 1").drop("_rank")


# ------------------------------------------------------------------ the batch


@dataclass(frozen=True)
class ChangeScan:
    """The first pass over a held batch: offsets per partition and counts by kind."""

    ranges: list[PartitionRange]
    records: int
    quarantined: int
    counts: ChangeCounts

    @property
    def rows(self) -> int:
        return self.records


def _scan(parsed: DataFrame) -> ChangeScan:
    from pyspark.sql import functions as F

    valid = _valid_change()
    per_partition = (
        parsed.groupBy("topic", "partition")
        .agg(
            F.min("offset").alias("lo"),
            F.max("offset").alias("hi"),
            F.count(F.lit(1)).alias("records"),
            F.count(F.when(~F.col(TOMBSTONE) & ~valid, 1)).alias("quarantined"),
            F.count(F.when(F.col(TOMBSTONE), 1)).alias("tombstones"),
            F.count(F.when(valid & F.col(OP).isin("c", "r"), 1)).alias("inserts"),
            F.count(F.when(valid & (F.col(OP) == "u") & ~F.col(NOOP), 1)).alias("updates"),
            F.count(F.when(valid & F.col(NOOP), 1)).alias("noops"),
            F.count(F.when(valid & (F.col(OP) == "d"), 1)).alias("deletes"),
        )
        .collect()
    )

    def total(name: str) -> int:
        return sum(int(r[name]) for r in per_partition)

    return ChangeScan(
        ranges=sorted(
            (
                PartitionRange(r["topic"], r["partition"], r["lo"], r["hi"] + 1)
                for r in per_partition
            ),
            key=lambda r: (r.topic, r.partition),
        ),
        records=total("records"),
        quarantined=total("quarantined"),
        counts=ChangeCounts(
            inserts=total("inserts"),
            updates=total("updates"),
            noops=total("noops"),
            deletes=total("deletes"),
            tombstones=total("tombstones"),
        ),
    )


@dataclass
class ChangeLanding:
    """One batch of a cdc stream: `parse` (the envelopes, typed and checked; one pass counts
    them by kind), then `land` (bronze, quarantine, the newest change per key merged into
    silver behind the delete markers, the markers, the history)."""

    batch: Batch
    changes: DataFrame | None = None

    @property
    def stream(self) -> StreamSpec:
        return self.batch.target.stream

    @property
    def spark(self) -> SparkSession:
        return self.batch.spark

    @property
    def target(self) -> StreamTarget:
        return self.batch.target

    @property
    def state(self) -> RunState:
        return self.batch.state

    @property
    def batch_id(self) -> int:
        return self.batch.batch_id

    def _uri(self, table: TableRef) -> str:
        return table_uri(self.batch.state.settings, table)

    def parse(self, raw: DataFrame) -> ChangeScan:
        from pyspark import StorageLevel

        batch = self.batch
        parsed = parse_changes(kafka_columns(raw), self.stream)
        cache = batch.hold(parsed.persist(StorageLevel.MEMORY_AND_DISK))
        self.changes = stamp_ingest(cache, batch.started)
        return _scan(self.changes)

    def land(self, scan: ChangeScan) -> Landed:
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        batch = self.batch
        spark, target, state, clock = batch.spark, batch.target, batch.state, batch.clock
        assert self.changes is not None, "parse() comes first"
        changes = self.changes
        versions: dict[Layer, int | None] = dict.fromkeys(Layer)
        versions[Layer.BRONZE] = batch.append(changes.select(*BRONZE_COLUMNS), Layer.BRONZE)
        if scan.quarantined or not state.exists(spark, target, Layer.QUARANTINE):
            bad = changes.where(~F.col(TOMBSTONE) & ~_valid_change())
            versions[Layer.QUARANTINE] = batch.append(quarantine_rows(bad), Layer.QUARANTINE)
        valid = changes.where(_valid_change())
        keys = list(self.stream.cdc_spec.primary_key)
        with clock.step("dedup"):
            latest = batch.hold(latest_per_key(valid, keys).persist(StorageLevel.MEMORY_AND_DISK))
            latest = self._not_behind_markers(latest, keys)
        with clock.step("silver"):
            versions[Layer.SILVER], changed = self._merge_silver(latest, keys)
        if CdcTable.DELETE_MARKERS in self.stream.cdc_tables and scan.counts.deletes:
            with clock.step("markers"):
                self._merge_markers(latest, keys)
        history_rows = 0
        if CdcTable.HISTORY in self.stream.cdc_tables:
            with clock.step("history"):
                history_rows = self._merge_history(valid, keys)
        counts = ChangeCounts(
            **{**scan.counts.__dict__, "keys_changed": changed, "history_rows": history_rows}
        )
        ledger = {"silver_rows": changed, "quarantined": scan.quarantined, "cdc": counts}
        return Landed(versions, ledger)

    def _not_behind_markers(self, latest: DataFrame, keys: list[str]) -> DataFrame:
        """Drop the changes no newer than their key's delete marker (hard deletes)."""
        from pyspark.sql import functions as F

        if CdcTable.DELETE_MARKERS not in self.stream.cdc_tables:
            return latest
        uri = self._uri(self.stream.table(CdcTable.DELETE_MARKERS))
        if not _exists(self.spark, uri):
            return latest
        markers = (
            self.spark.read.format("delta").load(uri).select(*keys, F.col(LSN).alias("_marker_lsn"))
        )
        joined = latest.join(markers, on=keys, how="left")
        return joined.where(
            F.col("_marker_lsn").isNull() | (F.col(LSN) > F.col("_marker_lsn"))
        ).drop("_marker_lsn")

    def _merge_silver(self, latest: DataFrame, keys: list[str]) -> tuple[int | None, int]:
        """One MERGE of the batch's newest change per key into silver (created by the first
        batch); returns silver's version and the rows the MERGE changed."""
        from pyspark.sql import functions as F

        stream = self.stream
        soft = stream.cdc_spec.deletes == "soft"
        columns = silver_columns(stream)
        source = latest
        if soft:
            source = source.withColumn("_deleted", F.col(OP) == "d").withColumn(
                "_deleted_at", F.when(F.col(OP) == "d", F.col(SOURCE_TS))
            )
        if quality.UNKNOWN not in columns:
            source = source.drop(quality.UNKNOWN)
        source = source.select(*columns, OP)
        uri = self.target.silver
        if not self.state.exists(self.spark, self.target, Layer.SILVER):
            # the first batch creates silver: rows of its newest non-deleted changes
            first = source if soft else source.where(F.col(OP) != "d")
            version = append_idempotent(
                first.drop(OP),
                uri,
                self.target.app_id,
                self.batch_id,
                list(self.target.table(Layer.SILVER).partition_by),
            )
            return version, _inserted_rows(self.spark, uri, version)
        from delta.tables import DeltaTable

        def merge() -> DataFrame:
            table = DeltaTable.forPath(self.spark, uri)
            on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
            newer = "s._lsn > t._lsn"
            every: dict[str, str | Column] = {f"`{c}`": f"s.`{c}`" for c in columns}
            builder = table.alias("t").merge(source.alias("s"), on)
            if soft:
                builder = builder.whenMatchedUpdate(
                    condition=f"{newer} AND s._op = 'd'",
                    set={
                        "_deleted": "true",
                        "_deleted_at": "s._source_ts",
                        "_lsn": "s._lsn",
                        "_source_ts": "s._source_ts",
                        "topic": "s.topic",
                        "partition": "s.partition",
                        "offset": "s.offset",
                        "ingest_time": "s.ingest_time",
                    },
                )
                builder = builder.whenMatchedUpdate(condition=newer, set=every)
                builder = builder.whenNotMatchedInsert(values=every)
            else:
                builder = builder.whenMatchedDelete(condition=f"{newer} AND s._op = 'd'")
                builder = builder.whenMatchedUpdate(condition=newer, set=every)
                builder = builder.whenNotMatchedInsert(condition="s._op != 'd'", values=every)
            return builder.execute()

        return self._merge_once(uri, merge)

    def _merge_markers(self, latest: DataFrame, keys: list[str]) -> None:
        """Upsert a marker (key, LSN, when) for each key the batch deleted last; a key
        re-inserted later than its marker loses it."""
        from pyspark.sql import functions as F

        uri = self._uri(self.stream.table(CdcTable.DELETE_MARKERS))
        rows = latest.select(*keys, LSN, OP, F.col(SOURCE_TS).alias("_deleted_at"))
        if not _exists(self.spark, uri):
            deletes = rows.where(F.col(OP) == "d").drop(OP)
            append_idempotent(deletes, uri, self.target.app_id, self.batch_id, [])
            return
        from delta.tables import DeltaTable

        def merge() -> DataFrame:
            on = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
            return (
                DeltaTable.forPath(self.spark, uri)
                .alias("t")
                .merge(rows.alias("s"), on)
                .whenMatchedUpdate(
                    condition="s._lsn > t._lsn AND s._op = 'd'",
                    set={"_lsn": "s._lsn", "_deleted_at": "s._deleted_at"},
                )
                .whenMatchedDelete(condition="s._lsn > t._lsn")
                .whenNotMatchedInsert(
                    condition="s._op = 'd'",
                    values={
                        **{f"`{k}`": f"s.`{k}`" for k in keys},
                        "_lsn": "s._lsn",
                        "_deleted_at": "s._deleted_at",
                    },
                )
                .execute()
            )

        self._merge_once(uri, merge)

    def _merge_history(self, valid: DataFrame, keys: list[str]) -> int:
        """Add each change of the batch as a version of its key (one MERGE): a version equal
        to the one before it (a no-op, a re-sent change) is not added; `_valid_to` and
        `_is_current` of the keys' versions are recomputed. Returns the versions added."""
        from pyspark.sql import functions as F

        stream = self.stream
        fields = list(stream.event_schema.fields)
        uri = self._uri(stream.table(CdcTable.HISTORY))
        names = [*fields, *(name for name, _ in HISTORY_COLUMNS)]
        new = valid.select(
            *fields,
            OP,
            LSN,
            F.col(SOURCE_TS).alias("_valid_from"),
            F.lit(None).cast("timestamp").alias("_valid_to"),
            F.lit(None).cast("boolean").alias("_is_current"),
            "topic",
            "partition",
            "offset",
            "ingest_time",
        ).withColumn("_new", F.lit(True))
        exists = _exists(self.spark, uri)
        versions = new
        if exists:
            old = (
                self.spark.read.format("delta")
                .load(uri)
                .join(F.broadcast(new.select(*keys).distinct()), on=keys, how="left_semi")
                .select(*names)
                .withColumn("_new", F.lit(False))
            )
            versions = old.unionByName(new)
        source = _versioned(versions, keys, fields).select(*names, "_new")
        added = source.where("_new").count()
        if not exists:
            append_idempotent(source.drop("_new"), uri, self.target.app_id, self.batch_id, [])
            return added
        from delta.tables import DeltaTable

        def merge() -> DataFrame:
            on = " AND ".join([*(f"t.`{k}` <=> s.`{k}`" for k in keys), "t._lsn = s._lsn"])
            return (
                DeltaTable.forPath(self.spark, uri)
                .alias("t")
                .merge(source.alias("s"), on)
                .whenMatchedUpdate(
                    condition="NOT (t._valid_to <=> s._valid_to) "
                    "OR NOT (t._is_current <=> s._is_current)",
                    set={"_valid_to": "s._valid_to", "_is_current": "s._is_current"},
                )
                .whenNotMatchedInsert(
                    condition="s._new", values={f"`{c}`": f"s.`{c}`" for c in names}
                )
                .execute()
            )

        self._merge_once(uri, merge)
        return added

    def _merge_once(self, uri: str, merge: Callable[[], DataFrame]) -> tuple[int | None, int]:
        """Run `merge` as this batch's app transaction on the table at uri, retried when a
        concurrent commit (a compaction) conflicts with it; the table's version afterwards and
        the rows the MERGE changed (0 when the table already held the transaction)."""

        def counted() -> int:
            # Delta returns the MERGE's counts (no row when it skipped a replay)
            return sum(
                int(r["num_inserted_rows"] + r["num_updated_rows"] + r["num_deleted_rows"])
                for r in merge().collect()
            )

        with _idempotent_writes(self.spark, self.target.app_id, self.batch_id):
            changed = retry_conflicts(
                counted,
                f"stream {self.stream.name}: the MERGE into {uri}",
                attempts=CONFLICT_RETRIES,
                backoff_s=0.2,
                max_pause_s=5.0,
            )
        return delta_version(self.spark, uri), changed


def _versioned(versions: DataFrame, keys: list[str], fields: list[str]) -> DataFrame:
    """The keys' versions, old (`_new` false) and the batch's, as history rows: one per (key,
    LSN), an existing version winning over the same change re-sent; a new version that repeats
    the one before it dropped; `_valid_to` and `_is_current` from the next version."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    same_change = Window.partitionBy(*keys, LSN).orderBy(F.col("_new"), F.col("offset"))
    versions = versions.withColumn("_n", F.row_number().over(same_change)).where("_n = 1")
    ordered = Window.partitionBy(*keys).orderBy(LSN, "offset")
    state = F.struct(*(F.col(f) for f in fields), (F.col(OP) == "d").alias("_gone"))
    versions = versions.withColumn("_state", state).withColumn(
        "_previous", F.lag("_state").over(ordered)
    )
    versions = versions.where(
        ~F.col("_new")
        | F.col("_previous").isNull()
        | ~F.col("_state").eqNullSafe(F.col("_previous"))
    )
    versions = versions.withColumn("_next_from", F.lead("_valid_from").over(ordered))
    return versions.withColumn("_valid_to", F.col("_next_from")).withColumn(
        "_is_current", F.col("_next_from").isNull() & (F.col(OP) != "d")
    )


@contextmanager
def _idempotent_writes(spark: SparkSession, app_id: str, version: int) -> Iterator[None]:
    """Delta's session confs that make a MERGE an app transaction (skipped when the table
    already holds it). Session-global: only the batch's own thread writes meanwhile."""
    conf = spark.conf
    conf.set("spark.databricks.delta.write.txnAppId", app_id)
    conf.set("spark.databricks.delta.write.txnVersion", str(version))
    try:
        yield
    finally:
        conf.unset("spark.databricks.delta.write.txnAppId")
        conf.unset("spark.databricks.delta.write.txnVersion")


def _exists(spark: SparkSession, uri: str) -> bool:
    from conveyor.ledger import table_exists

    return table_exists(spark, uri)


def _inserted_rows(spark: SparkSession, uri: str, version: int | None) -> int:
    """The rows the commit `version` of the table wrote (its first append)."""
    from delta.tables import DeltaTable

    if version is None:
        return 0
    rows = DeltaTable.forPath(spark, uri).history(1).select("version", "operationMetrics").collect()
    if not rows or rows[0]["version"] != version:
        return 0
    return int((rows[0]["operationMetrics"] or {}).get("numOutputRows", 0))
