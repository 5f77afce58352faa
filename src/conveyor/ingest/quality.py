"""Parse and validate raw Kafka values against a stream's event schema, as Spark columns.

`assess(frame, schema)` adds, per record, the parsed JSON (a VARIANT), the typed fields, the
event time and the list of problems found.

Two parses of each value share the work. `try_parse_json` (a VARIANT) decides whether the value
is strict JSON and what JSON type each field has, exactly as the reason codes need. `from_json`
with every field read as text gives the field values cheaply: for a field whose JSON type
matches its catalog type, the text from_json returns is the value itself (strings) or its
canonical rendering (numbers, booleans), so a cast gives what a VARIANT cast would; any other
field is cast from the VARIANT as before. The VARIANT is asked a field's JSON type only where
the text leaves it open (a text that looks like a number, boolean or object): a field from_json
read as absent or null is not present, and a text no other JSON type renders is a STRING, so a
typical event never looks inside its VARIANT (a field lookup there was most of the parse's
time). The problem list is only built for a record that has a problem.
`tests/spark/test_assess_paths.py` holds both ways to the same answers over a corpus aimed at
where they could part. A record with no problem goes to silver; any other
goes to quarantine with the first problem's code and every problem's message. The checks are
deterministic (they compare timestamps with the record's Kafka timestamp, not the clock), so a
replayed micro-batch is classified exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from conveyor.catalog import EventSchema, FieldSpec, types
from conveyor.spark import functions

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

PARSED = "_parsed"
TEXTS = "_texts"
PROBLEMS = "_problems"
UTF8 = "_utf8"
RECORD = "_record"
EVENT_TIME = "event_time"
EVENT_DATE = "event_date"
UNKNOWN = "_unknown"
"""Silver's column of the fields the catalog does not declare (JSON text of an object, null
when there are none), kept under `unknown_fields: keep`."""
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
    UNKNOWN_FIELD = "unknown_field"
    # cdc streams (Debezium change events)
    MALFORMED_ENVELOPE = "malformed_envelope"
    UNKNOWN_OP = "unknown_op"
    MISSING_KEY = "missing_key"


_INTEGERS = ("BIGINT", "INT", "SMALLINT", "TINYINT")
_NUMBERS = (*_INTEGERS, "DOUBLE", "FLOAT")  # and every DECIMAL(p,s): see _type_matches
_JSON_TYPES = {
    "string": ("STRING",),
    "int": _INTEGERS,
    "long": _INTEGERS,
    "float": _NUMBERS,
    "double": _NUMBERS,
    "boolean": ("BOOLEAN",),
    "date": ("STRING",),
    "bytes": ("STRING",),
}
"""The JSON types (schema_of_variant's names) each catalog type accepts; a decimal accepts
every number and a string holding one (the way exact amounts usually travel)."""
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_MAX_EPOCH_MILLIS = (2**63 - 1) // 1000
"""The largest epoch-millisecond count whose microseconds a long holds."""
_DECIMAL_TEXT = r'^"-?\d+(\.\d+)?"$'
"""A JSON string as to_json renders it (quoted) that holds a plain decimal number."""
PROBLEM_TYPE = "ARRAY<STRUCT<code: STRING, message: STRING>>"


def problem(code: QuarantineReason, message: Column) -> Column:
    from pyspark.sql import functions as F

    return F.struct(F.lit(code.value).alias("code"), message.alias("message"))


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _path(name: str) -> str:
    return f"$['{_quote(name)}']"


def _record_problem(schema: EventSchema, fast: bool = True) -> Column:
    """The first record-level problem (nothing else can be checked after one), or null.
    Reads the UTF8 column. `fast`: valid JSON that starts with `{` (after blanks) is an object,
    so only other values pay for schema_of_variant's answer."""
    from pyspark.sql import functions as F

    value = F.col("value")
    parsed = F.col(PARSED)
    kind = F.expr(f"schema_of_variant({PARSED})")
    size = F.length(value)
    is_object = kind.startswith("OBJECT")
    if fast:
        text = value.cast("string")
        first = F.substring(F.ltrim(text, F.lit(" \t\n\r")), 1, 1)
        is_object = (
            F.when(text.startswith("{"), F.lit(True))
            .when(first == "{", F.lit(True))
            .otherwise(is_object)
        )
    return (
        F.when(
            value.isNull() | (size == 0),
            problem(QuarantineReason.EMPTY_VALUE, F.lit("value is empty or null (a tombstone)")),
        )
        .when(
            ~F.col(UTF8),
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
            ~is_object,
            problem(
                QuarantineReason.NOT_AN_OBJECT,
                F.concat(F.lit("value is JSON but not an object: "), F.lower(kind)),
            ),
        )
    )


def _json_type(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.expr(f'schema_of_variant(variant_get({PARSED}, "{_path(name)}"))')


_NON_STRING_TEXT = (
    r'(?s)^(-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?|"?-?Infinity"?|"?NaN"?|true|false|[\[{].*)$'
)
"""What from_json's text of a JSON number, boolean, object or array can look like (a number
beyond a double's range is written as the quoted text "Infinity"). A text that cannot be one
of those came from a JSON string."""


def _field_kind(name: str, spec: FieldSpec, fast: bool) -> Column:
    """The field's JSON type name as schema_of_variant gives it, or null for a field that is
    not present. Fast: the VARIANT is asked only where the from_json text leaves the JSON type
    open. A text that no other JSON type could have produced is a STRING (a string that only
    looks like a number, boolean or object still asks); an absent field has no type."""
    from pyspark.sql import functions as F

    kind = _json_type(name)
    if not fast:
        return kind
    text = _text(name)
    # from_json read the record but not this field: missing or JSON null, which every check
    # treats alike (not present, no value). A record from_json could not read asks the VARIANT.
    absent = F.col(TEXTS).isNotNull() & text.isNull()
    return (
        F.when(absent, F.lit(None).cast("string"))
        .when(text.isNotNull() & ~text.rlike(_NON_STRING_TEXT), F.lit("STRING"))
        .otherwise(kind)
    )


def _variant_as(name: str, spark_type: str) -> Column:
    from pyspark.sql import functions as F

    return F.expr(f"try_variant_get({PARSED}, \"{_path(name)}\", '{spark_type}')")


def _text(name: str) -> Column:
    """The field as from_json read it: a string's content, any other JSON value's text."""
    from pyspark.sql import functions as F

    return F.col(TEXTS).getField(name)


def _matching_text(name: str, kind: Column, field_type: str, spark_type: str, fast: bool) -> Column:
    """The field's value cast from its from_json text when its JSON type is the catalog's,
    else cast from the VARIANT (the reference; it also covers a value from_json could not
    read). Not fast: always from the VARIANT."""
    from pyspark.sql import functions as F

    if not fast:
        return _variant_as(name, spark_type)
    text = _text(name)
    cast = text if spark_type == "string" else text.try_cast(spark_type)
    usable = F.col(TEXTS).isNotNull() & _type_matches(kind, field_type)
    if spark_type != "string":  # a text the cast cannot read ("Infinity") asks the VARIANT
        usable = usable & cast.isNotNull()
    # A field with no JSON type (absent, as `kind` already says) has no value: no VARIANT lookup.
    return (
        F.when(usable, cast)
        .when(kind.isNull(), F.lit(None).cast(spark_type))
        .otherwise(_variant_as(name, spark_type))
    )


def spark_type(spec: FieldSpec) -> str:
    """The Spark SQL type a catalog field lands as in silver."""
    return types.spark_type(spec.type)


def typed_value(name: str, spec: FieldSpec, kind: Column, fast: bool = True) -> Column:
    """The field as its Spark type, null when absent or invalid. `kind` is the field's JSON
    type name (schema_of_variant); `fast` reads values from the from_json texts where their
    JSON type allows (see the module's docstring). A decimal is always read from the VARIANT,
    which holds a JSON number's digits exactly (from_json's text of a number can be a
    double's rendering)."""
    from pyspark.sql import functions as F

    if types.decimal(spec.type) is not None:
        exact = _variant_as(name, spec.type)
        return F.when(kind.isNull(), F.lit(None).cast(spec.type)).otherwise(exact)
    if spec.type in ("date", "bytes"):
        text = _matching_text(name, kind, "string", "string", fast)
        if spec.type == "date":
            value = F.when(text.rlike(_DATE), text.try_cast("date"))
        else:
            value = F.try_to_binary(text, F.lit("base64"))
        return F.when(kind == "STRING", value)
    if spec.type in ("float", "double"):
        value = _matching_text(name, kind, spec.type, types.spark_type(spec.type), fast)
        # one zero: -0.0 lands as 0.0 (a JSON -0.0 is read as the decimal 0.0 by one path and
        # as a double by another; Parquet's statistics order the two zeros differently)
        return F.when(value == 0, F.lit(0.0).cast(spec.type)).otherwise(value)
    if spec.type != "timestamp":
        return _matching_text(name, kind, spec.type, types.spark_type(spec.type), fast)
    candidates = []
    if "iso8601" in spec.timestamp_formats:
        text = _matching_text(name, kind, "string", "string", fast)
        candidates.append(
            F.when(
                (kind == "STRING") & text.rlike(_ISO_WITH_OFFSET),
                text.try_cast("timestamp"),
            )
        )
    if "epoch_millis" in spec.timestamp_formats:
        millis = _matching_text(name, kind, "long", "bigint", fast)
        # beyond what microseconds in a long hold, timestamp_millis raises (and fails the batch)
        fits = millis.between(-_MAX_EPOCH_MILLIS, _MAX_EPOCH_MILLIS)
        candidates.append(F.when(kind.isin(*_INTEGERS) & fits, F.timestamp_millis(millis)))
    return F.coalesce(*candidates) if len(candidates) > 1 else candidates[0]


def _type_matches(kind: Column, field_type: str) -> Column:
    if types.decimal(field_type) is not None:
        return kind.isin(*_NUMBERS, "STRING") | kind.startswith("DECIMAL")
    matches = kind.isin(*_JSON_TYPES[field_type])
    return matches | kind.startswith("DECIMAL") if field_type in ("float", "double") else matches


Check = tuple["Column", "Column"]
"""A field check: the condition under which it fails, and the problem it then reports."""


def _shown(name: str) -> Column:
    from pyspark.sql import functions as F

    return F.expr(f'to_json(variant_get({PARSED}, "{_path(name)}"))')


def _required_check(name: str, present: Column) -> Check:
    from pyspark.sql import functions as F

    message = F.lit(f"field '{name}' is required but missing")
    return ~present, problem(QuarantineReason.MISSING_FIELD, message)


def _timestamp_checks(name: str, spec: FieldSpec, present: Column, value: Column) -> list[Check]:
    from pyspark.sql import functions as F

    allowed = " or ".join(
        {"iso8601": "an ISO-8601 string with an offset", "epoch_millis": "epoch milliseconds"}[f]
        for f in spec.timestamp_formats
    )
    bad = problem(
        QuarantineReason.BAD_TIMESTAMP,
        F.concat(F.lit(f"field '{name}' must be {allowed}, got "), _shown(name)),
    )
    ceiling = F.col("kafka_timestamp") + F.expr(f"INTERVAL {FUTURE_SKEW_HOURS} HOURS")
    implausible = value.isNotNull() & (
        (value < F.lit(EARLIEST_PLAUSIBLE).cast("timestamp")) | (value > ceiling)
    )
    out_of_range = problem(
        QuarantineReason.TIMESTAMP_OUT_OF_RANGE,
        F.format_string(
            f"field '{name}' is %s, before {EARLIEST_PLAUSIBLE[:10]} or more than "
            f"{FUTURE_SKEW_HOURS}h after the record reached Kafka",
            value.cast("string"),
        ),
    )
    return [(present & value.isNull(), bad), (implausible, out_of_range)]


_DESCRIBED = {
    "int": "an int",
    "long": "a long",
    "float": "a float",
    "double": "a double",
    "date": "a date (YYYY-MM-DD)",
    "bytes": "base64-encoded bytes",
}


def _described(field_type: str) -> str:
    if types.decimal(field_type) is not None:
        return f"a {field_type} (a number, or a string holding one)"
    return _DESCRIBED.get(field_type, f"a {field_type}")


def _type_checks(
    name: str, spec: FieldSpec, present: Column, kind: Column, value: Column
) -> list[Check]:
    """The JSON type is one the catalog type accepts; where that JSON type can still hold a
    value the catalog type cannot (a long in an int, a string that is no date, more decimal
    places than the scale), the value is checked too."""
    from pyspark.sql import functions as F

    wrong = F.concat(F.lit(f"field '{name}' must be {_described(spec.type)}, got "), _shown(name))
    matches = _type_matches(kind, spec.type)
    checks = [(present & ~matches, problem(QuarantineReason.WRONG_TYPE, wrong))]
    exact = types.decimal(spec.type)
    # of an accepted JSON type, and in a form the catalog type reads: a date string, base64,
    # a number or a string of digits for a decimal (any int or long for an int)
    readable = F.lit(True)
    if spec.type in ("date", "bytes"):
        readable = value.isNotNull()
    elif exact is not None:
        readable = (kind != "STRING") | _shown(name).rlike(_DECIMAL_TEXT)
    if spec.type in ("date", "bytes") or exact is not None:
        checks.append((present & matches & ~readable, problem(QuarantineReason.WRONG_TYPE, wrong)))
    if spec.type in ("float", "double"):  # a number beyond the type's range reads as infinite
        misfit = F.concat(
            F.lit(f"field '{name}' does not fit {_described(spec.type)}: "), _shown(name)
        )
        infinite = F.abs(value) == F.lit(float("inf"))
        checks.append(
            (present & matches & infinite, problem(QuarantineReason.OUT_OF_RANGE, misfit))
        )
    if spec.type == "int" or exact is not None:  # readable, with more digits than it holds
        misfit = F.concat(
            F.lit(f"field '{name}' does not fit {_described(spec.type)}: "), _shown(name)
        )
        checks.append(
            (
                present & matches & readable & value.isNull(),
                problem(QuarantineReason.OUT_OF_RANGE, misfit),
            )
        )
    if exact is not None:
        places = rf'^"?-?\d+\.\d{{{exact.scale}}}\d*[1-9]\d*"?$'
        rounded = F.concat(
            F.lit(f"field '{name}' has more than {exact.scale} decimal places: "), _shown(name)
        )
        checks.append(
            (
                present & matches & _shown(name).rlike(places),
                problem(QuarantineReason.OUT_OF_RANGE, rounded),
            )
        )
    return checks


def _allowed_check(name: str, allowed: tuple[str, ...], value: Column) -> Check:
    from pyspark.sql import functions as F

    message = F.concat(
        F.lit(f"field '{name}': "), _shown(name), F.lit(f" is not one of {', '.join(allowed)}")
    )
    return value.isNotNull() & ~value.isin(*allowed), problem(QuarantineReason.NOT_ALLOWED, message)


def _pattern_check(name: str, pattern: str, value: Column) -> Check:
    from pyspark.sql import functions as F

    message = F.concat(
        F.lit(f"field '{name}': "), _shown(name), F.lit(f" does not match {pattern}")
    )
    return value.isNotNull() & ~value.rlike(pattern), problem(
        QuarantineReason.PATTERN_MISMATCH, message
    )


def _range_checks(name: str, spec: FieldSpec, value: Column) -> list[Check]:
    from pyspark.sql import functions as F

    checks: list[Check] = []
    for bound, word, bad in (
        (spec.minimum, "at least", lambda b: value < F.lit(b)),
        (spec.maximum, "at most", lambda b: value > F.lit(b)),
    ):
        if bound is not None:
            message = F.concat(
                F.lit(f"field '{name}' must be {word} {bound:g}, got "), _shown(name)
            )
            checks.append(
                (value.isNotNull() & bad(bound), problem(QuarantineReason.OUT_OF_RANGE, message))
            )
    return checks


def _field_checks(name: str, spec: FieldSpec, kind: Column, value: Column) -> list[Check]:
    """The field's checks in reporting order, over its JSON type name (`kind`) and typed value."""
    present = kind.isNotNull() & (kind != "VOID")
    checks = [_required_check(name, present)] if spec.required else []
    if spec.type == "timestamp":
        return checks + _timestamp_checks(name, spec, present, value)
    checks += _type_checks(name, spec, present, kind, value)
    if spec.allowed is not None:
        checks.append(_allowed_check(name, spec.allowed, value))
    if spec.pattern is not None:
        checks.append(_pattern_check(name, spec.pattern, value))
    return checks + _range_checks(name, spec, value)


def _text_schema(schema: EventSchema) -> str:
    fields = ", ".join(f"`{name.replace('`', '``')}`: STRING" for name in schema.fields)
    return f"STRUCT<{fields}>"


def _unknown_keys(schema: EventSchema, text: Column) -> Column:
    """The top-level keys of the (object) value that the catalog does not declare; empty under
    `unknown_fields: drop`, where nothing reads them."""
    from pyspark.sql import functions as F

    if schema.unknown_fields == "drop":
        return F.array().cast("array<string>")
    known = F.array(*(F.lit(name) for name in schema.fields))
    return F.coalesce(
        F.array_except(F.json_object_keys(text), known), F.array().cast("array<string>")
    )


def unknown_json(schema: EventSchema, parsed: Column, present: Column) -> Column:
    """The unknown fields of the `parsed` VARIANT object as one JSON object (their values
    exactly as sent) where `present` says there are some, else null (the map is built only
    then)."""
    from pyspark.sql import functions as F

    everything = F.variant_get(parsed, "$", "map<string, variant>")
    known = F.array(*(F.lit(name) for name in schema.fields))
    kept = F.map_filter(everything, lambda key, _: ~F.array_contains(known, key))
    return F.when(present, F.to_json(kept))


def with_event_time(schema: EventSchema) -> Callable[[DataFrame], DataFrame]:
    """Adds EVENT_TIME (the schema's event-time field) and its UTC date EVENT_DATE."""
    from pyspark.sql import functions as F

    def add(frame: DataFrame) -> DataFrame:
        timed = frame.withColumn(EVENT_TIME, F.col(schema.event_time))
        return timed.withColumn(EVENT_DATE, F.to_date(F.col(EVENT_TIME)))

    return add


def assess(frame: DataFrame, schema: EventSchema, *, fast: bool = True) -> DataFrame:
    """Add PARSED, one column per schema field (typed), UNKNOWN (under `unknown_fields:
    keep`), EVENT_TIME, EVENT_DATE and PROBLEMS.

    frame needs `value` (binary) and `kafka_timestamp`. Pure: no I/O. Each field's JSON type
    and typed value are extracted once into helper columns that every check reads. `fast`
    False is the reference: every value cast from the VARIANT, every check built for every
    record (slower; the same answers, which the differential test holds it to).

    The checks' columns are built once per schema and kept (`_Assessment`): they name columns,
    not a frame, and building them from Python took a second or more per batch.
    """
    functions.whole_json(frame.sparkSession)  # registered on the session of this frame
    key = (schema.model_dump_json(), fast)
    assessment = _ASSESSMENTS.get(key)
    if assessment is None:
        assessment = _ASSESSMENTS[key] = _Assessment.of(schema, fast)
    return assessment.apply(frame).transform(with_event_time(schema))


@dataclass(frozen=True)
class _Assessment:
    """The columns `assess` adds, in its projections' order (see `of`)."""

    utf8: Column
    parsed: Column
    texts: Column | None
    record_and_kinds: list[Column]
    values: list[Column]
    typed: list[Column]
    problems: Column

    @classmethod
    def of(cls, schema: EventSchema, fast: bool) -> _Assessment:
        from pyspark.sql import functions as F

        utf8, text = F.col(UTF8), F.col("value").cast("string")
        # try_parse_json stops at the end of the first value: `{...} trailing` is not JSON
        whole = F.call_function(functions.WHOLE_JSON, text)
        fields = list(schema.fields.items())
        kinds = [f"_kind_{i}" for i in range(len(fields))]
        values = [f"_value_{i}" for i in range(len(fields))]
        record = F.col(RECORD)
        checks = [
            check
            for (name, spec), k, v in zip(fields, kinds, values, strict=True)
            for check in _field_checks(name, spec, F.col(k), F.col(v))
        ]
        unknown = _unknown_keys(schema, text)
        if schema.unknown_fields == "quarantine":
            listed = F.concat(F.lit("fields not in the catalog: "), F.array_join(unknown, ", "))
            checks.append((F.size(unknown) > 0, problem(QuarantineReason.UNKNOWN_FIELD, listed)))
        problems = F.when(record.isNotNull(), F.array(record))
        if fast:
            failed = F.lit(False)
            for condition, _ in checks:
                failed = failed | F.coalesce(condition, F.lit(False))
            # concat of one-element arrays, not filter(): a lambda would keep Spark from
            # compiling the projection into the stage's generated code.
            none = F.expr(f"CAST(array() AS {PROBLEM_TYPE})")
            found = F.concat(*(F.when(c, F.array(p)).otherwise(none) for c, p in checks))
            problems = problems.when(failed, found).otherwise(none)
        else:
            found = F.filter(F.array(*(F.when(c, p) for c, p in checks)), lambda p: p.isNotNull())
            problems = problems.otherwise(found)
        typed = [
            F.when(record.isNull(), F.col(v)).alias(name)
            for (name, _), v in zip(fields, values, strict=True)
        ]
        if schema.unknown_fields == "keep":
            kept = unknown_json(schema, F.col(PARSED), F.size(unknown) > 0)
            typed.append(F.when(record.isNull(), kept).alias(UNKNOWN))
        return cls(
            utf8=F.expr("is_valid_utf8(value)"),
            parsed=F.when(utf8 & whole, F.expr("try_parse_json(cast(value as string))")),
            texts=F.when(utf8, F.from_json(text, _text_schema(schema))) if fast else None,
            record_and_kinds=[
                _record_problem(schema, fast).alias(RECORD),
                *(
                    _field_kind(name, spec, fast).alias(k)
                    for (name, spec), k in zip(fields, kinds, strict=True)
                ),
            ],
            values=[
                typed_value(name, spec, F.col(k), fast).alias(v)
                for (name, spec), k, v in zip(fields, kinds, values, strict=True)
            ],
            typed=typed,
            problems=problems.alias(PROBLEMS),
        )

    def apply(self, frame: DataFrame) -> DataFrame:
        # Each step is its own projection, and Spark keeps a projection apart when merging it
        # would evaluate a costly expression twice: the UTF-8 check, the two parses and the
        # record's problem are each computed once per record, however many columns read them.
        parsed = frame.withColumn(UTF8, self.utf8).withColumn(PARSED, self.parsed)
        if self.texts is not None:
            parsed = parsed.withColumn(TEXTS, self.texts)
        extracted = parsed.select("*", *self.record_and_kinds).select("*", *self.values)
        return extracted.select(*frame.columns, PARSED, *self.typed, self.problems)


_ASSESSMENTS: dict[tuple[str, bool], _Assessment] = {}
"""`assess`'s columns by event schema (its JSON) and path."""
