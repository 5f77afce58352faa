"""The catalog: the shipped file loads as declared; broken ones are rejected, one line per problem."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.catalog import (
    LEDGER_PATH,
    Catalog,
    CatalogError,
    Layer,
    UnknownStream,
    checkpoint_uri,
    ledger_uri,
    load_catalog,
    table_uri,
)
from conveyor.settings import Settings

SHIPPED = Path(__file__).resolve().parents[2] / "conveyor.yaml"
SHIPPED_DATA: dict[str, Any] = yaml.safe_load(SHIPPED.read_text())


@pytest.fixture
def shipped() -> Catalog:
    return load_catalog(SHIPPED)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work inside tmp_path so problems name the file as `conveyor.yaml`."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems_of(text: str, folder: Path) -> list[str]:
    path = folder / "conveyor.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def problems_after(change: Callable[[dict[str, Any]], None], folder: Path) -> list[str]:
    """Problems of the shipped catalog after `change` edits its parsed document."""
    data = copy.deepcopy(SHIPPED_DATA)
    change(data)
    return problems_of(yaml.safe_dump(data, sort_keys=False), folder)


def clicks(data: dict[str, Any]) -> dict[str, Any]:
    stream: dict[str, Any] = data["streams"]["clicks"]
    return stream


def app_logs(data: dict[str, Any]) -> dict[str, Any]:
    stream: dict[str, Any] = data["streams"]["app_logs"]
    return stream


# --- the shipped catalog -----------------------------------------------------------------------


def test_shipped_catalog_declares_clicks_and_app_logs(shipped: Catalog) -> None:
    assert shipped.stream_names == ("clicks", "app_logs")
    assert shipped.source == SHIPPED


def test_clicks_topic(shipped: Catalog) -> None:
    topic = shipped.stream("clicks").topic
    assert (topic.name, topic.partitions, topic.replication_factor) == ("clicks", 4, 1)
    assert topic.configs.to_kafka() == {
        "retention.ms": str(7 * 24 * 3600 * 1000),
        "cleanup.policy": "delete",
        "min.insync.replicas": "1",
        "max.message.bytes": str(1024 * 1024),
        "compression.type": "lz4",
    }


def test_clicks_schema(shipped: Catalog) -> None:
    schema = shipped.stream("clicks").event_schema
    required = {name for name, spec in schema.fields.items() if spec.required}
    assert required == {"event_id", "user_id", "event_type", "url", "ts"}
    assert set(schema.fields) - required == {
        "session_id",
        "referrer",
        "country",
        "device",
        "revenue",
    }
    assert schema.fields["event_id"].unique
    assert schema.fields["event_type"].allowed == ("page_view", "click", "add_to_cart", "purchase")
    assert schema.fields["device"].allowed == ("desktop", "mobile", "tablet")
    assert schema.fields["country"].pattern == "^[A-Z]{2}$"
    # `number` is read as its canonical name
    assert (schema.fields["revenue"].type, schema.fields["revenue"].minimum) == ("double", 0)
    assert schema.fields["ts"].type == "timestamp"
    assert schema.fields["ts"].timestamp_formats == ("iso8601", "epoch_millis")
    assert (schema.event_time, schema.key, schema.dedup_key) == ("ts", "user_id", ("event_id",))
    assert schema.late_tolerance == timedelta(hours=2)
    analytics = shipped.stream("clicks").analytics
    assert analytics is not None
    assert analytics.session_gap == timedelta(minutes=30)


def test_app_logs_keeps_every_line(shipped: Catalog) -> None:
    stream = shipped.stream("app_logs")
    schema = stream.event_schema
    assert (stream.topic.name, stream.topic.partitions) == ("app_logs", 2)
    assert schema.dedup_key == ()
    assert schema.fields["level"].allowed == ("DEBUG", "INFO", "WARN", "ERROR")
    assert {n for n, f in schema.fields.items() if f.required} == {
        "ts",
        "level",
        "service",
        "message",
    }
    assert not schema.fields["trace_id"].required
    assert schema.late_tolerance == timedelta(hours=1)


def test_tables_follow_the_naming_convention(shipped: Catalog) -> None:
    tables = {(t.stream, t.layer): t for t in shipped.tables()}
    assert len(tables) == 6
    silver = tables[("clicks", Layer.SILVER)]
    assert (silver.name, silver.path) == ("clicks_silver", "clicks/silver")
    assert silver.partition_by == ("event_date",)
    assert silver.zorder_by == ("user_id",)
    assert tables[("app_logs", Layer.QUARANTINE)].path == "app_logs/quarantine"
    assert tables[("app_logs", Layer.BRONZE)].partition_by == ("ingest_date",)
    policy = silver.maintenance
    assert (policy.target_file_size, policy.small_file_threshold) == (128 << 20, 32 << 20)
    assert (policy.min_small_files, policy.vacuum_retention) == (10, timedelta(days=7))


def test_service_levels_are_covered_by_retention(shipped: Catalog) -> None:
    for name in shipped.stream_names:
        stream = shipped.stream(name)
        levels = stream.service_levels
        assert (levels.max_downtime, levels.backfill_window) == (timedelta(days=3), timedelta(2))
        assert stream.topic.configs.retention == timedelta(days=7)


def test_catalog_objects_are_immutable(shipped: Catalog) -> None:
    with pytest.raises(ValueError, match="frozen"):
        shipped.stream("clicks").topic.partitions = 8
    with pytest.raises(TypeError):
        shipped.streams["x"] = shipped.stream("clicks")  # type: ignore[index]


def test_unknown_stream_names_the_known_ones(shipped: Catalog) -> None:
    with pytest.raises(UnknownStream) as caught:
        shipped.stream("orders")
    assert str(caught.value).endswith("no stream named 'orders' (streams: clicks, app_logs)")


def test_locations_join_the_settings(shipped: Catalog) -> None:
    settings = Settings(hdfs_uri="hdfs://nn:8020", lake_path="/lake", checkpoint_path="/ckpt")
    silver = shipped.stream("clicks").table(Layer.SILVER)
    assert table_uri(settings, silver) == "hdfs://nn:8020/lake/clicks/silver"
    assert ledger_uri(settings) == f"hdfs://nn:8020/lake/{LEDGER_PATH}"
    assert checkpoint_uri(settings, "clicks", "ingest") == "hdfs://nn:8020/ckpt/clicks/ingest"
    with pytest.raises(ValueError, match="checkpoint"):
        checkpoint_uri(settings, "clicks", "../clicks/silver")


def test_dumped_catalog_validates_back_to_the_same(shipped: Catalog) -> None:
    assert Catalog.model_validate(shipped.model_dump(by_alias=True)).streams == shipped.streams


# --- broken catalogs: one exact message per problem --------------------------------------------


def test_unparseable_yaml_names_line_and_column(in_tmp: Path) -> None:
    text = "streams:\n  clicks:\n    topic:\n  partitions: 3\n   bad: x\n"
    assert problems_of(text, in_tmp) == [
        "conveyor.yaml: line 5, column 7: invalid YAML: mapping values are not allowed here"
    ]


def test_unclosed_flow_sequence(in_tmp: Path) -> None:
    assert problems_of("streams:\n  clicks:\n    topic: [1, 2\n", in_tmp) == [
        "conveyor.yaml: line 4, column 1: invalid YAML: expected ',' or ']', but got "
        "'<stream end>' (while parsing a flow sequence started on line 3, column 12)"
    ]


def test_empty_and_missing_files(in_tmp: Path) -> None:
    assert problems_of("# nothing yet\n", in_tmp) == [
        "conveyor.yaml: (document): is empty; expected a mapping with a 'streams' key"
    ]
    with pytest.raises(CatalogError) as caught:
        load_catalog(in_tmp / "other.yaml")
    assert caught.value.problems == [
        "other.yaml: file not found (set CONVEYOR_CATALOG or pass --catalog)"
    ]


def test_unknown_key_lists_the_expected_ones(in_tmp: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        clicks(data)["topic"]["partitons"] = clicks(data)["topic"].pop("partitions")

    assert problems_after(change, in_tmp) == [
        "conveyor.yaml: streams.clicks.topic.partitions: is required",
        "conveyor.yaml: streams.clicks.topic.partitons: unknown key "
        "(expected one of: access, configs, name, partitions, replication_factor)",
    ]


def test_unknown_topic_config(in_tmp: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        app_logs(data)["topic"]["configs"]["segment.bytes"] = 1024

    assert problems_after(change, in_tmp) == [
        "conveyor.yaml: streams.app_logs.topic.configs.segment.bytes: unknown key (expected one "
        "of: cleanup.policy, compression.type, max.message.bytes, min.insync.replicas, "
        "retention.ms)"
    ]


def test_wrong_types(in_tmp: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        clicks(data)["topic"]["partitions"] = "three"
        clicks(data)["schema"]["fields"]["url"]["required"] = "yes please"
        clicks(data)["topic"]["configs"]["compression.type"] = "brotli"
        app_logs(data)["schema"]["fields"] = ["ts", "level"]

    assert problems_after(change, in_tmp) == [
        "conveyor.yaml: streams.clicks.topic.partitions: must be an integer >= 1, got 'three'",
        "conveyor.yaml: streams.clicks.topic.configs.compression.type: must be one of "
        "'producer', 'uncompressed', 'gzip', 'snappy', 'lz4' or 'zstd', got 'brotli'",
        "conveyor.yaml: streams.clicks.schema.fields.url.required: must be true or false, "
        "got 'yes please'",
        "conveyor.yaml: streams.app_logs.schema.fields: must be a mapping, got a list",
    ]


def test_duplicate_stream_name(in_tmp: Path) -> None:
    text = SHIPPED.read_text() + "\n  clicks:\n    description: again\n"
    lines = text.splitlines()
    first = lines.index("  clicks:") + 1
    assert problems_of(text, in_tmp) == [
        f"conveyor.yaml: streams.clicks: duplicate stream name 'clicks' on line {len(lines) - 1} "
        f"(first defined on line {first})",
        # The later one wins, as in any YAML loader, and is itself incomplete.
        "conveyor.yaml: streams.clicks.topic: is required",
        "conveyor.yaml: streams.clicks.schema: is required",
        "conveyor.yaml: streams.clicks.service_levels: is required",
    ]


def test_duplicate_field_name(in_tmp: Path) -> None:
    text = (
        "streams:\n"
        "  s:\n"
        "    schema:\n"
        "      fields:\n"
        "        ts: {type: timestamp, required: true}\n"
        "        ts: {type: string}\n"
    )
    assert problems_of(text, in_tmp)[0] == (
        "conveyor.yaml: streams.s.schema.fields.ts: duplicate field name 'ts' on line 6 "
        "(first defined on line 5)"
    )


def test_duplicate_topic_across_streams(in_tmp: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        app_logs(data)["topic"]["name"] = "clicks"

    assert problems_after(change, in_tmp) == [
        "conveyor.yaml: streams.app_logs.topic.name: topic 'clicks' is already used by stream "
        "'clicks'"
    ]


def test_topics_that_collide_in_kafka_metrics(in_tmp: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        clicks(data)["topic"]["name"] = "web.events"
        app_logs(data)["topic"]["name"] = "web_events"

    assert problems_after(change, in_tmp) == [
        "conveyor.yaml: streams.app_logs.topic.name: topic 'web_events' collides with "
        "'web.events' of stream 'clicks' (Kafka treats '.' and '_' alike in metric names)"
    ]


def test_duplicate_table_name_and_path(in_tmp: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        app_logs(data)["tables"]["silver"] = {"name": "clicks_silver"}
        app_logs(data)["tables"]["quarantine"] = {"path": "clicks/silver/bad"}

    assert problems_after(change, in_tmp) == [
        "conveyor.yaml: streams.app_logs.tables.silver.name: table name 'clicks_silver' is "
        "already used by streams.clicks.tables.silver",
        "conveyor.yaml: streams.app_logs.tables.quarantine.path: 'clicks/silver/bad' overlaps "
        "'clicks/silver' of streams.clicks.tables.silver: tables need folders of their own",
    ]


TOPIC_RULES = (
    "is not a valid Kafka topic name: use 1 to 249 of the characters a-z A-Z 0-9 . _ - "
    "(and not '.' or '..')"
)


@pytest.mark.parametrize("name", ["click stream", "..", ".", "x" * 250, "clicks/v2", ""])
def test_invalid_topic_name(in_tmp: Path, name: str) -> None:
    def change(data: dict[str, Any]) -> None:
        clicks(data)["topic"]["name"] = name

    shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
    assert problems_after(change, in_tmp) == [
        f"conveyor.yaml: streams.clicks.topic.name: {TOPIC_RULES}, got {shown}"
    ]


def test_longest_valid_topic_name_is_accepted(in_tmp: Path) -> None:
    data = copy.deepcopy(SHIPPED_DATA)
    clicks(data)["topic"]["name"] = "a.b_c-D" + "x" * 242
    (in_tmp / "conveyor.yaml").write_text(yaml.safe_dump(data))
    assert len(load_catalog(in_tmp / "conveyor.yaml").stream("clicks").topic.name) == 249


def test_event_time_key_and_dedup_fields_must_exist(in_tmp: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        clicks(data)["schema"].update(event_time="time", key="user", dedup_key="id")
        app_logs(data)["schema"]["event_time"] = "service"

    assert problems_after(change, in_tmp) == [
        "conveyor.yaml: streams.clicks.schema.event_time: field 'time' is not declared in "
        "streams.clicks.schema.fields",
        "conveyor.yaml: streams.clicks.schema.key: field 'user' is not declared in "
        "streams.clicks.schema.fields",
        "conveyor.yaml: streams.clicks.schema.dedup_key: field 'id' is not declared in "
        "streams.clicks.schema.fields",
        "conveyor.yaml: streams.app_logs.schema.event_time: field 'service' must be a required "
        "timestamp, got a required string",
    ]


def test_retention_shorter_than_service_levels(in_tmp: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        clicks(data)["topic"]["configs"]["retention.ms"] = "4d"
        app_logs(data)["topic"]["configs"]["retention.ms"] = 3_600_000

    assert problems_after(change, in_tmp) == [
        "conveyor.yaml: streams.clicks.topic.configs.retention.ms: 4d does not cover "
        "service_levels.max_downtime + backfill_window (3d + 2d = 5d); raise retention.ms or "
        "lower the service levels",
        "conveyor.yaml: streams.app_logs.topic.configs.retention.ms: 1h does not cover "
        "service_levels.max_downtime + backfill_window (3d + 2d = 5d); raise retention.ms or "
        "lower the service levels",
    ]


def test_unlimited_retention_covers_everything(in_tmp: Path) -> None:
    data = copy.deepcopy(SHIPPED_DATA)
    clicks(data)["topic"]["configs"]["retention.ms"] = -1
    (in_tmp / "conveyor.yaml").write_text(yaml.safe_dump(data))
    configs = load_catalog(in_tmp / "conveyor.yaml").stream("clicks").topic.configs
    assert configs.retention is None
    assert configs.to_kafka()["retention.ms"] == "-1"


def test_bad_durations_and_sizes(in_tmp: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        clicks(data)["schema"]["late_tolerance"] = "2 hours"
        clicks(data)["service_levels"]["max_downtime"] = 3
        app_logs(data)["tables"]["maintenance"]["target_file_size"] = "big"

    assert problems_after(change, in_tmp) == [
        "conveyor.yaml: streams.clicks.schema.late_tolerance: must be a duration like 7d, 36h, "
        "30m, 10s or 500ms, got '2 hours'",
        "conveyor.yaml: streams.clicks.service_levels.max_downtime: must be a duration like 7d, "
        "36h, 30m, 10s or 500ms, got 3",
        "conveyor.yaml: streams.app_logs.tables.maintenance.target_file_size: must be a size "
        "like 128MB, 512KB or a number of bytes, got 'big'",
    ]


def test_replication_and_field_rules(in_tmp: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        clicks(data)["topic"]["configs"]["min.insync.replicas"] = 2
        clicks(data)["schema"]["fields"]["revenue"]["allowed"] = ["1"]
        clicks(data)["tables"]["silver"]["zorder_by"] = ["user_id", "colour"]

    assert problems_after(change, in_tmp) == [
        "conveyor.yaml: streams.clicks.schema.fields.revenue.allowed: applies only to string "
        "fields, not double",
        "conveyor.yaml: streams.clicks.topic.configs.min.insync.replicas: must be <= "
        "replication_factor (1), got 2",
        "conveyor.yaml: streams.clicks.tables.silver.zorder_by: column 'colour' is unknown; use "
        "a schema field, event_date or ingest_date",
    ]


def test_many_problems_are_reported_together(in_tmp: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        data["streams"]["Bad-Name"] = copy.deepcopy(app_logs(data))
        data["owner"] = "data-eng"
        clicks(data)["topic"]["replication_factor"] = 0
        # app_logs is valid on its own, so its cross-checks run although the file is broken.
        app_logs(data)["schema"]["key"] = "account"
        app_logs(data)["tables"]["maintenance"]["vacuum_retention"] = "1d"

    assert problems_after(change, in_tmp) == [
        "conveyor.yaml: streams.clicks.topic.replication_factor: must be an integer >= 1, got 0",
        "conveyor.yaml: streams.Bad-Name: stream name must be 1-64 of a-z, 0-9 and '_', "
        "starting with a letter, got 'Bad-Name'",
        "conveyor.yaml: owner: unknown key (expected one of: streams, version)",
        "conveyor.yaml: streams.app_logs.schema.key: field 'account' is not declared in "
        "streams.app_logs.schema.fields",
        "conveyor.yaml: streams.app_logs.tables.maintenance.vacuum_retention: must be at least "
        "7d (Delta's retention check and service_levels.max_downtime), got 1d",
    ]
