"""The JVM certifier against the reference, over many generated events and their mutations.

Soundness: every record the certifier settles is clean in the reference (`quality.assess` with
every value read from the VARIANT), with every value equal bit for bit. Coverage: almost every
event the reference lands in silver is settled by the certifier, whether it was written by
Conveyor's producer or by an independent serializer (another key order, blanks, escapes,
unknown fields), so a slow-path cliff shows here rather than in a benchmark.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from conveyor.catalog import EventSchema, load_catalog, types
from conveyor.ingest import decode, quality
from conveyor.produce import click_events, encode, log_events
from tests.conftest import REPO

START = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
KAFKA_TIME = START + timedelta(days=3)  # after every generated event
COVERAGE = 0.999


def _catalog_schema(stream: str) -> EventSchema:
    return load_catalog(REPO / "conveyor.yaml").stream(stream).event_schema


# ------------------------------------------------------------------ an independent serializer


def _escaped(text: str, rng: random.Random) -> str:
    """A JSON string literal escaped unlike Python's json: non-ASCII and, at random, some ASCII
    as \\uXXXX (astral characters as surrogate pairs), '/' as '\\/'."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif char == "/" and rng.random() < 0.5:
            out.append("\\/")
        elif code < 0x20 or code > 0x7E or rng.random() < 0.02:
            if code > 0xFFFF:
                high, low = divmod(code - 0x10000, 0x400)
                out.append(f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04X}")
            else:
                out.append(f"\\u{code:04x}" if rng.random() < 0.5 else f"\\u{code:04X}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _blank(rng: random.Random) -> str:
    return rng.choice(("", "", "", " ", "  ", "\n", "\t", " \r\n "))


def _literal(value: Any, rng: random.Random) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _escaped(value, rng)
    if isinstance(value, list):
        return "[" + ",".join(_blank(rng) + _literal(v, rng) for v in value) + "]"
    inner = ",".join(
        f"{_blank(rng)}{_escaped(k, rng)}{_blank(rng)}:{_blank(rng)}{_literal(v, rng)}"
        for k, v in value.items()
    )
    return "{" + inner + _blank(rng) + "}"


UNKNOWN_SAMPLES: tuple[Any, ...] = (
    {"build": "2026.11.3", "beta": True},
    ["a", "b", {"c": None}],
    12345678901234567890,
    0.25,
    "café ☕ 😀",
    {"nested": {"deeper": [1, 2.5, -3, "x"]}},
)


def independent(event: dict[str, Any], rng: random.Random) -> bytes:
    """`event` as another producer might write it: keys shuffled, blanks, escapes, sometimes
    unknown fields and an epoch-millisecond or Z-offset time."""
    fields = dict(event)
    for key in ("ts",):
        if key in fields and rng.random() < 0.3:
            at = datetime.fromisoformat(fields[key])
            fields[key] = (
                int(at.timestamp() * 1000)
                if rng.random() < 0.5
                else at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            )
    if rng.random() < 0.4:
        for _ in range(rng.randint(1, 3)):
            fields[f"x_{rng.randrange(1000)}"] = rng.choice(UNKNOWN_SAMPLES)
    if "url" in fields and rng.random() < 0.1:
        fields["url"] = fields["url"] + "/straße/東京/😀"
    items = list(fields.items())
    rng.shuffle(items)
    body = ",".join(
        f"{_blank(rng)}{_escaped(k, rng)}{_blank(rng)}:{_blank(rng)}{_literal(v, rng)}{_blank(rng)}"
        for k, v in items
    )
    return (_blank(rng) + "{" + body + "}" + _blank(rng)).encode()


# ------------------------------------------------------------------ byte mutations

_INTERESTING = b'"\\{}[],: 09-+.eEntfuZT\x00\x7f\xff\xc3\xa9\xef\xbb\xbf'


def mutate(value: bytes, rng: random.Random) -> bytes:
    """One to three seeded edits: a byte replaced, dropped or inserted, a slice repeated,
    two bytes swapped, or the tail cut."""
    data = bytearray(value)
    for _ in range(rng.randint(1, 3)):
        if not data:
            break
        at = rng.randrange(len(data))
        match rng.randrange(6):
            case 0:
                data[at] = rng.choice(_INTERESTING)
            case 1:
                del data[at]
            case 2:
                data.insert(at, rng.choice(_INTERESTING))
            case 3:
                end = min(len(data), at + rng.randint(1, 12))
                data[end:end] = data[at:end]
            case 4:
                other = rng.randrange(len(data))
                data[at], data[other] = data[other], data[at]
            case _:
                del data[at:]
    return bytes(data)


# ------------------------------------------------------------------ the comparisons


def _producer(events: Iterator[dict[str, Any]]) -> list[bytes]:
    return [v for e in events if (v := encode(e, None).value) is not None]


def _frame(spark: Any, records: list[bytes], kind: str) -> Any:
    rows = [(i, kind, value, KAFKA_TIME) for i, value in enumerate(records)]
    return spark.createDataFrame(
        rows, "i INT, kind STRING, value BINARY, kafka_timestamp TIMESTAMP"
    )


def _canonical(column: Any, spark_type: str) -> Any:
    """A column whose equality is bit-for-bit equality of the values (-0.0 is not 0.0)."""
    from pyspark.sql import functions as F

    if spark_type in ("float", "double") or spark_type.startswith("decimal"):
        return column.cast("string")
    if spark_type == "timestamp":
        return F.unix_micros(column)
    if spark_type == "date":
        return F.unix_date(column)
    return column


def judged(spark: Any, schema: EventSchema, records: dict[str, list[bytes]]) -> Any:
    """Per record: its kind, whether the reference lands it in silver (`clean`), whether the
    certifier settled it (`certified`), and whether every certified value equals the
    reference's (`equal`)."""
    from pyspark.sql import functions as F

    frame = None
    for kind, values in records.items():
        part = _frame(spark, values, kind)
        frame = part if frame is None else frame.unionByName(part)
    assert frame is not None
    decoded = decode.decode(frame, schema)
    reference = quality.assess(decoded, schema, fast=False)
    answer = F.col(decode.CERTIFIED)
    equal = F.lit(True)
    for i, (name, spec) in enumerate(schema.fields.items()):
        kind = types.spark_type(spec.type)
        certified = decode.certified_value(answer[f"f{i}"], kind)
        equal = equal & _canonical(certified, kind).eqNullSafe(_canonical(F.col(name), kind))
    return reference.select(
        "i",
        "kind",
        "value",
        (F.size(quality.PROBLEMS) == 0).alias("clean"),
        answer.isNotNull().alias("certified"),
        equal.alias("equal"),
    )


def _unsound(rows: Any) -> list[Any]:
    from pyspark.sql import functions as F

    wrong = rows.where(F.col("certified") & ~(F.col("clean") & F.col("equal")))
    return [bytes(r["value"])[:200] for r in wrong.limit(5).collect()]


@pytest.fixture(scope="module")
def clicks(spark: Any) -> Any:
    """100,000 click events by Conveyor's producer and by an independent serializer, and
    40,000 byte mutations of them, judged once."""
    rng = random.Random(20261207)
    producer = _producer(click_events(60_000, seed=3, start=START))
    events = list(click_events(40_000, seed=4, start=START))
    other = [independent(e, rng) for e in events]
    mutated = [mutate(v, rng) for v in rng.sample(producer + other, 40_000)]
    rows = judged(
        spark,
        _catalog_schema("clicks"),
        {"producer": producer, "independent": other, "mutated": mutated},
    )
    return rows.cache()


def test_what_the_certifier_settles_is_clean_with_the_reference_values(clicks: Any) -> None:
    assert _unsound(clicks) == []
    # the mutations reach both sides of the line (else this proves little)
    mutated = {
        (r["certified"], r["clean"]): r["count"]
        for r in clicks.where("kind = 'mutated'").groupBy("certified", "clean").count().collect()
    }
    assert mutated.get((True, True), 0) > 1_000
    assert mutated.get((False, False), 0) > 10_000


def _coverage(rows: Any, kind: str) -> tuple[int, int]:
    from pyspark.sql import functions as F

    clean = rows.where((F.col("kind") == kind) & F.col("clean"))
    return clean.where("certified").count(), clean.count()


@pytest.mark.parametrize("kind", ["producer", "independent"])
def test_nearly_every_clean_click_takes_the_fast_path(clicks: Any, kind: str) -> None:
    settled, clean = _coverage(clicks, kind)
    assert clean > 30_000
    assert settled >= COVERAGE * clean, f"{kind}: {clean - settled} of {clean} clean events slow"


def test_log_lines_take_the_fast_path_and_stay_sound(spark: Any) -> None:
    rng = random.Random(11)
    produced = _producer(log_events(10_000, start=START))
    other = [independent(e, rng) for e in log_events(10_000, seed=12, start=START)]
    mutated = [mutate(v, rng) for v in rng.sample(produced + other, 5_000)]
    rows = judged(
        spark,
        _catalog_schema("app_logs"),
        {"producer": produced, "independent": other, "mutated": mutated},
    )
    assert _unsound(rows) == []
    for kind in ("producer", "independent"):
        settled, clean = _coverage(rows, kind)
        assert clean > 9_000 and settled >= COVERAGE * clean, (kind, settled, clean)
