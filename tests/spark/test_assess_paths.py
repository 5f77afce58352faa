"""Every record of the corpus goes where it belongs, with its reason, by each of the three
paths: the reference (every value cast from the VARIANT, every check built), the fast parse
(`from_json` texts for values, problems built only for a record with one) and the certified one
(the JVM certifier settles clean events, the rest take the fast parse). The paths also agree on
every reason message and typed value.

The corpus aims at where they could part: numbers, booleans and objects in string fields,
strings that look like numbers, duplicate keys, epoch seconds vs milliseconds, ISO timestamps
with and without an offset, unicode escapes and surrogates, very large and very precise numbers,
zeros and infinities, nested objects, nulls vs missing fields, keys that differ in case,
whitespace, a BOM, trailing text, the size limit, and one record of every reason code. Add a case
here with every new reason code or field type. `test_certifier.py` adds generated events and
their byte mutations.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor.catalog import EventSchema, load_catalog
from conveyor.ingest import decode, quality
from conveyor.ingest.decode import Path
from conveyor.ingest.quality import QuarantineReason
from tests.conftest import REPO

BASE: dict[str, Any] = {
    "event_id": "3f2a9c1e-0000-4000-8000-000000000001",
    "user_id": "u00042",
    "session_id": "s-1",
    "event_type": "purchase",
    "url": "/checkout",
    "ts": "2026-11-30T12:00:00.123+00:00",
    "referrer": None,
    "country": "DE",
    "device": "mobile",
    "revenue": 19.99,
}


def _with(**changes: Any) -> bytes:
    event = {**BASE, **changes}
    return json.dumps({k: v for k, v in event.items() if v is not _MISSING}).encode()


_MISSING = object()


def _raw(text: str) -> bytes:
    return text.encode()


def _click(revenue: str) -> bytes:
    """A clean click whose revenue is written as the JSON text `revenue`."""
    return _raw(
        '{"event_id":"a","user_id":"u","event_type":"click","url":"/","ts":"2026-11-30T12:00:00Z",'
        f'"revenue":{revenue}}}'
    )


def _nested(depth: int) -> bytes:
    return _with(extra=_MISSING)[:-1] + b', "extra": ' + b"[" * depth + b"]" * depth + b"}"


def _sized(total: int) -> bytes:
    """A clean event exactly `total` bytes long (padded in an unknown field)."""
    bare = _with(padding="")
    return _with(padding="x" * (total - len(bare)))


MAX_EVENT_BYTES = 64 * 1024  # the clicks stream's max_event_bytes (conveyor.yaml)
CLEAN = None

# Every record with the reason code the reference gives it (None: it lands in silver).
CORPUS_CASES: list[tuple[bytes | None, str | None]] = [
    (_with(), CLEAN),
    # numbers, booleans, objects and arrays in string fields; strings that look like them
    (_with(user_id=12345), "wrong_type"),
    (_with(user_id=-0), "wrong_type"),
    (_with(user_id=1.50), "wrong_type"),
    (_with(user_id=True), "wrong_type"),
    (_with(user_id={"nested": {"deep": [1, 2]}}), "wrong_type"),
    (_with(user_id=[1, "two"]), "wrong_type"),
    (_with(user_id="12345"), CLEAN),
    (_with(user_id="true"), CLEAN),
    (_with(user_id="{not json}"), CLEAN),
    (_with(event_id="0123"), CLEAN),
    (_with(event_id="-1e5"), CLEAN),
    (_with(event_id="Infinity"), CLEAN),
    (_with(url="NaN"), CLEAN),
    (_with(country=12), "wrong_type"),
    (_with(country="de"), "pattern_mismatch"),
    (_with(event_type=1), "wrong_type"),
    (_with(event_type="no-such-value"), "not_allowed"),
    (_with(device=None), CLEAN),
    # the number field: integers, decimals, exponents, huge and tiny, strings, negative, zeros
    (_with(revenue=20), CLEAN),
    (_with(revenue=0), CLEAN),
    (_with(revenue=-0.01), "out_of_range"),
    (_with(revenue="19.99"), "wrong_type"),
    (_with(revenue=True), "wrong_type"),
    (_click("1.50"), CLEAN),
    (_click("1e2"), CLEAN),
    (_click("1E-7"), CLEAN),
    (_click("123456789012345678901234567890"), CLEAN),
    (_click("0.1234567890123456789012345678901234567890123"), CLEAN),
    (_click("1" + "0" * 400), "out_of_range"),
    (_click("9007199254740993"), CLEAN),
    (_click("-0.0"), CLEAN),
    (_click("-0"), CLEAN),
    (_click("-0e0"), CLEAN),
    (_click("-1e-400"), CLEAN),
    (_click("1e400"), "out_of_range"),
    (_click("-1e400"), "out_of_range"),
    (_click("007"), "malformed_json"),
    (_click("-01.5"), "malformed_json"),
    (_click("NaN"), "malformed_json"),
    (_click("Infinity"), "malformed_json"),
    (_click("-Infinity"), "malformed_json"),
    # timestamps: offsets, no offset, epoch millis vs seconds, numbers as strings, out of range
    (_with(ts="2026-11-30T12:00:00Z"), CLEAN),
    (_with(ts="2026-11-30 12:00:00+01:00"), CLEAN),
    (_with(ts="2026-11-30T12:00:00.123456789-0530"), CLEAN),
    (_with(ts="2026-11-30T12:00Z"), "bad_timestamp"),
    (_with(ts="2026-11-30T12:00:00z"), "bad_timestamp"),
    (_with(ts="2026-11-30T12:00:00"), "bad_timestamp"),
    (_with(ts="2026-11-30"), "bad_timestamp"),
    (_with(ts="2026-02-30T12:00:00Z"), "bad_timestamp"),
    (_with(ts=1764504000123), CLEAN),
    (_with(ts=1764504000), "timestamp_out_of_range"),
    (_with(ts=1764504000.5), "bad_timestamp"),
    (_with(ts="1764504000123"), "bad_timestamp"),
    (_with(ts=-1), "timestamp_out_of_range"),
    (_with(ts=99999999999999999999), "bad_timestamp"),
    (_with(ts=2**63 - 1), "bad_timestamp"),  # beyond what a timestamp holds
    (_with(ts=(2**63 - 1) // 1000 + 1), "bad_timestamp"),
    (_with(ts=253402300799999), "timestamp_out_of_range"),  # 9999-12-31
    (_with(ts="1970-01-02T00:00:00+00:00"), "timestamp_out_of_range"),
    (_with(ts="2999-01-01T00:00:00+00:00"), "timestamp_out_of_range"),
    (_with(ts=None), "missing_field"),
    (_with(ts=_MISSING), "missing_field"),
    (_with(ts={"when": 1}), "bad_timestamp"),
    # nulls vs missing, extra and nested fields, keys that differ only in case
    (_with(user_id=None), "missing_field"),
    (_with(user_id=_MISSING), "missing_field"),
    (_with(session_id=None), CLEAN),
    (_with(session_id=_MISSING), CLEAN),
    (_with(extra={"a": [1, {"b": None}]}), CLEAN),
    (_with(Event_ID="x", EVENT_TYPE="bogus"), CLEAN),
    (_with(user_id=_MISSING, USER_ID="u1"), "missing_field"),
    # unicode: escapes, surrogate pairs, a lone surrogate, non-ASCII text
    (
        _raw(
            '{"event_id":"\\u00e9\\ud83d\\ude00","user_id":"u\\u0000x","event_type":"click",'
            '"url":"/caf\\u00e9","ts":"2026-11-30T12:00:00Z"}'
        ),
        CLEAN,
    ),
    (
        _raw(
            '{"event_id":"\\ud800","user_id":"u","event_type":"click","url":"/","ts":"2026-11-30T12:00:00Z"}'
        ),
        "malformed_json",
    ),
    (_with(url="/straße/東京"), CLEAN),
    (json.dumps({**BASE, "url": "/straße/東京"}, ensure_ascii=True).encode(), CLEAN),
    (_with(url='/a\\b"c/\t'), CLEAN),
    # duplicate keys, whitespace, a BOM, trailing text, other JSON oddities
    (
        _raw(
            '{"event_id":"a","event_id":"b","user_id":"u","event_type":"click","url":"/","ts":"2026-11-30T12:00:00Z"}'
        ),
        "malformed_json",
    ),
    (
        _raw(
            '{"event_id" : "a", "user_id" : "u" , "event_type" :"click","url":"/",'
            '"ts":"2026-11-30T12:00:00Z", "event_id" : "b"}'
        ),
        "malformed_json",
    ),
    (_with(extra=_MISSING)[:-1] + b', "extra": {"a": 1, "a": 2}}', "malformed_json"),
    (
        _raw(
            ' \n\t{ "event_id" : "a" , "user_id" : "u" , "event_type" : "click" , "url" : "/" ,'
            ' "ts" : "2026-11-30T12:00:00Z" } \n'
        ),
        CLEAN,
    ),
    (b"\xef\xbb\xbf" + _with(), "malformed_json"),
    (_with() + b" trailing", "malformed_json"),
    (_with() + b"{}", "malformed_json"),
    (_with() + b"\x00", "malformed_json"),
    (_with() + b"  \n", CLEAN),
    (_raw("{'event_id': 'a'}"), "malformed_json"),
    (_raw('{"event_id": NaN}'), "malformed_json"),
    (_raw("{}"), "missing_field"),
    (_raw("[]"), "not_an_object"),
    (_raw('"just a string"'), "not_an_object"),
    (_raw("42"), "not_an_object"),
    (_raw("null"), "not_an_object"),
    (_raw("true"), "not_an_object"),
    (_nested(100), CLEAN),
    (_nested(2000), "malformed_json"),
    # the size limit, exactly at it and one byte over
    (_sized(MAX_EVENT_BYTES), CLEAN),
    (_sized(MAX_EVENT_BYTES + 1), "oversized"),
    # every record-level reason code
    (None, "empty_value"),
    (b"", "empty_value"),
    (b'{"event_id": "\xff\xfe"}', "invalid_utf8"),
    (b'{"event_id": "x", "broken": ', "malformed_json"),
    (_with(padding="x" * 70_000), "oversized"),
]
CORPUS: list[bytes | None] = [record for record, _ in CORPUS_CASES]
PATHS: tuple[Path, ...] = ("reference", "fast", "certified")


@pytest.fixture(scope="module")
def schema() -> EventSchema:
    return load_catalog(REPO / "conveyor.yaml").stream("clicks").event_schema


def assessed_rows(
    spark: Any, records: list[bytes | None], schema: EventSchema, *, path: Path = "certified"
) -> list[dict[str, Any]]:
    """`assess` over `records` (Kafka time 2026-11-30 13:00 UTC) by one path, in order, as
    dicts with the first problem's `reason_code` and every problem's `reason`."""
    from pyspark.sql import functions as F

    kafka_time = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    rows = [(i, value, kafka_time) for i, value in enumerate(records)]
    frame = spark.createDataFrame(rows, "i INT, value BINARY, kafka_timestamp TIMESTAMP")
    assessed = decode.assess(frame, schema, path=path)
    out = assessed.select(
        "*",
        F.get(F.col(quality.PROBLEMS), 0)["code"].alias("reason_code"),
        F.array_join(F.transform(quality.PROBLEMS, lambda p: p["message"]), "; ").alias("reason"),
    )
    return [r.asDict(recursive=True) for r in out.orderBy("i").collect()]


@pytest.fixture(scope="module")
def by_path(spark: Any, schema: EventSchema) -> dict[str, list[dict[str, Any]]]:
    return {path: assessed_rows(spark, CORPUS, schema, path=path) for path in PATHS}


def _shown(i: int) -> str:
    value = CORPUS[i]
    return repr(value[:120] if value is not None else None)


@pytest.mark.parametrize("path", PATHS)
def test_every_record_goes_where_it_belongs_with_its_reason(
    by_path: dict[str, list[dict[str, Any]]], path: str
) -> None:
    rows = by_path[path]
    assert len(rows) == len(CORPUS_CASES)
    for row, (_, expected) in zip(rows, CORPUS_CASES, strict=True):
        assert row["reason_code"] == expected, f"{path}: record {row['i']} {_shown(row['i'])}"


def test_the_paths_decide_every_record_the_same(by_path: dict[str, list[dict[str, Any]]]) -> None:
    """Destination, reason, message and every typed value."""
    reference = by_path["reference"]
    for path in ("fast", "certified"):
        for mine, theirs in zip(by_path[path], reference, strict=True):
            assert mine == theirs, f"{path} parts from the reference on {_shown(mine['i'])}"


def test_zero_and_case_are_read_as_the_catalog_means(
    by_path: dict[str, list[dict[str, Any]]],
) -> None:
    rows = {CORPUS[r["i"]]: r for r in by_path["certified"]}
    for text in ("-0.0", "-0", "-0e0", "-1e-400"):
        revenue = rows[_click(text)]["revenue"]
        assert revenue == 0.0 and str(revenue) == "0.0", text  # never -0.0
    cased = rows[_with(Event_ID="x", EVENT_TYPE="bogus")]
    assert cased["event_type"] == BASE["event_type"]
    assert json.loads(cased[quality.UNKNOWN]) == {"EVENT_TYPE": "bogus", "Event_ID": "x"}


def test_the_certifier_settles_clean_records_only(spark: Any, schema: EventSchema) -> None:
    """Which corpus records the JVM certifier settles itself: clean ones in the usual shapes,
    never one with a problem (those take the reference's path)."""
    from pyspark.sql import functions as F

    kafka_time = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)
    rows = [(i, value, kafka_time) for i, value in enumerate(CORPUS)]
    frame = spark.createDataFrame(rows, "i INT, value BINARY, kafka_timestamp TIMESTAMP")
    decoded = decode.decode(frame, schema).where(F.col(decode.CERTIFIED).isNotNull())
    settled = {r["i"] for r in decoded.select("i").collect()}
    problems = {i for i, (_, expected) in enumerate(CORPUS_CASES) if expected is not CLEAN}
    assert not settled & problems, [_shown(i) for i in settled & problems]
    usual = [
        _with(),
        _with(revenue=20),
        _with(ts=1764504000123),
        _with(extra={"a": [1, {"b": None}]}),
    ]
    usual += [_with(url="/straße/東京"), _with() + b"  \n", _sized(MAX_EVENT_BYTES)]
    assert {CORPUS.index(record) for record in usual} <= settled


def test_the_corpus_reaches_every_reason_but_lateness() -> None:
    """A corpus that never exercised a check could not show the paths part on it."""
    codes = {expected for _, expected in CORPUS_CASES}
    # lateness is judged per batch; unknown fields only under `unknown_fields: quarantine`
    # (tests/spark/test_field_types.py), and the shipped catalog keeps them; the envelope
    # reasons belong to cdc streams (tests/spark/test_cdc_batches.py)
    unreached = {
        QuarantineReason.TOO_LATE.value,
        QuarantineReason.UNKNOWN_FIELD.value,
        QuarantineReason.MALFORMED_ENVELOPE.value,
        QuarantineReason.UNKNOWN_OP.value,
        QuarantineReason.MISSING_KEY.value,
    }
    expected = {reason.value for reason in QuarantineReason} - unreached
    assert expected <= codes
    assert CLEAN in codes
