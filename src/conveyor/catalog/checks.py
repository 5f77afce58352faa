"""Checks pydantic cannot make: references between fields, service levels, uniqueness."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from conveyor.catalog.models import (
    DELTA_MIN_VACUUM_RETENTION,
    LANDING_COLUMNS,
    SILVER_DERIVED_COLUMNS,
    EventSchema,
    Layer,
    StreamSpec,
    TableSpec,
)
from conveyor.catalog.types import is_numeric
from conveyor.units import format_duration, format_size

Problem = tuple[str, str]
"""(path inside the document, what is wrong)."""


def check_streams(streams: Mapping[str, StreamSpec]) -> list[Problem]:
    """Problems pydantic cannot see: references between fields, service levels, uniqueness."""
    problems: list[Problem] = []
    for name, spec in streams.items():
        base = f"streams.{name}"
        problems += _check_fields(base, spec.event_schema)
        if spec.cdc is None:
            problems += _check_roles(base, spec.event_schema)
        else:
            problems += _check_cdc(base, spec)
        problems += _check_topic(base, spec)
        problems += _check_tables(base, spec)
    problems += _check_unique(streams)
    return problems


def _check_fields(base: str, schema: EventSchema) -> Iterator[Problem]:
    for name, field in schema.fields.items():
        at = f"{base}.schema.fields.{name}"
        numeric = is_numeric(field.type)
        only = {
            "allowed": ("string", field.type == "string", field.allowed),
            "pattern": ("string", field.type == "string", field.pattern),
            "minimum": ("numeric (int, long, float, double, decimal)", numeric, field.minimum),
            "maximum": ("numeric (int, long, float, double, decimal)", numeric, field.maximum),
            "formats": ("timestamp", field.type == "timestamp", field.formats),
        }
        for key, (kinds, applies, given) in only.items():
            if given is not None and not applies:
                yield f"{at}.{key}", f"applies only to {kinds} fields, not {field.type}"
        if field.pattern is not None:
            try:
                re.compile(field.pattern)
            except re.error as exc:
                yield (
                    f"{at}.pattern",
                    f"is not a valid regular expression ({exc}), got {field.pattern!r}",
                )
        if (
            field.minimum is not None
            and field.maximum is not None
            and field.minimum > field.maximum
        ):
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


CDC_RESERVED = frozenset(
    {"_lsn", "_source_ts", "_deleted", "_deleted_at", "_valid_from", "_valid_to", "_is_current"}
)
"""Columns a cdc stream's silver and history tables add themselves."""
VALUE_RULES = ("allowed", "pattern", "minimum", "maximum")
"""A field's rules on its values, which a cdc stream's catalog refuses (a mirror must mirror)."""


def _check_cdc(base: str, spec: StreamSpec) -> Iterator[Problem]:
    cdc, schema = spec.cdc_spec, spec.event_schema
    if schema.event_time:
        yield f"{base}.schema.event_time", "does not apply to a cdc stream (the LSN orders it)"
    if schema.dedup_key:
        yield f"{base}.schema.dedup_key", "does not apply to a cdc stream (the key is unique)"
    for index, name in enumerate(cdc.primary_key):
        at = f"{base}.cdc.primary_key" + (f".{index}" if len(cdc.primary_key) > 1 else "")
        field = schema.fields.get(name)
        if field is None:
            yield at, f"field {name!r} is not declared in {base}.schema.fields"
        elif not field.required:
            yield at, f"field {name!r} is a key column: declare it required"
    for name, field in schema.fields.items():
        if name in CDC_RESERVED or name.startswith("__"):
            yield f"{base}.schema.fields.{name}", "is a column name Conveyor's cdc tables use"
        for rule in VALUE_RULES:
            if getattr(field, rule) is not None:
                yield (
                    f"{base}.schema.fields.{name}.{rule}",
                    f"value rules do not apply to a cdc stream: {spec.name!r} mirrors its table, "
                    f"and a change refused for its {rule} would leave the row stale in silver; "
                    "check values downstream of silver instead",
                )


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
    silver_columns = set(spec.event_schema.fields) | (
        SILVER_DERIVED_COLUMNS if spec.cdc is None else frozenset()
    )
    for layer in Layer:
        table: TableSpec = getattr(spec.tables, layer.value)
        at = f"{base}.tables.{layer.value}"
        if layer is Layer.SILVER:
            allowed, hint = (
                silver_columns,
                ("a schema field" + (", event_date or ingest_date" if spec.cdc is None else "")),
            )
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
        for table in spec.all_tables():
            at = (
                f"streams.{stream}.tables.{table.layer.value}"
                if isinstance(table.layer, Layer)
                else f"streams.{stream}.cdc (its {table.layer.value} table)"
            )
            if table.name in names:
                yield (
                    f"{at}.name",
                    f"table name {table.name!r} is already used by {names[table.name]}",
                )
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
