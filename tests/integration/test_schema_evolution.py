"""Schema evolution on the real stack: the catalog grows a field and widens types, `conveyor
schema plan|apply` carry silver along (readable by delta-rs throughout), the ingest applies what
was not applied yet, and refused changes stop `apply` and the ingest with one line each."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conveyor.catalog import Catalog, Layer, ledger_uri, table_uri
from conveyor.delta_rs import open_table, read_rows
from conveyor.ingest.stream import ingest_stream
from conveyor.produce import click_events, encode, send_events
from conveyor.settings import Settings
from tests.catalogs import catalog_variant, provision, stream_named

SUFFIX_FIELDS = {
    "attempts": {"type": "int", "description": "Retries the client needed."},
    "amount": {"type": "decimal(10,2)", "minimum": 0, "description": "Order value, exact."},
}


def _variant(
    folder: Path, suffix: str, fields: dict[str, Any], drop: tuple[str, ...] = ()
) -> Catalog:
    """The shipped catalog under `suffix`, its clicks stream with `fields` added (or replaced)
    and `drop` removed."""

    def edit(data: dict[str, Any]) -> None:
        for name, stream in data["streams"].items():
            if name.startswith("clicks_"):
                declared = stream["schema"]["fields"]
                declared.update(fields)
                for gone in drop:
                    del declared[gone]

    return catalog_variant(folder, suffix=suffix, edit=edit)


def _conveyor(*args: str) -> subprocess.CompletedProcess[str]:
    command = str(Path(sys.executable).parent / "conveyor")
    return subprocess.run(
        [command, *args], capture_output=True, text=True, timeout=600, check=False
    )


def _send(settings: Settings, topic: str, events: list[dict[str, Any]]) -> None:
    send_events(settings, topic, [encode(e, "user_id") for e in events])


def _silver(settings: Settings, catalog: Catalog, name: str) -> Any:
    """Silver through delta-rs (the page's and the sensors' reader): schema and rows."""
    table = open_table(table_uri(settings, catalog.stream(name).table(Layer.SILVER)))
    assert table is not None
    return table


def _schema_rows(settings: Settings, name: str) -> list[dict[str, Any]]:
    rows = read_rows(
        ledger_uri(settings),
        ["kind", "silver_version", "silver_rows", "schema_change"],
        partitions=[("stream", "=", name)],
    )
    return [r for r in rows if r["kind"] == "schema_change"]


@pytest.fixture
def suffix() -> str:
    import uuid

    return uuid.uuid4().hex[:8]


def test_new_field_and_widened_types_are_planned_applied_and_read(
    settings: Settings, spark: Any, tmp_path: Path, suffix: str
) -> None:
    first = _variant(tmp_path / "v1", suffix, SUFFIX_FIELDS)
    provision(settings, first)
    name = stream_named(first, "clicks")
    topic = first.stream(name).topic.name
    old = list(click_events(20, seed=41))
    for event in old:
        event.update(attempts=2, amount="19.99", campaign="autumn")
    _send(settings, topic, old)
    ingest_stream(spark, settings, first, name, available_now=True)
    # a field the catalog does not know yet is kept, not lost
    kept = [r["_unknown"] for r in _silver(settings, first, name).to_pyarrow_table().to_pylist()]
    assert kept == ['{"campaign":"autumn"}'] * 20

    # the producers add `campaign`; the catalog follows and widens two types
    grown = _variant(
        tmp_path / "v2",
        suffix,
        {
            **SUFFIX_FIELDS,
            "attempts": {"type": "long"},
            "amount": {"type": "decimal(12,2)", "minimum": 0},
            "campaign": {"type": "string", "description": "Marketing campaign."},
        },
    )
    catalog_arg = ("--catalog", str(grown.source))
    planned = _conveyor("schema", "plan", name, "--json", *catalog_arg)
    assert planned.returncode == 0, planned.stderr
    changes = {c["field"]: c for c in json.loads(planned.stdout)["changes"]}
    assert {
        f: (c["kind"], c["old_type"], c["new_type"], c["allowed"]) for f, c in changes.items()
    } == {
        "campaign": ("add_field", None, "string", True),
        "attempts": ("widen_type", "int", "long", True),
        "amount": ("widen_type", "decimal(10,2)", "decimal(12,2)", True),
    }
    assert all(c["stream"] == name and c["table"] == f"{name}_silver" for c in changes.values())
    assert "--backfill" in changes["campaign"]["reason"]

    applied = _conveyor("schema", "apply", name, "--backfill", *catalog_arg)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "3 change(s) applied, 0 refused" in applied.stdout
    assert f"backfilled: stream {name!r}, field 'campaign': 20 row(s)" in applied.stdout
    again = _conveyor("schema", "plan", name, "--json", *catalog_arg)
    assert json.loads(again.stdout)["changes"] == []

    table = _silver(settings, grown, name)
    types = {f.name: str(f.type.type) for f in table.schema().fields}
    assert (types["campaign"], types["attempts"], types["amount"]) == (
        "string",
        "long",
        "decimal(12,2)",
    )
    recorded = _schema_rows(settings, name)
    assert sorted(
        (r["schema_change"]["field"], r["schema_change"]["change"], r["schema_change"]["old_type"])
        for r in recorded
    ) == [
        ("amount", "widen_type", "decimal(10,2)"),
        ("attempts", "widen_type", "int"),
        ("campaign", "add_field", None),
        ("campaign", "backfill", None),
    ]
    assert [r["silver_rows"] for r in recorded if r["schema_change"]["change"] == "backfill"] == [
        20
    ]
    assert all(r["silver_version"] is not None for r in recorded)

    new = list(click_events(10, seed=42))
    for event in new:
        event.update(campaign="winter", attempts=5_000_000_000, amount="1234567890.12")
    _send(settings, topic, new)
    summary = ingest_stream(spark, settings, grown, name, available_now=True)
    assert summary.total("silver_rows") == 10 and summary.total("quarantined") == 0

    rows = {r["event_id"]: r for r in _silver(settings, grown, name).to_pyarrow_table().to_pylist()}
    assert len(rows) == 30
    for event in old:  # campaign backfilled from what they kept; the kept copy stays
        row = rows[event["event_id"]]
        assert (row["campaign"], row["attempts"], row["amount"]) == (
            "autumn",
            2,
            Decimal("19.99"),
        )
        assert row["_unknown"] == '{"campaign":"autumn"}'
    for event in new:
        assert rows[event["event_id"]]["_unknown"] is None
    for event in new:
        row = rows[event["event_id"]]
        assert (row["campaign"], row["attempts"], row["amount"]) == (
            "winter",
            5_000_000_000,
            Decimal("1234567890.12"),
        )

    # a field the catalog adds without `apply`: the ingest adds it before its first batch
    coupon = _variant(
        tmp_path / "v3",
        suffix,
        {
            **SUFFIX_FIELDS,
            "attempts": {"type": "long"},
            "amount": {"type": "decimal(12,2)", "minimum": 0},
            "campaign": {"type": "string"},
            "coupon": {"type": "string"},
        },
    )
    latest = list(click_events(5, seed=43))
    for event in latest:
        event.update(coupon="SAVE10")
    _send(settings, topic, latest)
    ingest_stream(spark, settings, coupon, name, available_now=True)
    rows = {
        r["event_id"]: r for r in _silver(settings, coupon, name).to_pyarrow_table().to_pylist()
    }
    assert [rows[e["event_id"]]["coupon"] for e in latest] == ["SAVE10"] * 5
    assert rows[old[0]["event_id"]]["coupon"] is None  # not sent, so nothing kept to fill
    assert ("coupon", "add_field") in {
        (r["schema_change"]["field"], r["schema_change"]["change"])
        for r in _schema_rows(settings, name)
    }

    # the analytics still run on the evolved silver: sessions and the funnel of each day
    from conveyor.analytics.daily import daily_funnel
    from conveyor.analytics.run import CLICK_COLUMNS
    from conveyor.analytics.sessions import sessions_on

    clicks = (
        spark.read.format("delta")
        .load(table_uri(settings, coupon.stream(name).table(Layer.SILVER)))
        .select(*CLICK_COLUMNS)
    )
    days = sorted({r["event_date"] for r in clicks.select("event_date").distinct().collect()})
    gap = timedelta(minutes=30)
    sessions = sum(sessions_on(clicks, day, gap).count() for day in days)
    assert sessions >= 1
    funnel = [daily_funnel(clicks.where(clicks.event_date == day), day).first() for day in days]
    assert sum(f["page_view_users"] for f in funnel if f) >= 1, funnel


def test_refused_changes_stop_apply_and_the_ingest_with_one_line_each(
    settings: Settings, spark: Any, tmp_path: Path, suffix: str
) -> None:
    first = _variant(tmp_path / "v1", suffix, SUFFIX_FIELDS)
    provision(settings, first)
    name = stream_named(first, "clicks")
    _send(settings, first.stream(name).topic.name, list(click_events(10, seed=51)))
    ingest_stream(spark, settings, first, name, available_now=True)
    silver_uri = table_uri(settings, first.stream(name).table(Layer.SILVER))
    version = open_table(silver_uri).version()  # type: ignore[union-attr]

    refused = _variant(
        tmp_path / "v2",
        suffix,
        {
            "attempts": {"type": "string"},
            "amount": {"type": "decimal(10,4)"},
            "tenant": {"type": "string", "required": True},
        },
        drop=("referrer",),
    )
    catalog_arg = ("--catalog", str(refused.source))
    planned = _conveyor("schema", "plan", name, "--json", *catalog_arg)
    changes = {c["field"]: c for c in json.loads(planned.stdout)["changes"]}
    assert {f: (c["kind"], c["allowed"]) for f, c in changes.items()} == {
        "attempts": ("change_type", False),
        "amount": ("change_type", False),
        "tenant": ("add_required_field", False),
        "referrer": ("remove_field", False),
    }
    assert "precision grows at least as much as its scale" in changes["amount"]["reason"]
    assert "rename is a removal and an addition" in changes["referrer"]["reason"]

    applied = _conveyor("schema", "apply", name, *catalog_arg)
    said = applied.stdout + applied.stderr
    assert applied.returncode == 4, said
    assert "0 change(s) applied, 4 refused" in said
    assert f"refused: stream '{name}', field 'attempts': type int -> string" in said

    ingest = _conveyor("ingest", name, "--available-now", *catalog_arg)
    said = ingest.stdout + ingest.stderr
    assert ingest.returncode == 4, said
    assert f"stream '{name}', field 'tenant': new required field (string)" in said
    assert f"conveyor schema plan {name}" in said
    assert "Traceback" not in said and "at org.apache" not in said and "SparkSession" not in said
    assert open_table(silver_uri).version() == version  # type: ignore[union-attr]
    assert _schema_rows(settings, name) == []
