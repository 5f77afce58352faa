"""The columns of a stream's silver table: the catalog's fields, then what Conveyor adds (the
event date, the Kafka coordinates, the ingest time; a cdc stream's LSN and commit time), then
`_unknown` when the stream keeps undeclared fields."""

from __future__ import annotations

from conveyor.catalog import StreamSpec
from conveyor.ingest import quality

SILVER_EXTRA_COLUMNS = (
    (quality.EVENT_DATE, "date"),
    ("topic", "string"),
    ("partition", "int"),
    ("offset", "bigint"),
    ("kafka_timestamp", "timestamp"),
    ("ingest_time", "timestamp"),
)
"""What silver holds after the event's own fields, with its Spark types."""


CDC_SILVER_COLUMNS = (
    ("_lsn", "bigint"),
    ("_source_ts", "timestamp"),
    ("topic", "string"),
    ("partition", "int"),
    ("offset", "bigint"),
    ("ingest_time", "timestamp"),
)
"""What a cdc stream's silver holds after the table's columns: the LSN and commit time of the
change that made the row, that change's Kafka coordinates, when it landed."""


SOFT_DELETE_COLUMNS = (("_deleted", "boolean"), ("_deleted_at", "timestamp"))
"""Silver's columns of a cdc stream with `deletes: soft`."""


def silver_extra_columns(stream: StreamSpec) -> tuple[tuple[str, str], ...]:
    """The columns silver holds besides the catalog's fields (and `_unknown`)."""
    if stream.cdc is None:
        return SILVER_EXTRA_COLUMNS
    soft = SOFT_DELETE_COLUMNS if stream.cdc.deletes == "soft" else ()
    return CDC_SILVER_COLUMNS + soft


def _silver_fields(stream: StreamSpec) -> list[tuple[str, str]]:
    fields = [(n, quality.spark_type(f)) for n, f in stream.event_schema.fields.items()]
    kept = [(quality.UNKNOWN, "string")] if stream.event_schema.unknown_fields == "keep" else []
    # _unknown last: where `schema apply` added it to an older table, it is last there too
    return fields + list(silver_extra_columns(stream)) + kept


def silver_columns(stream: StreamSpec) -> list[str]:
    return [name for name, _ in _silver_fields(stream)]


def silver_schema(stream: StreamSpec) -> str:
    """The DDL of the stream's silver table, in `silver_columns` order (for reading a stream
    that was never ingested as an empty table)."""
    return ", ".join(f"`{name}` {kind}" for name, kind in _silver_fields(stream))
