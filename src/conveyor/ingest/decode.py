"""The decode-and-check stage: every record is parsed once, on the JVM, and a clean one is done.

`decode(frame, schema)` adds CERTIFIED: Conveyor's certifier (`jvm/decode`,
`dev.conveyor.decode.CleanEventCertifier`) parses each value once and, for an event the
reference checks (`quality.assess`) would land in silver with exactly these values, returns them
typed; for anything else (a problem of any kind, or a value whose reading it does not settle
itself) it returns null. `checked(decoded, schema)` then gives `quality.assess`'s columns: the
certified rows straight from that struct, the others through `quality.assess`, which decides
them. So the reference's several parses and regular expressions run only for the records that
need them, and the answers stay the reference's: `tests/spark/test_assess_paths.py` holds the
paths to the same destination, reason and values, and certified implies clean with equal
values over generated events and their byte mutations.

A decoder for another format (Avro, Protobuf) feeds the same checks: `EventChecks` on the JVM
knows nothing of JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from conveyor.catalog import EventSchema, types
from conveyor.ingest import quality
from conveyor.spark import functions

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

CERTIFIED = "_certified"
"""The certifier's answer per record: a struct of the typed values, or null."""

Path = Literal["certified", "fast", "reference"]
"""How records are assessed: `certified` (the certifier, the rest `fast`), `fast` (the
from_json texts where they settle a value) or `reference` (every value from the VARIANT)."""


def rules_json(schema: EventSchema) -> str:
    """The event schema as the certifier reads it (`dev.conveyor.decode.EventRules`)."""
    earliest = datetime.fromisoformat(quality.EARLIEST_PLAUSIBLE).replace(tzinfo=UTC)
    fields: list[dict[str, Any]] = []
    for name, spec in schema.fields.items():
        exact = types.decimal(spec.type)
        fields.append(
            {
                "name": name,
                "type": spec.type,
                "precision": exact.precision if exact else 0,
                "scale": exact.scale if exact else 0,
                "required": spec.required,
                "allowed": list(spec.allowed) if spec.allowed is not None else None,
                "pattern": spec.pattern,
                "minimum": spec.minimum,
                "maximum": spec.maximum,
                "iso8601": "iso8601" in spec.timestamp_formats,
                "epochMillis": "epoch_millis" in spec.timestamp_formats,
            }
        )
    rules = {
        "fields": fields,
        "eventTime": schema.event_time,
        "maxEventBytes": schema.max_event_bytes,
        "unknownFields": schema.unknown_fields,
        "earliestMicros": int(earliest.timestamp()) * 1_000_000,
        "futureSkewMicros": quality.FUTURE_SKEW_HOURS * 3600 * 1_000_000,
    }
    return json.dumps(rules, sort_keys=True)


def decode(frame: DataFrame, schema: EventSchema) -> DataFrame:
    """frame (with `value` and `kafka_timestamp`) and CERTIFIED. Pure: no I/O."""
    from pyspark.sql import functions as F

    name = functions.certifier(frame.sparkSession, rules_json(schema))
    kafka_micros = F.unix_micros(F.col("kafka_timestamp"))
    return frame.withColumn(CERTIFIED, F.call_function(name, F.col("value"), kafka_micros))


def certified_value(member: Column, spark_type: str) -> Column:
    """A member of the certifier's struct as its Spark type (dates and timestamps come as
    days and microseconds since the epoch)."""
    from pyspark.sql import functions as F

    if spark_type == "date":
        return F.date_from_unix_date(member)
    if spark_type == "timestamp":
        return F.timestamp_micros(member)
    return member


def settled(decoded: DataFrame, schema: EventSchema) -> DataFrame:
    """`quality.assess`'s columns for the rows the certifier settled (no problems)."""
    from pyspark.sql import functions as F

    answer = F.col(CERTIFIED)
    base = [c for c in decoded.columns if c != CERTIFIED]
    typed = [
        certified_value(answer[f"f{i}"], types.spark_type(spec.type)).alias(name)
        for i, (name, spec) in enumerate(schema.fields.items())
    ]
    if schema.unknown_fields == "keep":
        # the unknown fields' JSON exactly as the reference writes it, from a VARIANT parse of
        # the few records that have any
        parsed = F.when(answer["has_unknown"], F.expr("try_parse_json(cast(value as string))"))
        typed.append(
            quality.unknown_json(schema, parsed, answer["has_unknown"]).alias(quality.UNKNOWN)
        )
    none = F.expr(f"CAST(array() AS {quality.PROBLEM_TYPE})")
    return decoded.where(answer.isNotNull()).select(*base, *typed, none.alias(quality.PROBLEMS))


def split(decoded: DataFrame, schema: EventSchema) -> tuple[DataFrame, DataFrame]:
    """A `decode`d frame as two: the rows the certifier settled, as it read them, and the
    others as `quality.assess` decides them; both in `quality.assess`'s columns without PARSED
    and the event time. Each reads `decoded` (a filter each way), so callers hold it in
    memory."""
    certified = settled(decoded, schema)
    rest = decoded.where(decoded[CERTIFIED].isNull()).drop(CERTIFIED)
    reference = quality.assess(rest, schema, fast=True).drop(quality.PARSED)
    return certified, reference.select(*certified.columns)


def joined(settled: DataFrame, others: DataFrame, schema: EventSchema) -> DataFrame:
    """The two parts of `split` as one frame, with the event time and date."""
    return settled.unionByName(others).transform(quality.with_event_time(schema))


def checked(decoded: DataFrame, schema: EventSchema) -> DataFrame:
    """`quality.assess`'s columns (without PARSED) for a `decode`d frame: certified rows as
    the certifier read them, the others as `quality.assess` decides (see `split`)."""
    return joined(*split(decoded, schema), schema)


def assess(frame: DataFrame, schema: EventSchema, *, path: Path = "certified") -> DataFrame:
    """The checked events of `frame` (needs `value` and `kafka_timestamp`), one path or another:
    the columns of `quality.assess` without PARSED. Every path decides alike."""
    if path == "certified":
        return checked(decode(frame, schema), schema)
    return quality.assess(frame, schema, fast=path == "fast").drop(quality.PARSED)
