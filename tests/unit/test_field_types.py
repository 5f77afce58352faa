"""The catalog's field types: canonical names, aliases, Spark types and Delta's widenings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conveyor.catalog.types import from_spark, parse_type, spark_type, widening
from tests.unit.test_catalog import clicks, problems_after


@pytest.mark.parametrize(
    ("written", "canonical", "spark"),
    [
        ("string", "string", "string"),
        ("int", "int", "int"),
        ("long", "long", "bigint"),
        ("integer", "long", "bigint"),
        ("float", "float", "float"),
        ("double", "double", "double"),
        ("number", "double", "double"),
        ("decimal(12,2)", "decimal(12,2)", "decimal(12,2)"),
        ("Decimal( 10 , 0 )", "decimal(10,0)", "decimal(10,0)"),
        ("date", "date", "date"),
        ("timestamp", "timestamp", "timestamp"),
        ("boolean", "boolean", "boolean"),
        ("bytes", "bytes", "binary"),
    ],
)
def test_types_and_aliases(written: str, canonical: str, spark: str) -> None:
    assert parse_type(written) == canonical
    assert spark_type(canonical) == spark
    assert from_spark(spark) == canonical


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("text", "must be one of string, int, long"),
        ("decimal(39,2)", "decimal(p,s) needs 1 <= p <= 38 and 0 <= s <= p, got 'decimal(39,2)'"),
        ("decimal(4,5)", "0 <= s <= p"),
        ("decimal(10)", "must be one of"),
    ],
)
def test_unknown_types_are_refused(written: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_type(written)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("int", "long"),
        ("int", "double"),
        ("float", "double"),
        ("int", "decimal(10,0)"),
        ("int", "decimal(12,2)"),
        ("long", "decimal(20,0)"),
        ("decimal(10,2)", "decimal(12,2)"),
        ("decimal(10,1)", "decimal(12,3)"),
    ],
)
def test_widenings_delta_makes_in_place(old: str, new: str) -> None:
    assert widening(old, new) is None


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("long", "int", "can lose digits"),
        ("long", "double", "can lose digits"),
        ("double", "float", "can lose digits"),
        ("decimal(12,2)", "decimal(10,2)", "precision grows at least as much as its scale"),
        ("decimal(10,1)", "decimal(11,3)", "precision grows at least as much as its scale"),
        ("int", "decimal(11,2)", "at least 10 digits before the point, e.g. decimal(12,2)"),
        ("date", "timestamp", "timestamp without time zone"),
        ("string", "long", "a string column cannot become a long in place"),
        ("long", "string", "a long column cannot become a string in place"),
        ("boolean", "string", "cannot become"),
    ],
)
def test_changes_delta_cannot_make(old: str, new: str, why: str) -> None:
    reason = widening(old, new)
    assert reason is not None and why in reason


def test_catalog_refuses_an_unknown_type_with_its_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    def change(data: dict[str, Any]) -> None:
        clicks(data)["schema"]["fields"]["revenue"]["type"] = "money"
        clicks(data)["schema"]["fields"]["url"]["type"] = "decimal(40,2)"

    problems = problems_after(change, tmp_path)
    assert problems == [
        "conveyor.yaml: streams.clicks.schema.fields.url.type: decimal(p,s) needs "
        "1 <= p <= 38 and 0 <= s <= p, got 'decimal(40,2)'",
        "conveyor.yaml: streams.clicks.schema.fields.revenue.type: must be one of string, int, "
        "long, float, double, decimal(p,s), date, timestamp, boolean or bytes (integer and "
        "number are aliases of long and double), got 'money'",
    ]


def test_range_applies_to_every_numeric_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    def change(data: dict[str, Any]) -> None:
        clicks(data)["schema"]["fields"]["revenue"]["type"] = "decimal(12,2)"
        clicks(data)["schema"]["fields"]["url"]["minimum"] = 1

    assert problems_after(change, tmp_path) == [
        "conveyor.yaml: streams.clicks.schema.fields.url.minimum: applies only to numeric "
        "(int, long, float, double, decimal) fields, not string",
    ]


def test_unknown_fields_policy_defaults_to_keep_and_names_the_choices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.catalog import load_catalog
    from tests.unit.test_catalog import SHIPPED

    assert load_catalog(SHIPPED).stream("clicks").event_schema.unknown_fields == "keep"
    monkeypatch.chdir(tmp_path)

    def change(data: dict[str, Any]) -> None:
        clicks(data)["schema"]["unknown_fields"] = "ignore"

    assert problems_after(change, tmp_path) == [
        "conveyor.yaml: streams.clicks.schema.unknown_fields: must be one of 'keep', 'drop' or "
        "'quarantine', got 'ignore'",
    ]
