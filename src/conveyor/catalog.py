"""The catalog: one YAML file (`conveyor.yaml`) that declares every stream, validated into frozen,
typed objects before anything is touched.

`load_catalog(path)` either returns a `Catalog` or raises one `CatalogError` listing every problem
it found, one line each: `<file>: <path.inside.document>: <what is wrong>`.

Table locations are stored relative to the lake (`clicks/silver`); `table_uri`, `ledger_uri` and
`checkpoint_uri` join them with the settings, so checkpoints never live inside a table folder.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    StrictBool,
    ValidationError,
    WrapSerializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from conveyor.errors import ConveyorError
from conveyor.settings import Settings
from conveyor.units import (
    DURATION_HINT,
    duration_ms,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)

LEDGER_PATH = "_conveyor/ledger"
"""The ledger table, shared by all streams, relative to the lake."""

DELTA_MIN_VACUUM_RETENTION = timedelta(days=7)
"""Delta's retention check (kept on) refuses to VACUUM with less than this."""


class Layer(StrEnum):
    """The tables every stream lands in."""

    BRONZE = "bronze"
    SILVER = "silver"
    QUARANTINE = "quarantine"


# Columns the ingest job adds itself; bronze and quarantine hold unparsed payloads, so only
# these can partition them.
LANDING_COLUMNS = frozenset({"ingest_date"})
SILVER_DERIVED_COLUMNS = frozenset({"event_date", "ingest_date"})
DEFAULT_PARTITIONING: Mapping[Layer, tuple[str, ...]] = types.MappingProxyType(
    {Layer.BRONZE: ("ingest_date",), Layer.SILVER: ("event_date",), Layer.QUARANTINE: ("ingest_date",)}
)


class CatalogError(ConveyorError):
    """The catalog cannot be used; `problems` has one line per problem found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class UnknownStream(ConveyorError):
    """A stream name that the catalog does not declare."""


# --- value types -------------------------------------------------------------------------------


def _problem(reason: str, *, show_input: bool = True) -> PydanticCustomError:
    # The reason travels in the context so braces in it (regexes) are not format fields.
    kind = "conveyor" if show_input else "conveyor_plain"
    return PydanticCustomError(kind, "{reason}", {"reason": reason})


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _problem(str(exc)) from None


def _size(value: Any) -> int:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise _problem(str(exc)) from None


def _retention(value: Any) -> timedelta | None:
    """`7d`, a number of milliseconds, or -1 (unlimited, returned as None)."""
    if isinstance(value, timedelta) or (value is None):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= -1:
        return None if value == -1 else timedelta(milliseconds=value)
    if isinstance(value, str) and not value.strip().lstrip("-").isdigit():
        return _duration(value)
    raise _problem(f"must be {DURATION_HINT}, a number of milliseconds, or -1 for unlimited")


def _at_least(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _problem(f"must be an integer >= {minimum}")
        return value

    return check


def _matching(pattern: str, what: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise _problem(what)
        return value

    return check


def _topic_name(value: str) -> str:
    if value in {".", ".."} or not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", value):
        raise _problem(
            "is not a valid Kafka topic name: use 1 to 249 of the characters a-z A-Z 0-9 . _ - "
            "(and not '.' or '..')"
        )
    return value


def _freeze(value: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return types.MappingProxyType(dict(value))


def _as_tuple(value: Any) -> Any:
    """A single name or null where a list of names is expected."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else value


Duration = Annotated[timedelta, BeforeValidator(_duration), PlainSerializer(format_duration)]
Retention = Annotated[
    timedelta | None,
    BeforeValidator(_retention),
    PlainSerializer(lambda v: "-1" if v is None else format_duration(v)),
]
Size = Annotated[int, BeforeValidator(_size), PlainSerializer(format_size)]
Count = Annotated[int, BeforeValidator(_at_least(1))]
Names = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]
_SERIALIZE_MAPPING = WrapSerializer(lambda value, handler: handler(dict(value)))
_LOWER_NAME = r"[a-z][a-z0-9_]{0,63}"
StreamName = Annotated[
    str,
    AfterValidator(
        _matching(_LOWER_NAME, "stream name must be 1-64 of a-z, 0-9 and '_', starting with a letter")
    ),
]
FieldName = Annotated[
    str,
    AfterValidator(
        _matching(r"[A-Za-z_][A-Za-z0-9_]*", "field name must be letters, digits and '_'")
    ),
]
TableName = Annotated[
    str, AfterValidator(_matching(_LOWER_NAME, "must be 1-64 of a-z, 0-9 and '_', starting with a letter"))
]
TablePath = Annotated[
    str,
    AfterValidator(
        _matching(
            r"[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*",
            "must be a relative path of segments of a-z, 0-9, '_' and '-' joined by '/', "
            "e.g. clicks/silver",
        )
    ),
]
TopicName = Annotated[str, AfterValidator(_topic_name)]


# --- the models --------------------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    # Keys Conveyor fills in itself; not offered as "expected keys" in messages.
    _internal_keys: ClassVar[frozenset[str]] = frozenset()


class FieldSpec(_Spec):
    """One field of an event: its type, whether it must be present, and what values are allowed."""

    type: Literal["string", "integer", "number", "boolean", "timestamp"]
    required: StrictBool = False
    unique: StrictBool = False
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    formats: tuple[Literal["iso8601", "epoch_millis"], ...] | None = None
    description: str = ""

    @property
    def timestamp_formats(self) -> tuple[str, ...]:
        """Accepted encodings of a timestamp field (both when the catalog names none)."""
        return self.formats or ("iso8601", "epoch_millis")


class EventSchema(_Spec):
    """The event's fields and the roles some of them play."""

    fields: Annotated[
        Mapping[FieldName, FieldSpec],
        Field(min_length=1),
        AfterValidator(_freeze),
        _SERIALIZE_MAPPING,
    ]
    event_time: str
    key: str | None = None
    dedup_key: Names = ()
    late_tolerance: Duration
    max_event_bytes: Size = 1024 * 1024


class TopicConfigs(_Spec):
    """Topic-level Kafka settings, under their Kafka names."""

    retention: Retention = Field(alias="retention.ms")
    cleanup_policy: Literal["delete", "compact", "compact,delete"] = Field(
        "delete", alias="cleanup.policy"
    )
    min_insync_replicas: Count = Field(1, alias="min.insync.replicas")
    max_message_bytes: Size = Field(1048588, alias="max.message.bytes")
    compression_type: Literal["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"] = Field(
        "producer", alias="compression.type"
    )

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


class TopicSpec(_Spec):
    """The stream's Kafka topic (named after the stream unless given)."""

    name: TopicName
    partitions: Count
    replication_factor: Count
    configs: TopicConfigs


class TableSpec(_Spec):
    """One Delta table; name `<stream>_<layer>` and path `<stream>/<layer>` unless given."""

    name: TableName
    path: TablePath
    partition_by: Names
    zorder_by: Names = ()


class MaintenancePolicy(_Spec):
    """When compaction is worth it, what to Z-order by, and how long VACUUM keeps old files."""

    target_file_size: Size = 128 * 1024 * 1024
    small_file_threshold: Size = 32 * 1024 * 1024
    min_small_files: Count = 10
    vacuum_retention: Duration = DELTA_MIN_VACUUM_RETENTION


class TablesSpec(_Spec):
    """The stream's bronze, silver and quarantine tables and their maintenance policy."""

    bronze: TableSpec
    silver: TableSpec
    quarantine: TableSpec
    maintenance: MaintenancePolicy = MaintenancePolicy()


class ServiceLevels(_Spec):
    """What the stream must survive: `retention.ms` has to cover both."""

    max_downtime: Duration
    backfill_window: Duration


class AnalyticsSpec(_Spec):
    """Knobs of the batch analytics over the stream."""

    session_gap: Duration = timedelta(minutes=30)


@dataclass(frozen=True)
class TableRef:
    """One table of the catalog, with everything maintenance needs to know about it."""

    stream: str
    layer: Layer
    name: str
    path: str
    partition_by: tuple[str, ...]
    zorder_by: tuple[str, ...]
    maintenance: MaintenancePolicy


class StreamSpec(_Spec):
    """One stream: topic, event schema, tables, service levels."""

    _internal_keys: ClassVar[frozenset[str]] = frozenset({"name"})

    name: StreamName
    description: str = ""
    topic: TopicSpec
    event_schema: EventSchema = Field(alias="schema")
    tables: TablesSpec
    service_levels: ServiceLevels
    analytics: AnalyticsSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _conventions(cls, data: Any) -> Any:
        """Fill in the names and paths derived from the stream's name."""
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return data
        name = data["name"]
        data = dict(data)
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
                        "partition_by": DEFAULT_PARTITIONING[layer],
                        **(given or {}),
                    }
            data["tables"] = tables
        return data

    def table(self, layer: Layer | str) -> TableRef:
        """The stream's table in `layer`."""
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
        )


class Catalog(_Spec):
    """Every stream Conveyor runs, by name. Load with `load_catalog`."""

    version: Literal[1] = 1
    streams: Annotated[
        Mapping[StreamName, StreamSpec],
        Field(min_length=1),
        AfterValidator(_freeze),
        _SERIALIZE_MAPPING,
    ]
    _source: Path = PrivateAttr(default=Path("conveyor.yaml"))

    @model_validator(mode="before")
    @classmethod
    def _name_streams(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("streams"), dict):
            streams = {k: _named(k, v) for k, v in data["streams"].items()}
            data = {**data, "streams": streams}
        return data

    @property
    def source(self) -> Path:
        """The file the catalog was loaded from."""
        return self._source

    @property
    def stream_names(self) -> tuple[str, ...]:
        return tuple(self.streams)

    def stream(self, name: str) -> StreamSpec:
        """The stream called `name`; raises UnknownStream naming the ones that exist."""
        try:
            return self.streams[name]
        except KeyError:
            known = ", ".join(self.streams) or "none"
            raise UnknownStream(
                f"{_shown_path(self.source)}: no stream named {name!r} (streams: {known})"
            ) from None

    def tables(self) -> tuple[TableRef, ...]:
        """Every table of every stream, bronze, silver, quarantine in stream order."""
        return tuple(spec.table(layer) for spec in self.streams.values() for layer in Layer)

    def problem(self, path: str, message: str) -> str:
        """A problem line in the loader's format, for checks made later (e.g. against Kafka)."""
        return f"{_shown_path(self.source)}: {path}: {message}"


def _named(name: Any, raw: Any) -> Any:
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


# --- loading -----------------------------------------------------------------------------------

Problem = tuple[str, str]
"""(path inside the document, what is wrong)."""


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog file; raises CatalogError listing every problem found."""
    shown = _shown_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(
            [f"{shown}: file not found (set CONVEYOR_CATALOG or pass --catalog)"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError([f"{shown}: cannot be read: {exc}"]) from None
    data, problems = _parse_yaml(text)
    catalog, more = _validate(data)
    problems += more
    if problems or catalog is None:
        raise CatalogError([f"{shown}: {where}: {what}" for where, what in problems])
    catalog._source = path
    return catalog


def _shown_path(path: Path) -> str:
    """The path relative to the working directory when inside it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _parse_yaml(text: str) -> tuple[Any, list[Problem]]:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        problems = list(_duplicate_keys(node, (), set()))
        return loader.construct_document(node), problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise CatalogError([f"{where}: invalid YAML: {what}"]) from None
    except yaml.YAMLError as exc:
        raise CatalogError([f"(document): invalid YAML: {exc}"]) from None
    finally:
        loader.dispose()


def _duplicate_keys(node: yaml.Node, path: tuple[str, ...], seen: set[int]) -> Iterator[Problem]:
    """Keys given twice in one mapping, which YAML loaders otherwise silently overwrite."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first_line and key != "<<":
                what = {"streams": "stream name", "fields": "field name"}.get(
                    path[-1] if path else "", "key"
                )
                yield (
                    ".".join((*path, key)),
                    f"duplicate {what} {key!r} on line {line} (first defined on line "
                    f"{first_line[key]})",
                )
            first_line.setdefault(key, line)
            yield from _duplicate_keys(value_node, (*path, key), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, str(index)), seen)


def _validate(data: Any) -> tuple[Catalog | None, list[Problem]]:
    if data is None:
        return None, [("(document)", "is empty; expected a mapping with a 'streams' key")]
    if not isinstance(data, dict):
        return None, [("(document)", f"must be a mapping with a 'streams' key, got {_shown(data)}")]
    problems: list[Problem] = []
    catalog: Catalog | None = None
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as exc:
        problems += _translate(exc)
    streams = catalog.streams if catalog is not None else _valid_streams(data.get("streams"))
    if isinstance(data.get("streams"), dict):
        for name, raw in data["streams"].items():
            if isinstance(raw, dict) and "name" in raw:
                problems.append((f"streams.{name}.name", "unknown key (a stream is named by its key)"))
    problems += check_streams(streams)
    return catalog, problems


def _valid_streams(raw_streams: Any) -> dict[str, StreamSpec]:
    """The streams that validate on their own, so their cross-checks still run."""
    valid: dict[str, StreamSpec] = {}
    if isinstance(raw_streams, dict):
        for name, raw in raw_streams.items():
            try:
                valid[str(name)] = StreamSpec.model_validate(_named(name, raw))
            except ValidationError:
                continue
    return valid


# --- translating pydantic's errors -------------------------------------------------------------

_TYPE_MESSAGES = {
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping",
    "mapping_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _translate(exc: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if part != "[key]")
        path = ".".join(str(part) for part in loc) or "(document)"
        problems.append((path, _describe(error, loc)))
    return problems


def _describe(error: Any, loc: tuple[str | int, ...]) -> str:
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown key" + _expected_keys(loc[:-1])
    if kind == "conveyor_plain":
        return str(ctx["reason"])
    if kind == "conveyor":
        what = str(ctx["reason"])
    elif kind in _TYPE_MESSAGES:
        what = _TYPE_MESSAGES[kind]
    elif kind == "literal_error":
        what = f"must be one of {ctx['expected']}"
    elif kind == "too_short":
        what = f"must have at least {ctx['min_length']} entry"
    else:
        message = str(error["msg"])
        what = message[:1].lower() + message[1:]
    return f"{what}, got {_shown(error.get('input'))}"


def _shown(value: Any) -> str:
    """A value as the YAML author wrote it (short)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected_keys(loc: tuple[str | int, ...]) -> str:
    model = _model_at(loc)
    if model is None:
        return ""
    keys = sorted(
        (info.alias or name)
        for name, info in model.model_fields.items()
        if name not in model._internal_keys
    )
    return f" (expected one of: {', '.join(keys)})"


def _model_at(loc: tuple[str | int, ...]) -> type[_Spec] | None:
    """The model class that validates the mapping at `loc` in the document."""
    current: Any = Catalog
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {(info.alias or name): info for name, info in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[part].annotation
        elif get_origin(current) in (dict, Mapping):
            current = get_args(current)[1]
        elif get_origin(current) in (list, tuple):
            current = get_args(current)[0]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, _Spec) else None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


# --- checks across fields and streams ----------------------------------------------------------


def check_streams(streams: Mapping[str, StreamSpec]) -> list[Problem]:
    """Problems pydantic cannot see: references between fields, service levels, uniqueness."""
    problems: list[Problem] = []
    for name, spec in streams.items():
        base = f"streams.{name}"
        problems += _check_fields(base, spec.event_schema)
        problems += _check_roles(base, spec.event_schema)
        problems += _check_topic(base, spec)
        problems += _check_tables(base, spec)
    problems += _check_unique(streams)
    return problems


def _check_fields(base: str, schema: EventSchema) -> Iterator[Problem]:
    for name, field in schema.fields.items():
        at = f"{base}.schema.fields.{name}"
        only = {
            "allowed": ({"string"}, field.allowed is not None),
            "pattern": ({"string"}, field.pattern is not None),
            "minimum": ({"integer", "number"}, field.minimum is not None),
            "maximum": ({"integer", "number"}, field.maximum is not None),
            "formats": ({"timestamp"}, field.formats is not None),
        }
        for key, (types_, given) in only.items():
            if given and field.type not in types_:
                kinds = " and ".join(sorted(types_))
                yield f"{at}.{key}", f"applies only to {kinds} fields, not {field.type}"
        if field.pattern is not None:
            try:
                re.compile(field.pattern)
            except re.error as exc:
                yield f"{at}.pattern", f"is not a valid regular expression ({exc}), got {field.pattern!r}"
        if field.minimum is not None and field.maximum is not None and field.minimum > field.maximum:
            yield f"{at}.maximum", f"must be >= minimum ({field.minimum:g}), got {field.maximum:g}"


def _check_roles(base: str, schema: EventSchema) -> Iterator[Problem]:
    declared = f"is not declared in {base}.schema.fields"
    time_field = schema.fields.get(schema.event_time)
    if time_field is None:
        yield f"{base}.schema.event_time", f"field {schema.event_time!r} {declared}"
    elif time_field.type != "timestamp" or not time_field.required:
        yield (
            f"{base}.schema.event_time",
            f"field {schema.event_time!r} must be a required timestamp, "
            f"got {'a required' if time_field.required else 'an optional'} {time_field.type}",
        )
    if schema.key is not None and schema.key not in schema.fields:
        yield f"{base}.schema.key", f"field {schema.key!r} {declared}"
    for index, name in enumerate(schema.dedup_key):
        if name not in schema.fields:
            at = f"{base}.schema.dedup_key" + (f".{index}" if len(schema.dedup_key) > 1 else "")
            yield at, f"field {name!r} {declared}"


def _check_topic(base: str, spec: StreamSpec) -> Iterator[Problem]:
    topic, levels = spec.topic, spec.service_levels
    configs = topic.configs
    if configs.min_insync_replicas > topic.replication_factor:
        yield (
            f"{base}.topic.configs.min.insync.replicas",
            f"must be <= replication_factor ({topic.replication_factor}), "
            f"got {configs.min_insync_replicas}",
        )
    needed = levels.max_downtime + levels.backfill_window
    if configs.retention is not None and configs.retention < needed:
        yield (
            f"{base}.topic.configs.retention.ms",
            f"{format_duration(configs.retention)} does not cover service_levels.max_downtime + "
            f"backfill_window ({format_duration(levels.max_downtime)} + "
            f"{format_duration(levels.backfill_window)} = {format_duration(needed)}); "
            "raise retention.ms or lower the service levels",
        )
    if spec.event_schema.max_event_bytes > configs.max_message_bytes:
        yield (
            f"{base}.schema.max_event_bytes",
            f"{format_size(spec.event_schema.max_event_bytes)} is larger than "
            f"topic.configs.max.message.bytes ({configs.max_message_bytes}): the broker would "
            "reject such events before Conveyor could quarantine them",
        )


def _check_tables(base: str, spec: StreamSpec) -> Iterator[Problem]:
    silver_columns = set(spec.event_schema.fields) | SILVER_DERIVED_COLUMNS
    for layer in Layer:
        table: TableSpec = getattr(spec.tables, layer.value)
        at = f"{base}.tables.{layer.value}"
        if layer is Layer.SILVER:
            allowed, hint = silver_columns, "a schema field, event_date or ingest_date"
        else:
            allowed, hint = set(LANDING_COLUMNS), "ingest_date (the payload is not parsed yet)"
        for key in ("partition_by", "zorder_by"):
            for column in getattr(table, key):
                if column not in allowed:
                    yield f"{at}.{key}", f"column {column!r} is unknown; use {hint}"
        for column in set(table.zorder_by) & set(table.partition_by):
            yield f"{at}.zorder_by", f"column {column!r} is already a partition column"
    policy = spec.tables.maintenance
    at = f"{base}.tables.maintenance"
    if policy.small_file_threshold >= policy.target_file_size:
        yield (
            f"{at}.small_file_threshold",
            f"must be below target_file_size ({format_size(policy.target_file_size)}), "
            f"got {format_size(policy.small_file_threshold)}",
        )
    floor = max(DELTA_MIN_VACUUM_RETENTION, spec.service_levels.max_downtime)
    if policy.vacuum_retention < floor:
        yield (
            f"{at}.vacuum_retention",
            f"must be at least {format_duration(floor)} (Delta's retention check and "
            f"service_levels.max_downtime), got {format_duration(policy.vacuum_retention)}",
        )


def _check_unique(streams: Mapping[str, StreamSpec]) -> Iterator[Problem]:
    topics: dict[str, str] = {}  # metric-safe topic name -> stream
    names: dict[str, str] = {}  # table name -> where declared
    paths: dict[str, str] = {}  # table path -> where declared
    for stream, spec in streams.items():
        topic = spec.topic.name
        owner = topics.get(topic.replace(".", "_"))
        if owner is not None:
            other = streams[owner].topic.name
            if other == topic:
                what = f"topic {topic!r} is already used by stream {owner!r}"
            else:
                what = (
                    f"topic {topic!r} collides with {other!r} of stream {owner!r} "
                    "(Kafka treats '.' and '_' alike in metric names)"
                )
            yield f"streams.{stream}.topic.name", what
        else:
            topics[topic.replace(".", "_")] = stream
        for layer in Layer:
            table: TableSpec = getattr(spec.tables, layer.value)
            at = f"streams.{stream}.tables.{layer.value}"
            if table.name in names:
                yield f"{at}.name", f"table name {table.name!r} is already used by {names[table.name]}"
            else:
                names[table.name] = at
            for other_path, where in paths.items():
                if _overlaps(table.path, other_path):
                    yield (
                        f"{at}.path",
                        f"{table.path!r} overlaps {other_path!r} of {where}: "
                        "tables need folders of their own",
                    )
                    break
            else:
                paths[table.path] = at


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")
