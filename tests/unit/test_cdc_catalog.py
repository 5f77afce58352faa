"""cdc streams in the catalog (the example catalog, and the mistakes a user makes) and the
connector config Conveyor registers for one (pure: no Connect, no Postgres)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from conveyor.catalog import CatalogError, Layer, load_catalog
from conveyor.debezium import connector_config, slot_name
from conveyor.settings import PostgresConnection, project_root

EXAMPLE = project_root() / "examples/conveyor.cdc.yaml"


def _problems(tmp_path: Path, edit: Any) -> list[str]:
    data = yaml.safe_load(EXAMPLE.read_text())
    edit(data["streams"]["customers"])
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        load_catalog(path)
    except CatalogError as exc:
        return str(exc).splitlines()
    return []


def test_the_example_declares_a_mirrored_table() -> None:
    stream = load_catalog(EXAMPLE).stream("customers")
    assert stream.kind == "cdc" and stream.cdc is not None
    assert stream.cdc.schema_and_table == ("public", "customers")
    assert stream.cdc.primary_key == ("id",)
    assert stream.table(Layer.SILVER).partition_by == ()  # not by event date
    assert stream.table(Layer.BRONZE).partition_by == ("ingest_date",)


def test_mistakes_are_named_with_their_path(tmp_path: Path) -> None:
    def undeclared_key(s: dict[str, Any]) -> None:
        s["cdc"]["primary_key"] = ["nope"]

    def optional_key(s: dict[str, Any]) -> None:
        s["schema"]["fields"]["id"]["required"] = False

    def no_block(s: dict[str, Any]) -> None:
        del s["cdc"]

    def event_time(s: dict[str, Any]) -> None:
        s["schema"]["event_time"] = "updated_at"

    def bad_table(s: dict[str, Any]) -> None:
        s["cdc"]["source_table"] = "Public.Customers;drop"

    def reserved(s: dict[str, Any]) -> None:
        s["schema"]["fields"]["_lsn"] = {"type": "long"}

    cases = {
        undeclared_key: "streams.customers.cdc.primary_key: field 'nope' is not declared",
        optional_key: "streams.customers.cdc.primary_key: field 'id' is a key column",
        no_block: "a stream of kind cdc needs a `cdc` block",
        event_time: "streams.customers.schema.event_time: does not apply to a cdc stream",
        bad_table: "must be a PostgreSQL table as `schema.table`",
        reserved: "streams.customers.schema.fields._lsn: is a column name Conveyor's cdc",
    }
    for edit, expected in cases.items():
        problems = _problems(tmp_path, edit)
        assert any(expected in p for p in problems), (edit.__name__, problems)


def test_value_rules_are_refused_on_a_cdc_stream(tmp_path: Path) -> None:
    """A mirror must mirror: a change refused for a value would leave its row stale in silver,
    so the catalog refuses every value rule on a cdc stream's fields, one line each."""
    rules = {
        ("account", "maximum"): 1,
        ("account", "minimum"): 0,
        ("code", "allowed"): ["a", "b"],
        ("name", "pattern"): "^[A-Z]",
    }

    def with_rules(s: dict[str, Any]) -> None:
        for (field, rule), value in rules.items():
            s["schema"]["fields"][field][rule] = value

    problems = _problems(tmp_path, with_rules)
    for field, rule in rules:
        (line,) = [p for p in problems if f"streams.customers.schema.fields.{field}.{rule}:" in p]
        assert "do not apply to a cdc stream" in line and "downstream of silver" in line, line
    # type checks and required keys stay
    assert _problems(tmp_path, lambda s: None) == []


def test_history_and_delete_markers_are_the_streams_tables(tmp_path: Path) -> None:
    """Maintenance, `conveyor tables` and the page walk `Catalog.tables()`: a cdc stream's
    history and markers are there, under their own names, and a stream that keeps none has
    none."""
    from conveyor.maintenance import find_table

    def keep_both(s: dict[str, Any]) -> None:
        s["cdc"].update(deletes="hard", history="scd2")

    def keep_neither(s: dict[str, Any]) -> None:
        s["cdc"].update(deletes="soft", history="none")

    tables = {}
    for edit in (keep_both, keep_neither):
        data = yaml.safe_load(EXAMPLE.read_text())
        edit(data["streams"]["customers"])
        path = tmp_path / f"{edit.__name__}.yaml"
        path.write_text(yaml.safe_dump(data))
        catalog = load_catalog(path)
        tables[edit.__name__] = {(r.name, r.path, str(r.layer)) for r in catalog.tables()}
    layers = {(f"customers_{x}", f"customers/{x}", x) for x in ("bronze", "silver", "quarantine")}
    assert tables["keep_neither"] == layers
    assert tables["keep_both"] == layers | {
        ("customers_history", "customers/history", "history"),
        ("customers_delete_markers", "customers/_delete_markers", "delete_markers"),
    }
    assert find_table(catalog, "customers_silver").layer is Layer.SILVER
    data = yaml.safe_load(EXAMPLE.read_text())
    keep_both(data["streams"]["customers"])
    data["streams"]["customers"]["tables"] = {"bronze": {"name": "customers_history"}}
    (tmp_path / "clash.yaml").write_text(yaml.safe_dump(data))
    try:
        load_catalog(tmp_path / "clash.yaml")
    except CatalogError as exc:
        assert "customers_history" in str(exc) and "is already used" in str(exc)
    else:
        raise AssertionError("a layer named like the stream's history table was accepted")


def test_the_connector_reads_types_exactly_and_never_holds_the_password() -> None:
    stream = load_catalog(EXAMPLE).stream("customers")
    database = PostgresConnection("127.0.0.1", 5432, "conveyor", "conveyor", "s3cret-pw")
    config = connector_config(stream, database, "${dir:/secrets:password}")
    assert "s3cret-pw" not in str(config)
    assert config["database.password"] == "${dir:/secrets:password}"
    assert config["decimal.handling.mode"] == "string"
    assert config["time.precision.mode"] == "adaptive_time_microseconds"
    assert config["binary.handling.mode"] == "base64"
    assert config["table.include.list"] == "public.customers"
    assert config["transforms.route.replacement"] == stream.topic.name
    assert config["slot.name"] == slot_name(stream) == "conveyor_customers"
    assert config["value.converter.schemas.enable"] == "false"
