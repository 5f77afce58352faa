"""The catalog's frozen models: streams, their topic, event schema, tables and service levels."""

from __future__ import annotations

import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    model_validator,
)

from conveyor.catalog.values import (
    AS_DICT,
    Count,
    Duration,
    FieldName,
    FieldType,
    Names,
    Principals,
    Retention,
    Size,
    StreamName,
    TableName,
    TablePath,
    TopicName,
    freeze,
)
from conveyor.errors import ConveyorError
from conveyor.settings import Settings
from conveyor.units import duration_ms

LEDGER_PATH = "_conveyor/ledger"
"""The ledger table, shared by all streams, relative to the lake."""

MONITORING_GROUP_PREFIX = "conveyor."
"""Consumer groups Conveyor's ingest uses start with this (`conveyor.<stream>`)."""

DELTA_MIN_VACUUM_RETENTION = timedelta(days=7)
"""Delta's retention check (kept on) refuses to VACUUM with less than this."""


class Layer(StrEnum):
    """The tables every stream lands in."""

    BRONZE = "bronze"
    SILVER = "silver"
    QUARANTINE = "quarantine"


class CdcTable(StrEnum):
    """The tables a cdc stream keeps beside its layers: the scd2 history (`history: scd2`) and
    the hard deletes' markers (`deletes: hard`). They are the stream's tables like its layers:
    maintenance, `conveyor tables` and the Conveyor page walk them too."""

    HISTORY = "history"
    DELETE_MARKERS = "delete_markers"


CDC_TABLE_FOLDERS: Mapping[CdcTable, str] = types.MappingProxyType(
    {CdcTable.HISTORY: "history", CdcTable.DELETE_MARKERS: "_delete_markers"}
)
"""Each cdc table's folder inside the stream's (`<stream>/history`, `<stream>/_delete_markers`)."""


# Columns the ingest job adds itself; bronze and quarantine hold unparsed payloads, so only
# these can partition them.
LANDING_COLUMNS = frozenset({"ingest_date"})
SILVER_DERIVED_COLUMNS = frozenset({"event_date", "ingest_date"})
DEFAULT_PARTITIONING: Mapping[Layer, tuple[str, ...]] = types.MappingProxyType(
    {
        Layer.BRONZE: ("ingest_date",),
        Layer.SILVER: ("event_date",),
        Layer.QUARANTINE: ("ingest_date",),
    }
)


class CatalogError(ConveyorError):
    """The catalog cannot be used; `problems` has one line per problem found."""

    def __init__(
        self,
        problems: Sequence[str],
        places: Sequence[tuple[int | None, str, str]] = (),
    ) -> None:
        self.problems = list(problems)
        self.places = list(places)
        """Each problem as (line in the file or None, path inside the document, what)."""
        super().__init__("\n".join(self.problems))


class UnknownStream(ConveyorError):
    """A stream name that the catalog does not declare."""


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)
    # Keys Conveyor fills in itself; not offered as "expected keys" in messages.
    _internal_keys: ClassVar[frozenset[str]] = frozenset()
    # Keys that default to a value derived from the stream's name (see StreamSpec._conventions).
    _derived_keys: ClassVar[frozenset[str]] = frozenset()


class FieldSpec(Spec):
    """One field of an event: its type, whether it must be present, and what values are allowed."""

    type: FieldType
    """`string`, `int`, `long`, `float`, `double`, `decimal(p,s)`, `date`, `timestamp`,
    `boolean` or `bytes` (base64 in JSON); `integer` and `number` are aliases of `long` and
    `double`. A value that does not read as the type goes to quarantine (`wrong_type`)."""
    required: StrictBool = False
    """An event without the field (or with null) goes to quarantine (`missing_field`)."""
    unique: StrictBool = False
    """Documentation only: the producer promises the value is unique. Conveyor does not check
    it; `schema.dedup_key` is what drops repeats."""
    allowed: tuple[str, ...] | None = None
    """The only values accepted (others: `not_allowed`). Not on a cdc stream."""
    pattern: str | None = None
    """A regular expression a string must match in full (else `pattern_mismatch`). Not on a
    cdc stream."""
    minimum: float | None = None
    """The smallest number accepted (below: `out_of_range`). Not on a cdc stream."""
    maximum: float | None = None
    """The largest number accepted (above: `out_of_range`). Not on a cdc stream."""
    formats: tuple[Literal["iso8601", "epoch_millis"], ...] | None = None
    """The encodings a `timestamp` field accepts; unset: both."""
    description: str = ""
    """What the field means, for people."""

    @property
    def timestamp_formats(self) -> tuple[str, ...]:
        """Accepted encodings of a timestamp field (both when the catalog names none)."""
        return self.formats or ("iso8601", "epoch_millis")


class EventSchema(Spec):
    """The event's fields and the roles some of them play."""

    fields: Annotated[
        Mapping[FieldName, FieldSpec],
        Field(min_length=1),
        AfterValidator(freeze),
        AS_DICT,
    ]
    """The event's fields by name, each a field spec."""
    event_time: str
    """The `timestamp` field that says when the event happened: silver is partitioned by its
    date (`event_date`) and lateness is measured on it. Empty on a cdc stream."""
    key: str | None = None
    """The field `conveyor produce` uses as the Kafka message key (so one key's events keep
    their order in one partition)."""
    dedup_key: Names = ()
    """Fields that identify an event: a repeat of a key silver already holds is dropped
    (counted as a duplicate). Empty: every event lands."""
    late_tolerance: Duration
    """How late (by event time, against the newest seen) an event may arrive and still land in
    silver; later ones go to quarantine (`too_late`). A day's partition closes for compaction
    this long after the day ends."""
    max_event_bytes: Size = 1024 * 1024
    """Larger events go to quarantine (`oversized`) unparsed."""
    unknown_fields: Literal["keep", "drop", "quarantine"] = "keep"
    """What happens to an event's fields the catalog does not declare: `keep` them in silver's
    `_unknown` column (JSON text), `drop` them, or `quarantine` the record (`unknown_field`)."""


class TopicConfigs(Spec):
    """Topic-level Kafka settings, under their Kafka names."""

    retention: Retention = Field(alias="retention.ms")
    """`retention.ms`: how long Kafka keeps records (`7d`, or `-1` for ever); must cover the
    stream's `max_downtime` and `backfill_window`."""
    cleanup_policy: Literal["delete", "compact", "compact,delete"] = Field(
        "delete", alias="cleanup.policy"
    )
    """`cleanup.policy`."""
    min_insync_replicas: Count = Field(1, alias="min.insync.replicas")
    """`min.insync.replicas`: at most the replication factor."""
    max_message_bytes: Size = Field(1048588, alias="max.message.bytes")
    """`max.message.bytes`: at least the schema's `max_event_bytes`."""
    compression_type: Literal["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"] = Field(
        "producer", alias="compression.type"
    )
    """`compression.type`."""

    def to_kafka(self) -> dict[str, str]:
        """The settings as the broker spells them (`retention.ms` in milliseconds)."""
        retention = "-1" if self.retention is None else str(duration_ms(self.retention))
        return {
            "retention.ms": retention,
            "cleanup.policy": self.cleanup_policy,
            "min.insync.replicas": str(self.min_insync_replicas),
            "max.message.bytes": str(self.max_message_bytes),
            "compression.type": self.compression_type,
        }


class TopicAccess(Spec):
    """Who may use the topic on a cluster with ACLs (principals by name, `User:` implied).

    `conveyor topics apply` grants WRITE and DESCRIBE to each producer and READ and DESCRIBE
    to each reader; the ingest principal (the settings') is always a reader. On a cluster
    without an authorizer this is not applied (nothing would enforce it).
    """

    producers: Principals = ()
    """Principals granted WRITE and DESCRIBE on the topic."""
    readers: Principals = ()
    """Principals granted READ and DESCRIBE besides the ingest's own."""


class TopicSpec(Spec):
    """The stream's Kafka topic (named after the stream unless given)."""

    _derived_keys: ClassVar[frozenset[str]] = frozenset({"name"})

    name: TopicName
    """The topic's name; default: the stream's."""
    partitions: Count
    """Partitions of the topic; `topics apply` adds partitions, never removes them."""
    replication_factor: Count
    """Copies of each partition; fixed once the topic exists."""
    configs: TopicConfigs
    """Topic-level settings under their Kafka names."""
    access: TopicAccess = TopicAccess()
    """Who may produce and read, on a cluster with ACLs."""


class TableSpec(Spec):
    """One Delta table; name `<stream>_<layer>` and path `<stream>/<layer>` unless given.
    `properties` are Delta table properties over the layer's defaults (`table_properties`)."""

    _derived_keys: ClassVar[frozenset[str]] = frozenset({"name", "path", "partition_by"})

    name: TableName
    """The table's name (what `conveyor compact TABLE` takes); default `<stream>_<layer>`."""
    path: TablePath
    """Its folder relative to the lake; default `<stream>/<layer>`."""
    partition_by: Names
    """Partition columns: `ingest_date` for bronze and quarantine (default), a schema field,
    `event_date` (default) or `ingest_date` for silver; none for a cdc stream's silver."""
    zorder_by: Names = ()
    """Columns compaction Z-orders by (and keeps statistics on)."""
    properties: Annotated[
        Mapping[Annotated[str, Field(pattern=r"^delta\.[A-Za-z0-9_.]+$")], str],
        AfterValidator(freeze),
        AS_DICT,
    ] = Field(default_factory=dict)
    """Delta table properties (`delta.*`) over Conveyor's defaults, set by `schema apply`."""


class MaintenancePolicy(Spec):
    """When compaction is worth it, what to Z-order by, and how long VACUUM keeps old files."""

    target_file_size: Size = 128 * 1024 * 1024
    """The file size compaction writes."""
    small_file_threshold: Size = 32 * 1024 * 1024
    """Files below this count as small (must be below `target_file_size`)."""
    min_small_files: Count = 10
    """A closed partition is compacted once it holds this many small files."""
    vacuum_retention: Duration = DELTA_MIN_VACUUM_RETENTION
    """History VACUUM keeps at least (never below Delta's 7 days or `max_downtime`; the
    ledger's stream lag can raise it)."""


class TablesSpec(Spec):
    """The stream's bronze, silver and quarantine tables and their maintenance policy."""

    bronze: TableSpec
    """Every record as read from Kafka, with its coordinates."""
    silver: TableSpec
    """The typed, checked, de-duplicated events (a cdc stream: the mirrored table)."""
    quarantine: TableSpec
    """The records that failed a check, with the reason."""
    maintenance: MaintenancePolicy = MaintenancePolicy()
    """Compaction and VACUUM of all the stream's tables."""


class ServiceLevels(Spec):
    """What the stream must survive: `retention.ms` has to cover both."""

    max_downtime: Duration
    """The longest the ingest may be stopped and still catch up from Kafka."""
    backfill_window: Duration
    """How far back a replay from Kafka must be able to reach."""


class AnalyticsSpec(Spec):
    """Knobs of the batch analytics over the stream."""

    session_gap: Duration = timedelta(minutes=30)
    """Inactivity that ends a user's session; a day's analytics wait until the stream's
    watermark passes the day's end plus this."""


@dataclass(frozen=True)
class TableRef:
    """One table of the catalog, with everything maintenance needs to know about it."""

    stream: str
    layer: Layer | CdcTable
    name: str
    path: str
    partition_by: tuple[str, ...]
    zorder_by: tuple[str, ...]
    maintenance: MaintenancePolicy
    properties: tuple[tuple[str, str], ...] = ()
    """The Delta table properties the table carries (`table_properties`), sorted by key."""


SOURCE_TABLE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")


def _source_table(value: Any) -> Any:
    if isinstance(value, str) and not SOURCE_TABLE.match(value):
        raise ValueError(
            "must be a PostgreSQL table as `schema.table` or `table` (public), in lower case, "
            f"got {value!r}"
        )
    return value


class CdcSpec(Spec):
    """A database table mirrored through Debezium: the source, its key, how deletes land
    and whether history is kept (see `conveyor.ingest.landings.changes`)."""

    source_table: Annotated[str, AfterValidator(_source_table)]
    """`schema.table` in the connector's database (`public` when no schema is given)."""
    primary_key: Annotated[Names, Field(min_length=1)]
    """The source table's primary key columns (declared, required fields): silver's MERGE key."""
    deletes: Literal["hard", "soft"] = "hard"
    """`hard`: a deleted row leaves silver; `soft`: it stays with `_deleted` = true and
    `_deleted_at` = the source's commit time."""
    history: Literal["none", "scd2"] = "none"
    """`scd2`: a history table beside silver, one row per version of each row, with
    `_valid_from`, `_valid_to` and `_is_current`."""
    delete_marker_retention: Duration = timedelta(days=7)
    """How long a hard delete's marker (key, LSN) is kept, so that an older change the
    connector re-sends after it cannot bring the row back; past it, maintenance drops it."""

    @property
    def schema_and_table(self) -> tuple[str, str]:
        schema, _, table = self.source_table.rpartition(".")
        return schema or "public", table


class StreamSpec(Spec):
    """One stream: topic, event schema, tables, service levels. `kind: cdc` streams mirror a
    database table (their `cdc` block says which); `append` streams (the default) land
    events."""

    _internal_keys: ClassVar[frozenset[str]] = frozenset({"name"})

    name: StreamName
    """The stream's name: the key it is declared under."""
    kind: Literal["append", "cdc"] = "append"
    """`append`: events land in silver once each; `cdc`: a database table's changes are
    merged into silver (needs the `cdc` block)."""
    cdc: CdcSpec | None = None
    """The mirrored table (streams of kind cdc only)."""
    description: str = ""
    """What the stream carries, for people."""
    topic: TopicSpec
    """Its Kafka topic."""
    event_schema: EventSchema = Field(alias="schema")
    """`schema`: the event's fields and their roles."""
    tables: TablesSpec
    """Its Delta tables and their maintenance; `{}` takes every default."""
    service_levels: ServiceLevels
    """What the stream must survive."""
    analytics: AnalyticsSpec | None = None
    """Knobs of the daily analytics (the clickstream DAG)."""

    @model_validator(mode="before")
    @classmethod
    def _conventions(cls, data: Any) -> Any:
        """Fill in the names and paths derived from the stream's name."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return data
        name = data["name"]
        data = dict(data)
        cdc = data.get("kind") == "cdc"
        if cdc and isinstance(data.get("schema"), dict):
            # a table's columns have no event time nor lateness: the LSN orders its changes
            data["schema"] = {"event_time": "", "late_tolerance": "0s", **data["schema"]}
        if isinstance(data.get("topic"), dict):
            data["topic"] = {"name": name, **data["topic"]}
        tables = data.get("tables") or {}
        if isinstance(tables, dict):
            tables = dict(tables)
            for layer in Layer:
                given = tables.get(layer.value)
                if given is None or isinstance(given, dict):
                    tables[layer.value] = {
                        "name": f"{name}_{layer.value}",
                        "path": f"{name}/{layer.value}",
                        "partition_by": ()
                        if cdc and layer is Layer.SILVER
                        else DEFAULT_PARTITIONING[layer],
                        **(given or {}),
                    }
            data["tables"] = tables
        return data

    @model_validator(mode="after")
    def _kind_has_its_block(self) -> StreamSpec:
        if self.kind == "cdc" and self.cdc is None:
            raise ValueError("a stream of kind cdc needs a `cdc` block (source_table, primary_key)")
        if self.kind == "append" and self.cdc is not None:
            raise ValueError("`cdc` applies only to streams of kind cdc; add `kind: cdc`")
        return self

    @property
    def cdc_spec(self) -> CdcSpec:
        """The cdc block of a `kind: cdc` stream (raises ValueError for an append stream)."""
        if self.cdc is None:
            raise ValueError(f"stream {self.name!r} is not of kind cdc")
        return self.cdc

    @property
    def monitoring_group(self) -> str:
        """The consumer group the ingest commits its progress to, for lag tools."""
        return MONITORING_GROUP_PREFIX + self.name

    @property
    def cdc_tables(self) -> tuple[CdcTable, ...]:
        """The cdc tables this stream keeps (none on an append stream)."""
        if self.cdc is None:
            return ()
        kept = {CdcTable.HISTORY: self.cdc.history == "scd2"}
        kept[CdcTable.DELETE_MARKERS] = self.cdc.deletes == "hard"
        return tuple(table for table, keeps in kept.items() if keeps)

    def table(self, layer: Layer | CdcTable | str) -> TableRef:
        """The stream's table in `layer`, or one of its cdc tables."""
        if layer in CdcTable.__members__.values():
            return self._cdc_table(CdcTable(layer))
        layer = Layer(layer)
        spec: TableSpec = getattr(self.tables, layer.value)
        return TableRef(
            stream=self.name,
            layer=layer,
            name=spec.name,
            path=spec.path,
            partition_by=spec.partition_by,
            zorder_by=spec.zorder_by,
            maintenance=self.tables.maintenance,
            properties=tuple(sorted(table_properties(self, layer).items())),
        )

    def _cdc_table(self, table: CdcTable) -> TableRef:
        if table not in self.cdc_tables:
            raise ValueError(f"stream {self.name!r} keeps no {table.value} table")
        return TableRef(
            stream=self.name,
            layer=table,
            name=f"{self.name}_{table.value}",
            path=f"{self.name}/{CDC_TABLE_FOLDERS[table]}",
            partition_by=(),
            zorder_by=(),
            maintenance=self.tables.maintenance,
            properties=tuple(sorted(LEDGER_PROPERTIES.items())),
        )

    def all_tables(self) -> tuple[TableRef, ...]:
        """Every table of the stream: bronze, silver, quarantine, then its cdc tables."""
        return tuple(self.table(layer) for layer in (*Layer, *self.cdc_tables))


CHECKPOINT_INTERVAL = 1000
"""Conveyor's tables' `delta.checkpointInterval`: Delta writes no checkpoint inside a batch's
commit; the ingest writes them beside the stream (`conveyor.spark.delta_checkpoints`)."""
LEDGER_PROPERTIES: Mapping[str, str] = types.MappingProxyType(
    {"delta.checkpointInterval": str(CHECKPOINT_INTERVAL)}
)
"""The ledger's Delta table properties."""


STATS_COLUMNS: Mapping[Layer, tuple[str, ...]] = types.MappingProxyType(
    {
        Layer.BRONZE: ("partition", "offset", "kafka_timestamp"),
        Layer.QUARANTINE: ("partition", "offset", "kafka_timestamp", "reason_code"),
    }
)
"""The columns an append stream's bronze and quarantine keep statistics on (finding a record by
its Kafka coordinates or time); silver keeps them on its event time, Z-order columns and
ingest time (the dedup decision's and the analytics' filters)."""


def _stats_columns(stream: StreamSpec, layer: Layer, spec: TableSpec) -> tuple[str, ...]:
    if layer is Layer.SILVER:
        wanted: tuple[str, ...] = (stream.event_schema.event_time, *spec.zorder_by, "ingest_time")
    else:
        wanted = STATS_COLUMNS[layer]
    # Delta refuses statistics on a partition column
    return tuple(c for c in dict.fromkeys(wanted) if c not in spec.partition_by)


def table_properties(stream: StreamSpec, layer: Layer) -> dict[str, str]:
    """The Delta table properties of the stream's `layer` table: Conveyor's defaults (the
    checkpoint interval; on an append stream, statistics only on the columns reads filter
    by, which makes every write cheaper), then the catalog's `tables.<layer>.properties` over
    them."""
    spec: TableSpec = getattr(stream.tables, layer.value)
    defaults = dict(LEDGER_PROPERTIES)
    if stream.kind == "append":
        columns = ",".join(_stats_columns(stream, layer, spec))
        defaults["delta.dataSkippingStatsColumns"] = columns
    return {**defaults, **spec.properties}


class Catalog(Spec):
    """Every stream Conveyor runs, by name. Load with `load_catalog`."""

    version: Literal[1] = 1
    """The catalog format's version."""
    streams: Annotated[
        Mapping[StreamName, StreamSpec],
        Field(min_length=1),
        AfterValidator(freeze),
        AS_DICT,
    ]
    """Every stream, by name (lower case, digits, `_`)."""
    _source: Path = PrivateAttr(default=Path("conveyor.yaml"))

    @model_validator(mode="before")
    @classmethod
    def _name_streams(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("streams"), dict):
            streams = {k: with_name(k, v) for k, v in data["streams"].items()}
            data = {**data, "streams": streams}
        return data

    @property
    def source(self) -> Path:
        """The file the catalog was loaded from."""
        return self._source

    @property
    def stream_names(self) -> tuple[str, ...]:
        return tuple(self.streams)

    @property
    def append_stream_names(self) -> tuple[str, ...]:
        """The streams of kind append: those replay and rebuild apply to."""
        return tuple(name for name, spec in self.streams.items() if spec.cdc is None)

    def stream(self, name: str) -> StreamSpec:
        """The stream called `name`; raises UnknownStream naming the ones that exist."""
        try:
            return self.streams[name]
        except KeyError:
            known = ", ".join(self.streams) or "none"
            raise UnknownStream(
                f"{shown_path(self.source)}: no stream named {name!r} (streams: {known})"
            ) from None

    def tables(self) -> tuple[TableRef, ...]:
        """Every table of every stream in stream order (`StreamSpec.all_tables`)."""
        return tuple(ref for spec in self.streams.values() for ref in spec.all_tables())

    def problem(self, path: str, message: str) -> str:
        """A problem line in the loader's format, for checks made later (e.g. against Kafka)."""
        return f"{shown_path(self.source)}: {path}: {message}"


def with_name(name: Any, raw: Any) -> Any:
    return {"name": name, **raw} if isinstance(raw, dict) else raw


# --- locations ---------------------------------------------------------------------------------


def table_uri(settings: Settings, table: TableRef | str) -> str:
    """Full URI of a table: the lake URI joined with the table's relative path."""
    path = table.path if isinstance(table, TableRef) else table
    return f"{settings.lake_uri.rstrip('/')}/{path}"


def ledger_uri(settings: Settings) -> str:
    """Full URI of the ledger table shared by all streams."""
    return table_uri(settings, LEDGER_PATH)


def checkpoint_uri(settings: Settings, stream: str, name: str) -> str:
    """`<checkpoint_uri>/<stream>/<name>`: outside the lake, so never inside a table folder."""
    for part in (stream, name):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", part):
            raise ValueError(f"not a valid checkpoint path segment: {part!r}")
    return f"{settings.checkpoint_uri.rstrip('/')}/{stream}/{name}"


def shown_path(path: Path) -> str:
    """The path relative to the working directory when inside it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)
