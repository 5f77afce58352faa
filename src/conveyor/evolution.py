"""Schema evolution: the catalog's fields against each stream's live silver table.

`plan_schema` compares, per stream, the catalog's fields with the columns silver has (read from
its Delta log through delta-rs: no JVM, milliseconds) and lists the changes:

- a new optional field: a column is added (old rows read null);
- a widening Delta allows (int -> long, float -> double, decimal precision up, ...): the
  column is widened, by rewriting silver once (see `apply_changes` for why not in place);
- refused, with the reason and the way out: a field removed (or renamed, which is a removal and
  an addition), a type narrowed or changed in kind, a required field added (rows already landed
  have no value for it).

`apply_changes` makes the allowed changes on silver with Spark (bronze and quarantine hold
the raw payload, so fields never change them) and records each in the ledger (`kind =
schema_change`); `backfill_kept` fills a newly declared field of rows already landed from the
value they kept in `_unknown` (`unknown_fields: keep`). The ingest refuses to start while a refused change stands, and applies the
allowed ones before its first batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from conveyor.catalog import Catalog, Layer, StreamSpec, ledger_uri, table_uri
from conveyor.catalog.types import from_spark, spark_type, widening
from conveyor.errors import ConveyorError
from conveyor.ingest.quality import UNKNOWN
from conveyor.ledger import LedgerEntry, SchemaChangeRecord, append_entry
from conveyor.settings import Settings
from conveyor.spark.conflicts import retry_conflicts
from conveyor.spark.jvm import delta_version
from conveyor.spark.sql import identifier

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

SCHEMA_CHANGE_KIND = "schema_change"
"""The ledger's `kind` for an applied schema change."""


class Change(StrEnum):
    """What a catalog edit asks of a live silver table."""

    ADD_FIELD = "add_field"
    WIDEN_TYPE = "widen_type"
    ADD_REQUIRED_FIELD = "add_required_field"
    CHANGE_TYPE = "change_type"
    REMOVE_FIELD = "remove_field"


@dataclass(frozen=True)
class SchemaChange:
    """One difference between a stream's catalog fields and its silver table."""

    stream: str
    table: str
    field: str
    kind: Change
    old_type: str | None
    new_type: str | None
    allowed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "kind": self.kind.value}

    def describe(self) -> str:
        """One line: stream, field, what changed, and why or what to do."""
        what = {
            Change.ADD_FIELD: f"new optional field ({self.new_type})",
            Change.WIDEN_TYPE: f"type {self.old_type} -> {self.new_type}",
            Change.ADD_REQUIRED_FIELD: f"new required field ({self.new_type})",
            Change.CHANGE_TYPE: f"type {self.old_type} -> {self.new_type}",
            Change.REMOVE_FIELD: f"field removed (silver has it as {self.old_type})",
        }[self.kind]
        return f"stream {self.stream!r}, field {self.field!r}: {what}: {self.reason}"


@dataclass
class SchemaPlan:
    """Every stream's changes; streams whose silver does not exist yet have none (their first
    batch creates it in the catalog's shape)."""

    changes: list[SchemaChange] = field(default_factory=list)
    not_landed: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> list[SchemaChange]:
        return [c for c in self.changes if c.allowed]

    @property
    def refused(self) -> list[SchemaChange]:
        return [c for c in self.changes if not c.allowed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "not_landed": self.not_landed,
        }

    def summary(self) -> str:
        if not self.changes:
            text = "silver matches the catalog"
        else:
            text = f"{len(self.allowed)} change(s) to apply, {len(self.refused)} refused"
        if self.not_landed:
            text += (
                f"; not landed yet (created in the catalog's shape): {', '.join(self.not_landed)}"
            )
        return text


_WAY_OUT = (
    "declare the field as it was, or land the new shape in a new stream; silver's rows keep "
    "the shape they were written in"
)


def live_fields(settings: Settings, stream: StreamSpec) -> dict[str, str] | None:
    """Silver's event columns and their catalog types (the columns Conveyor adds itself left
    out); None when silver does not exist yet. Read from the Delta log, no JVM."""
    from conveyor.delta_rs import open_table
    from conveyor.ingest.silver import silver_extra_columns

    table = open_table(table_uri(settings, stream.table(Layer.SILVER)))
    if table is None:
        return None
    extra = {name for name, _ in silver_extra_columns(stream)}
    return {
        f.name: from_spark(str(getattr(f.type, "type", f.type)))
        for f in table.schema().fields
        if f.name not in extra
    }


def compare(stream: StreamSpec, live: dict[str, str]) -> list[SchemaChange]:
    """The changes that make silver (with `live` event columns) match the catalog's fields."""
    table = stream.table(Layer.SILVER).name
    changes = [
        SchemaChange(stream.name, table, name, kind, old, new, allowed, why)
        for name, kind, old, new, allowed, why in [
            *_declared_changes(stream, live),
            *_undeclared_changes(stream, live),
        ]
    ]
    return changes


_Found = tuple[str, "Change", str | None, str | None, bool, str]


def _declared_changes(stream: StreamSpec, live: dict[str, str]) -> list[_Found]:
    """Each catalog field silver lacks or holds with another type."""
    found: list[_Found] = []
    for name, spec in stream.event_schema.fields.items():
        old = live.get(name)
        if old is None and spec.required:
            why = (
                "rows already landed have no value for it; declare it optional (required: "
                "false), or land the new shape in a new stream"
            )
            found.append((name, Change.ADD_REQUIRED_FIELD, None, spec.type, False, why))
        elif old is None:
            backfill = (
                " (`conveyor schema apply --backfill` fills it where they kept a value in "
                f"{UNKNOWN})"
                if UNKNOWN in live
                else ""
            )
            why = "a column is added; old rows read null" + backfill
            found.append((name, Change.ADD_FIELD, None, spec.type, True, why))
        elif old != spec.type:
            refused = widening(old, spec.type)
            if refused is None:
                why = "widened by rewriting silver once with the new type; old rows read as the new type"
                found.append((name, Change.WIDEN_TYPE, old, spec.type, True, why))
            else:
                why = f"{refused}; {_WAY_OUT}"
                found.append((name, Change.CHANGE_TYPE, old, spec.type, False, why))
    return found


def _undeclared_changes(stream: StreamSpec, live: dict[str, str]) -> list[_Found]:
    """The `_unknown` column a stream that keeps undeclared fields needs, and each silver
    column the catalog no longer declares."""
    found: list[_Found] = []
    if stream.event_schema.unknown_fields == "keep" and UNKNOWN not in live:
        why = (
            "a column is added for the fields the catalog does not declare (unknown_fields: "
            "keep); old rows read null"
        )
        found.append((UNKNOWN, Change.ADD_FIELD, None, "string", True, why))
    for name, old in live.items():
        if name == UNKNOWN:
            continue  # kept or not, the column stays: it may hold what was sent
        if name not in stream.event_schema.fields:
            why = (
                "silver would keep a column the catalog no longer declares (a rename is a "
                f"removal and an addition); {_WAY_OUT}"
            )
            found.append((name, Change.REMOVE_FIELD, old, None, False, why))
    return found


def plan_schema(
    settings: Settings, catalog: Catalog, streams: Iterable[str] | None = None
) -> SchemaPlan:
    """The changes each stream's silver needs to match the catalog (all streams by default)."""
    plan = SchemaPlan()
    for name in streams if streams is not None else catalog.stream_names:
        stream = catalog.stream(name)
        live = live_fields(settings, stream)
        if live is None:
            plan.not_landed.append(name)
        else:
            plan.changes += compare(stream, live)
    return plan


class SchemaRefused(ConveyorError):
    """The catalog asks silver for a change Conveyor refuses; one line per change (exit 4,
    like `topics apply` refusing a change)."""

    exit_code = 4

    def __init__(self, changes: list[SchemaChange], command: str) -> None:
        self.changes = changes
        lines = [c.describe() for c in changes]
        lines.append(f"(`{command}` lists every change)")
        super().__init__("\n".join(lines))


def require_no_refused(plan: SchemaPlan, stream: str) -> None:
    """Raise SchemaRefused when the plan holds a refused change (before anything starts)."""
    if plan.refused:
        raise SchemaRefused(plan.refused, f"conveyor schema plan {stream}")


def apply_changes(
    spark: SparkSession, settings: Settings, changes: Iterable[SchemaChange], catalog: Catalog
) -> list[SchemaChange]:
    """Make the allowed changes on silver, each followed by its ledger row; returns what was
    made. Per stream, new columns are added in the log alone (`ALTER TABLE ADD COLUMNS`), and
    every widening is made by one rewrite of silver with the wider types: Delta's
    type-widening feature would avoid the rewrite, but delta-rs (the page, `conveyor status`
    and the sensors read with it) cannot read a table that has it. A change already made (a
    rerun, another process first) is not made again: the live columns are read right before."""
    by_stream: dict[str, list[SchemaChange]] = {}
    for change in changes:
        if change.allowed:
            by_stream.setdefault(change.stream, []).append(change)
    applied: list[SchemaChange] = []
    for name, planned in by_stream.items():
        stream = catalog.stream(name)
        live = live_fields(settings, stream) or {}
        todo = [c for c in planned if live.get(c.field) != c.new_type]
        started = datetime.now(UTC)
        added = [c for c in todo if c.kind is Change.ADD_FIELD]
        widened = [c for c in todo if c.kind is Change.WIDEN_TYPE]
        uri = table_uri(settings, stream.table(Layer.SILVER))
        if added:
            columns = ", ".join(
                f"{identifier(c.field)} {spark_type(str(c.new_type))}" for c in added
            )
            spark.sql(f"ALTER TABLE delta.{identifier(uri)} ADD COLUMNS ({columns})")
        if widened:
            _rewrite_wider(spark, uri, stream, {c.field: str(c.new_type) for c in widened})
        if not todo:
            continue
        version = delta_version(spark, uri)
        for change in todo:
            record(settings, change, version, started, spark=spark)
            log.info("schema change applied: %s (silver version %s)", change.describe(), version)
        applied += todo
    return applied


def backfill_kept(
    spark: SparkSession, settings: Settings, catalog: Catalog, name: str
) -> dict[str, int]:
    """Fill each declared field of stream `name` that silver holds as null from the value its
    row kept in `_unknown` (sent before the catalog declared the field), cast to the field's
    type; a value that does not cast stays null. `_unknown` keeps its copy (nothing sent is
    dropped). One UPDATE; each filled field is a ledger row (`backfill`, rows filled in
    `silver_rows`). Returns the rows filled per field; {} when silver keeps nothing."""
    from pyspark.sql import functions as F

    stream = catalog.stream(name)
    live = live_fields(settings, stream)
    if not live or UNKNOWN not in live:
        return {}
    uri = table_uri(settings, stream.table(Layer.SILVER))
    fields = {f: spark_type(spec.type) for f, spec in stream.event_schema.fields.items()}
    kept = {f: f"try_variant_get(parse_json({UNKNOWN}), '$.{f}', '{t}')" for f, t in fields.items()}
    fillable = {f: f"({identifier(f)} IS NULL AND {kept[f]} IS NOT NULL)" for f in fields}
    silver = spark.read.format("delta").load(uri).where(F.col(UNKNOWN).isNotNull())
    counts = silver.select(
        *(F.count(F.when(F.expr(fillable[f]), 1)).alias(f) for f in fields)
    ).first()
    filled = {f: int(counts[f]) for f in fields if counts is not None and counts[f]}
    if not filled:
        return {}
    started = datetime.now(UTC)
    assignments = ", ".join(
        f"{identifier(f)} = CASE WHEN {fillable[f]} THEN {kept[f]} ELSE {identifier(f)} END"
        for f in filled
    )
    where = " OR ".join(fillable[f] for f in filled)
    retry_conflicts(
        lambda: spark.sql(
            f"UPDATE delta.{identifier(uri)} SET {assignments} WHERE {UNKNOWN} IS NOT NULL "
            f"AND ({where})"
        ),
        f"the backfill of {uri}",
        max_pause_s=20.0,
    )
    version = delta_version(spark, uri)
    table = stream.table(Layer.SILVER).name
    for f, rows in filled.items():
        change = SchemaChange(name, table, f, Change.ADD_FIELD, None, fields[f], True, "")
        record(settings, change, version, started, spark=spark, operation="backfill", rows=rows)
    return filled


def _rewrite_wider(
    spark: SparkSession, uri: str, stream: StreamSpec, wider: dict[str, str]
) -> None:
    """Rewrite silver in one overwrite commit with `wider` columns cast to their new types
    (lossless: only widenings reach here). A commit that races it (the stream's append, a
    compaction) makes it fail and start again from the new version; nothing is lost."""
    from pyspark.sql import functions as F

    def rewrite() -> None:
        frame = spark.read.format("delta").load(uri)
        cast = [
            F.col(c).cast(spark_type(wider[c])).alias(c) if c in wider else F.col(c)
            for c in frame.columns
        ]
        writer = frame.select(*cast).write.format("delta").mode("overwrite")
        writer = writer.option("overwriteSchema", "true")
        writer.partitionBy(*stream.table(Layer.SILVER).partition_by).save(uri)

    retry_conflicts(rewrite, f"the widening rewrite of {uri}", backoff_s=1.0)


def record(
    settings: Settings,
    change: SchemaChange,
    version: int | None,
    started: datetime,
    *,
    spark: SparkSession | None = None,
    operation: str | None = None,
    rows: int = 0,
) -> None:
    """The change's ledger row (`kind = schema_change`), with silver's Delta version after it;
    `operation` names another operation on a field (`backfill`, with the rows it filled)."""
    append_entry(
        ledger_uri(settings),
        LedgerEntry(
            stream=change.stream,
            kind=SCHEMA_CHANGE_KIND,
            silver_rows=rows,
            app_id="conveyor-schema",
            batch_id=version if version is not None else -1,
            started_at=started,
            ended_at=datetime.now(UTC),
            silver_version=version,
            schema_change=SchemaChangeRecord(
                table=change.table,
                field=change.field,
                change=operation or change.kind.value,
                old_type=change.old_type,
                new_type=change.new_type,
            ),
        ),
        txn=False,
        spark=spark,
    )
