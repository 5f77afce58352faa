"""Parse and validate raw Kafka values against a stream's event schema, as Spark columns.

`assess(frame, schema)` adds, per record, the parsed JSON (a VARIANT), the typed fields, the
event time and the list of problems found. A record with no problem goes to silver; any other
goes to quarantine with the first problem's code and every problem's message. The checks are
deterministic (they compare timestamps with the record's Kafka timestamp, not the clock), so a
replayed micro-batch is classified exactly as before.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from conveyor.catalog import EventSchema, FieldSpec

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

PARSED = "_parsed"
PROBLEMS = "_problems"
EVENT_TIME = "event_time"
EVENT_DATE = "event_date"
EARLIEST_PLAUSIBLE = "2000-01-01 00:00:00"
FUTURE_SKEW_HOURS = 24
_ISO_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$"


class QuarantineReason(StrEnum):
    """Machine-readable reason codes written to the quarantine table."""

    EMPTY_VALUE = "empty_value"
    INVALID_UTF8 = "invalid_utf8"
    OVERSIZED = "oversized"
    MALFORMED_JSON = "malformed_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    NOT_ALLOWED = "not_allowed"
    PATTERN_MISMATCH = "pattern_mismatch"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIMESTAMP = "bad_timestamp"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    TOO_LATE = "too_late"


_JSON_TYPES = {
    "string": ("STRING",),
    "integer": ("BIGINT", "INT", "SMALLINT", "TINYINT"),
    "number": ("BIGINT", "INT", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT"),
    "boolean": ("BOOLEAN",),
}
_SPARK_TYPES = {"string": "string", "integer": "bigint", "number": "double", "boolean": "boolean"}


def problem(code: QuarantineReason, message: Column) -> Column:
    from pyspark.sql import functions as F

    return F.struct(F.lit(code.value).alias("code"), message.alias("message"))


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _path(name: str) -> str:
    return f"$['{_quote(name)}']"


def _record_problem(schema: EventSchema) -> Column:
    """The first record-level problem (nothing else can be checked after one), or null."""
    from pyspark.sql import functions as F

    value = F.col("value")
    parsed = F.col(PARSED)
    kind = F.expr(f"schema_of_variant({PARSED})")
    size = F.length(value)
    return (
        F.when(
            value.isNull() | (size == 0),
            problem(QuarantineReason.EMPTY_VALUE, F.lit("value is empty or null (a tombstone)")),
        )
        .when(
            ~F.expr("is_valid_utf8(value)"),
            problem(QuarantineReason.INVALID_UTF8, F.lit("value is not valid UTF-8")),
        )
        .when(
            size > schema.max_event_bytes,
            problem(
                QuarantineReason.OVERSIZED,
                F.format_string(
                    f"value is %d bytes, more than the {schema.max_event_bytes} allowed", size
                ),
            ),
        )
        .when(
            parsed.isNull(),
            problem(QuarantineReason.MALFORMED_JSON, F.lit("value is not valid JSON")),
        )
        .when(
            ~kind.startswith("OBJECT"),
            problem(
                QuarantineReason.NOT_AN_OBJECT,
                F.concat(F.lit("value is JSON but not an object: "), F.lower(kind)),
            ),
        )
    )


def _json_type(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.expr(f'schema_of_variant(variant_get({PARSED}, "{_path(name)}"))')


def typed_value(name: str, spec: FieldSpec) -> Column:
    """The field as its Spark type (timestamps as TIMESTAMP), null when absent or invalid."""
    from pyspark.sql import functions as F

    path = _path(name)
    if spec.type != "timestamp":
        return F.expr(f"try_variant_get({PARSED}, \"{path}\", '{_SPARK_TYPES[spec.type]}')")
    kind = _json_type(name)
    text = F.expr(f"try_variant_get({PARSED}, \"{path}\", 'string')")
    millis = F.expr(f"try_variant_get({PARSED}, \"{path}\", 'bigint')")
    candidates = []
    if "iso8601" in spec.timestamp_formats:
        candidates.append(
            F.when(
                (kind == "STRING") & text.rlike(_ISO_WITH_OFFSET),
                F.expr(f"try_cast(try_variant_get({PARSED}, \"{path}\", 'string') AS TIMESTAMP)"),
            )
        )
    if "epoch_millis" in spec.timestamp_formats:
        candidates.append(F.when(kind.isin(*_JSON_TYPES["integer"]), F.timestamp_millis(millis)))
    return F.coalesce(*candidates) if len(candidates) > 1 else candidates[0]


def _type_matches(kind: Column, field_type: str) -> Column:
    matches = kind.isin(*_JSON_TYPES[field_type])
    return matches | kind.startswith("DECIMAL") if field_type == "number" else matches


def _field_problems(name: str, spec: FieldSpec, kind: Column, value: Column) -> list[Column]:
    """The field's checks, over its JSON type name (`kind`) and typed value, computed once."""
    from pyspark.sql import functions as F

    present = kind.isNotNull() & (kind != "VOID")
    shown = F.expr(f'to_json(variant_get({PARSED}, "{_path(name)}"))')
    checks: list[Column] = []
    if spec.required:
        checks.append(
            F.when(
                ~present,
                problem(
                    QuarantineReason.MISSING_FIELD, F.lit(f"field '{name}' is required but missing")
                ),
            )
        )
    if spec.type == "timestamp":
        allowed = " or ".join(
            {"iso8601": "an ISO-8601 string with an offset", "epoch_millis": "epoch milliseconds"}[
                f
            ]
            for f in spec.timestamp_formats
        )
        checks.append(
            F.when(
                present & value.isNull(),
                problem(
                    QuarantineReason.BAD_TIMESTAMP,
                    F.concat(F.lit(f"field '{name}' must be {allowed}, got "), shown),
                ),
            )
        )
        ceiling = F.col("kafka_timestamp") + F.expr(f"INTERVAL {FUTURE_SKEW_HOURS} HOURS")
        checks.append(
            F.when(
                value.isNotNull()
                & ((value < F.lit(EARLIEST_PLAUSIBLE).cast("timestamp")) | (value > ceiling)),
                problem(
                    QuarantineReason.TIMESTAMP_OUT_OF_RANGE,
                    F.format_string(
                        f"field '{name}' is %s, before {EARLIEST_PLAUSIBLE[:10]} or more than "
                        f"{FUTURE_SKEW_HOURS}h after the record reached Kafka",
                        value.cast("string"),
                    ),
                ),
            )
        )
        return checks
    checks.append(
        F.when(
            present & ~_type_matches(kind, spec.type),
            problem(
                QuarantineReason.WRONG_TYPE,
                F.concat(F.lit(f"field '{name}' must be a {spec.type}, got "), shown),
            ),
        )
    )
    if spec.allowed is not None:
        checks.append(
            F.when(
                value.isNotNull() & ~value.isin(*spec.allowed),
                problem(
                    QuarantineReason.NOT_ALLOWED,
                    F.concat(
                        F.lit(f"field '{name}': "),
                        shown,
                        F.lit(f" is not one of {', '.join(spec.allowed)}"),
                    ),
                ),
            )
        )
    if spec.pattern is not None:
        checks.append(
            F.when(
                value.isNotNull() & ~value.rlike(spec.pattern),
                problem(
                    QuarantineReason.PATTERN_MISMATCH,
                    F.concat(
                        F.lit(f"field '{name}': "), shown, F.lit(f" does not match {spec.pattern}")
                    ),
                ),
            )
        )
    for bound, bad in (
        (spec.minimum, value < F.lit(spec.minimum)),
        (spec.maximum, value > F.lit(spec.maximum)),
    ):
        if bound is not None:
            word = "at least" if bound == spec.minimum else "at most"
            checks.append(
                F.when(
                    value.isNotNull() & bad,
                    problem(
                        QuarantineReason.OUT_OF_RANGE,
                        F.concat(F.lit(f"field '{name}' must be {word} {bound:g}, got "), shown),
                    ),
                )
            )
    return checks


def assess(frame: DataFrame, schema: EventSchema) -> DataFrame:
    """Add PARSED, one column per schema field (typed), EVENT_TIME, EVENT_DATE and PROBLEMS.

    frame needs `value` (binary) and `kafka_timestamp`. Pure: no I/O. Each field's JSON type
    and typed value are extracted once into helper columns that every check reads (extracting
    them in each check cost most of the parse).
    """
    from pyspark.sql import functions as F

    parsed = frame.withColumn(
        PARSED,
        F.when(F.expr("is_valid_utf8(value)"), F.expr("try_parse_json(cast(value as string))")),
    )
    fields = list(schema.fields.items())
    kinds = [f"_kind_{i}" for i in range(len(fields))]
    values = [f"_value_{i}" for i in range(len(fields))]
    extracted = parsed.select(
        "*",
        *(_json_type(name).alias(k) for (name, _), k in zip(fields, kinds, strict=True)),
        *(typed_value(name, spec).alias(v) for (name, spec), v in zip(fields, values, strict=True)),
    )
    record = _record_problem(schema)
    field_checks = [
        check
        for (name, spec), k, v in zip(fields, kinds, values, strict=True)
        for check in _field_problems(name, spec, F.col(k), F.col(v))
    ]
    problems = F.when(record.isNotNull(), F.array(record)).otherwise(
        F.filter(F.array(*field_checks), lambda p: p.isNotNull())
    )
    typed = [
        F.when(record.isNull(), F.col(v)).alias(name)
        for (name, _), v in zip(fields, values, strict=True)
    ]
    out = extracted.select(*parsed.columns, *typed, problems.alias(PROBLEMS))
    out = out.withColumn(EVENT_TIME, F.col(schema.event_time))
    return out.withColumn(EVENT_DATE, F.to_date(F.col(EVENT_TIME)))
