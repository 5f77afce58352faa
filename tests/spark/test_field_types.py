"""Every catalog type, parsed and checked as the ingest does: the typed value silver gets, or
the reason a record goes to quarantine; the fast path and the reference agree on each."""

from __future__ import annotations

import base64
import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from conveyor.catalog import EventSchema
from conveyor.ingest import quality
from conveyor.ingest.decode import Path
from tests.spark.test_assess_paths import assessed_rows

SCHEMA = EventSchema.model_validate(
    {
        "event_time": "ts",
        "late_tolerance": "1h",
        "fields": {
            "ts": {"type": "timestamp", "required": True},
            "small": {"type": "int"},
            "big": {"type": "long"},
            "ratio": {"type": "float"},
            "score": {"type": "double"},
            "amount": {"type": "decimal(8,2)", "minimum": 0},
            "day": {"type": "date"},
            "blob": {"type": "bytes"},
            "flag": {"type": "boolean"},
        },
    }
)
TS = "2026-11-30T12:00:00Z"
_MISSING = object()


def _event(**fields: Any) -> bytes:
    return json.dumps({"ts": TS, **fields}).encode()


# (record, field, typed value silver gets, reason code of the quarantine or None)
CASES: list[tuple[bytes, str, Any, str | None]] = [
    (_event(small=7), "small", 7, None),
    (_event(small=-2147483648), "small", -2147483648, None),
    (_event(small=3000000000), "small", None, "out_of_range"),
    (_event(small=1.5), "small", None, "wrong_type"),
    (_event(small="7"), "small", None, "wrong_type"),
    (_event(big=9007199254740993), "big", 9007199254740993, None),
    (_event(ratio=0.5), "ratio", 0.5, None),
    (_event(score=2), "score", 2.0, None),
    (_event(amount=12.34), "amount", Decimal("12.34"), None),
    (_event(amount="12.30"), "amount", Decimal("12.30"), None),
    (_event(amount=5), "amount", Decimal("5.00"), None),
    (_event(amount=12.345), "amount", None, "out_of_range"),
    (_event(amount="12.340"), "amount", Decimal("12.34"), None),
    (_event(amount=1234567.5), "amount", None, "out_of_range"),
    (_event(amount=-1), "amount", None, "out_of_range"),
    (_event(amount="twelve"), "amount", None, "wrong_type"),
    (_event(amount=True), "amount", None, "wrong_type"),
    (_event(day="2026-02-28"), "day", date(2026, 2, 28), None),
    (_event(day="2026-02-30"), "day", None, "wrong_type"),
    (_event(day="2026-02-28T00:00:00Z"), "day", None, "wrong_type"),
    (_event(day=20260228), "day", None, "wrong_type"),
    (_event(blob=base64.b64encode(b"\x00\xffhi").decode()), "blob", b"\x00\xffhi", None),
    (_event(blob="not base64!"), "blob", None, "wrong_type"),
    (_event(blob=12), "blob", None, "wrong_type"),
    (_event(flag=False), "flag", False, None),
    (_event(flag="false"), "flag", None, "wrong_type"),
    (_event(), "amount", None, None),
    # where a decoder could read differently from the reference
    (_event(small=2147483648), "small", None, "out_of_range"),
    (_event(big=-0), "big", 0, None),
    (_event(ratio=0.1), "ratio", 0.10000000149011612, None),
    (_event(ratio=16777217), "ratio", 16777216.0, None),
    (_event(ratio=1e39), "ratio", None, "out_of_range"),
    (_event(score=-0.0), "score", 0.0, None),
    (_event(score=0.1 + 0.2), "score", 0.30000000000000004, None),
    (_event(amount="-0.00"), "amount", Decimal("0.00"), None),
    (_event(amount=0.005), "amount", None, "out_of_range"),
    (_event(amount=123456.78), "amount", Decimal("123456.78"), None),
    (_event(amount=1234567.00), "amount", None, "out_of_range"),
    (_event(day="0001-01-01"), "day", date(1, 1, 1), None),
    (_event(day="2024-02-29"), "day", date(2024, 2, 29), None),
    (_event(blob="QQ=="), "blob", b"A", None),
    (_event(blob="QR=="), "blob", b"A", None),  # Spark reads base64 leniently
    (_event(blob=""), "blob", b"", None),
    (_event(blob="QQ"), "blob", b"A", None),
    (_event(flag=True), "flag", True, None),
]


def _assessed(spark: Any, *, path: Path) -> list[dict[str, Any]]:
    return assessed_rows(spark, [record for record, *_ in CASES], SCHEMA, path=path)


@pytest.fixture(scope="module")
def assessed(spark: Any) -> list[dict[str, Any]]:
    return _assessed(spark, path="certified")


def test_every_type_lands_typed_or_quarantined_with_its_reason(
    assessed: list[dict[str, Any]],
) -> None:
    for row, (record, field, value, reason) in zip(assessed, CASES, strict=True):
        shown = f"{record.decode()} -> {row['reason']}"
        assert row["reason_code"] == reason, shown
        if reason is None:  # a quarantined record keeps its raw value only
            assert row[field] == value, shown
            assert row[field] is None or type(row[field]) is type(value), shown


def test_messages_name_the_field_and_what_it_must_be(assessed: list[dict[str, Any]]) -> None:
    by_record = {record: row["reason"] for row, (record, *_) in zip(assessed, CASES, strict=True)}
    assert by_record[_event(small=3000000000)] == "field 'small' does not fit an int: 3000000000"
    assert (
        by_record[_event(amount=12.345)] == "field 'amount' has more than 2 decimal places: 12.345"
    )
    assert by_record[_event(amount="twelve")] == (
        "field 'amount' must be a decimal(8,2) (a number, or a string holding one), got \"twelve\""
    )
    assert by_record[_event(day="2026-02-30")] == (
        "field 'day' must be a date (YYYY-MM-DD), got \"2026-02-30\""
    )
    assert by_record[_event(blob="not base64!")] == (
        "field 'blob' must be base64-encoded bytes, got \"not base64!\""
    )


@pytest.mark.parametrize("path", ["fast", "reference"])
def test_every_path_agrees_on_every_type(
    spark: Any, assessed: list[dict[str, Any]], path: Path
) -> None:
    assert assessed == _assessed(spark, path=path)


UNKNOWN_RECORDS = [
    _event(flag=True),
    b'{"ts": "2026-11-30T12:00:00Z", "flag": true, "s": "x\\u00e9", "extra": [1, null],'
    b' "n": 1.50, "p": 0.12345678901234567890123}',
    b'{"ts": "2026-11-30T12:00:00Z", "small": 1}',
]


def _with_policy(spark: Any, policy: str, path: Path) -> list[dict[str, Any]]:
    schema = SCHEMA.model_copy(update={"unknown_fields": policy})
    return assessed_rows(spark, list(UNKNOWN_RECORDS), schema, path=path)


@pytest.mark.parametrize("path", ["certified", "fast", "reference"])
def test_unknown_fields_are_kept_exactly_dropped_or_quarantined(spark: Any, path: Path) -> None:
    kept = _with_policy(spark, "keep", path)
    assert [r[quality.UNKNOWN] for r in kept] == [
        None,
        # every digit sent (no double in between; 1.50 reads 1.5), keys sorted
        '{"extra":[1,null],"n":1.5,"p":0.12345678901234567890123,"s":"xé"}',
        None,
    ]
    assert all(r[quality.PROBLEMS] == [] for r in kept)

    dropped = _with_policy(spark, "drop", path)
    assert quality.UNKNOWN not in dropped[0]
    assert all(r[quality.PROBLEMS] == [] for r in dropped)

    quarantined = _with_policy(spark, "quarantine", path)
    assert [[p["code"] for p in r[quality.PROBLEMS]] for r in quarantined] == [
        [],
        ["unknown_field"],
        [],
    ]
    assert quarantined[1][quality.PROBLEMS][0]["message"] == (
        "fields not in the catalog: s, extra, n, p"  # in the order sent
    )
