"""Topic provisioning against a real broker: create, converge, refuse, report drift.

Each test renames the catalog's topics with its own prefix, so tests never share a topic, and
deletes what it created. The broker is checked through kafka-python's admin client and, when
installed, through kcat (an independent client).
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from typer.testing import CliRunner

from conveyor.catalog import Catalog, CatalogError, load_catalog
from conveyor.commands.topics import REFUSED_EXIT_CODE, topics_app
from conveyor.kafka.topics import ConfigChange, apply_plan, plan_topics
from conveyor.settings import Settings, project_root
from tests.polling import eventually

SHIPPED: dict[str, Any] = yaml.safe_load((project_root() / "conveyor.yaml").read_text())
KCAT = shutil.which("kcat")

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def prefix() -> str:
    return f"cvt-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def write_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> Callable[..., Path]:
    """Writes the shipped catalog with topics renamed `<prefix>-<stream>`, edited by `edits`."""
    monkeypatch.chdir(tmp_path)  # problems then name the file as `conveyor.yaml`

    def write(*edits: Edit) -> Path:
        data = copy.deepcopy(SHIPPED)
        for name, stream in data["streams"].items():
            stream["topic"]["name"] = f"{prefix}-{name}"
        for edit in edits:
            edit(data)
        path = tmp_path / "conveyor.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def catalog_of(write_catalog: Callable[..., Path]) -> Callable[..., Catalog]:
    def load(*edits: Edit) -> Catalog:
        return load_catalog(write_catalog(*edits))

    return load


@pytest.fixture(autouse=True)
def delete_test_topics(admin: KafkaAdminClient, prefix: str) -> Iterator[None]:
    yield
    ours = [name for name in admin.list_topics() if name.startswith(prefix)]
    if ours:
        admin.delete_topics(ours)


def clicks_partitions(count: int) -> Edit:
    def edit(data: dict[str, Any]) -> None:
        data["streams"]["clicks"]["topic"]["partitions"] = count

    return edit


def broker_partitions(admin: KafkaAdminClient, topic: str) -> int:
    (meta,) = admin.describe_topics([topic])
    return len(meta["partitions"])


def broker_configs(admin: KafkaAdminClient, topic: str, keys: list[str]) -> dict[str, str]:
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, keys)
    described = admin.describe_configs([resource], config_filter="all")["topic"][topic]
    return {key: entry["value"] for key, entry in described.items()}


def kcat_partitions(settings: Settings, topic: str) -> dict[int, int]:
    """{partition: replica count} as kcat, an independent client, sees the topic."""
    assert KCAT is not None
    listing = subprocess.run(
        [KCAT, "-L", "-J", "-b", settings.kafka_servers, "-t", topic],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    (meta,) = json.loads(listing.stdout)["topics"]
    return {p["partition"]: len(p["replicas"]) for p in meta.get("partitions", [])}


def invoke(settings: Settings, *args: str) -> Any:
    runner = CliRunner()
    return runner.invoke(
        topics_app, list(args), env={"CONVEYOR_KAFKA_BOOTSTRAP": settings.kafka_servers}
    )


# --- tests -------------------------------------------------------------------------------------


def test_apply_from_empty_creates_every_topic_as_declared(
    admin: KafkaAdminClient, kafka_settings: Settings, catalog_of: Callable[..., Catalog]
) -> None:
    catalog = catalog_of()
    plan = plan_topics(catalog, admin)
    assert [(t.topic, t.create) for t in plan.topics] == [
        (spec.topic.name, True) for spec in catalog.streams.values()
    ]

    result = apply_plan(plan, admin)

    assert result.done == tuple(
        f"created topic {spec.topic.name!r} ({spec.topic.partitions} partitions, replication 1)"
        for spec in catalog.streams.values()
    )
    assert (result.refused, result.failed, result.warnings) == ((), (), ())
    for spec in catalog.streams.values():
        wanted = spec.topic.configs.to_kafka()
        assert broker_partitions(admin, spec.topic.name) == spec.topic.partitions
        assert broker_configs(admin, spec.topic.name, list(wanted)) == wanted
    assert catalog.stream("clicks").topic.configs.to_kafka()["retention.ms"] == "604800000"


@pytest.mark.skipif(KCAT is None, reason="kcat is not installed (apt-get install -y kcat)")
def test_kcat_sees_the_created_topics(
    admin: KafkaAdminClient, kafka_settings: Settings, catalog_of: Callable[..., Catalog]
) -> None:
    catalog = catalog_of()
    apply_plan(plan_topics(catalog, admin), admin)
    for spec in catalog.streams.values():
        seen = kcat_partitions(kafka_settings, spec.topic.name)
        assert seen == {p: spec.topic.replication_factor for p in range(spec.topic.partitions)}


def test_second_apply_changes_nothing_and_says_so(
    admin: KafkaAdminClient, kafka_settings: Settings, write_catalog: Callable[..., Path]
) -> None:
    path = write_catalog()
    first = invoke(kafka_settings, "apply", "--catalog", str(path))
    assert first.exit_code == 0, first.output
    assert "2 change(s) applied" in first.output

    second = invoke(kafka_settings, "apply", "--catalog", str(path))

    assert second.exit_code == 0, second.output
    # Only the summary on stdout: nothing done (other tests' topics may show up as drift).
    (summary,) = second.stdout.splitlines()
    assert summary.startswith("no changes")
    replan = plan_topics(load_catalog(path), admin)
    assert not replan.has_changes
    assert replan.summary().startswith("no changes")
    assert apply_plan(replan, admin).done == ()


def test_config_changed_out_of_band_is_drift_and_apply_corrects_it(
    admin: KafkaAdminClient, catalog_of: Callable[..., Catalog], prefix: str
) -> None:
    catalog = catalog_of()
    apply_plan(plan_topics(catalog, admin), admin)
    topic = f"{prefix}-clicks"
    out_of_band = {"retention.ms": "3600000", "compression.type": "gzip", "segment.ms": "7200000"}
    outcome = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, out_of_band)])
    assert outcome == {"topic": {topic: "OK"}}

    plan = eventually(
        lambda: plan_topics(catalog, admin),
        lambda p: bool(p.topic(topic).config_changes),
        "the out-of-band change to show in the plan",
    )

    assert plan.topic(topic).config_changes == (
        ConfigChange("retention.ms", "3600000", "604800000"),
        ConfigChange("compression.type", "gzip", "lz4"),
    )
    assert not plan.topic(f"{prefix}-app_logs").changed
    (as_dict,) = [t for t in plan.to_dict()["topics"] if t["topic"] == topic]
    assert as_dict["action"] == "update"
    assert as_dict["config_changes"][0] == {
        "key": "retention.ms",
        "old": "3600000",
        "new": "604800000",
    }

    result = apply_plan(plan, admin)

    assert result.done == (
        f"topic {topic!r}: retention.ms: 3600000 -> 604800000, compression.type: gzip -> lz4",
    )
    keys = ["retention.ms", "compression.type", "segment.ms"]
    # Incremental alter: the catalog's keys are restored, the unmanaged segment.ms is kept.
    assert broker_configs(admin, topic, keys) == {
        "retention.ms": "604800000",
        "compression.type": "lz4",
        "segment.ms": "7200000",
    }
    assert not plan_topics(catalog, admin).has_changes


def test_partition_increase_is_applied(
    admin: KafkaAdminClient,
    kafka_settings: Settings,
    catalog_of: Callable[..., Catalog],
    prefix: str,
) -> None:
    apply_plan(plan_topics(catalog_of(), admin), admin)
    topic = f"{prefix}-clicks"
    grown = catalog_of(clicks_partitions(6))

    plan = plan_topics(grown, admin)
    change = plan.topic(topic)
    assert (change.add_partitions, change.current_partitions, change.partitions) == (True, 4, 6)
    assert plan.to_dict()["topics"][0]["partitions"] == {"current": 4, "wanted": 6}

    result = apply_plan(plan, admin)

    assert result.done == (f"topic {topic!r}: partitions 4 -> 6",)
    eventually(lambda: broker_partitions(admin, topic), lambda n: n == 6, "6 partitions")
    if KCAT:
        seen = eventually(
            lambda: kcat_partitions(kafka_settings, topic), lambda p: len(p) == 6, "kcat: 6"
        )
        assert seen == {p: 1 for p in range(6)}
    assert not plan_topics(grown, admin).has_changes


def test_partition_decrease_is_refused_with_exit_code_4(
    admin: KafkaAdminClient,
    kafka_settings: Settings,
    write_catalog: Callable[..., Path],
    prefix: str,
) -> None:
    assert invoke(kafka_settings, "apply", "--catalog", str(write_catalog())).exit_code == 0
    topic = f"{prefix}-clicks"

    def longer_retention(data: dict[str, Any]) -> None:
        data["streams"]["clicks"]["topic"]["configs"]["retention.ms"] = "8d"

    path = write_catalog(clicks_partitions(2), longer_retention)
    result = invoke(kafka_settings, "apply", "--catalog", str(path))

    assert result.exit_code == REFUSED_EXIT_CODE, result.output
    refusal = (
        f"refused: conveyor.yaml: streams.clicks.topic.partitions: topic {topic!r} has 4 "
        "partitions, the catalog asks for 2: Kafka cannot remove partitions (set it back to 4, "
        "or recreate the topic by hand)"
    )
    assert refusal in result.output.splitlines()
    # Everything else in the plan was still applied.
    assert f"done: topic {topic!r}: retention.ms: 604800000 -> 691200000" in result.output
    assert broker_partitions(admin, topic) == 4
    assert broker_configs(admin, topic, ["retention.ms"]) == {"retention.ms": "691200000"}
    again = invoke(kafka_settings, "apply", "--catalog", str(path))
    assert again.exit_code == REFUSED_EXIT_CODE
    assert "no changes, 1 refused" in again.output


def test_topics_not_in_the_catalog_are_reported_never_deleted(
    admin: KafkaAdminClient,
    kafka_settings: Settings,
    write_catalog: Callable[..., Path],
    prefix: str,
) -> None:
    stray = f"{prefix}-stray"
    admin.create_topics({stray: {"num_partitions": 1, "replication_factor": 1}})
    path = write_catalog()

    plan = plan_topics(load_catalog(path), admin)
    assert stray in plan.unmanaged
    assert not any(name.startswith("__") for name in plan.unmanaged)

    as_json = invoke(kafka_settings, "plan", "--json", "--catalog", str(path))
    assert as_json.exit_code == 0, as_json.output
    assert stray in json.loads(as_json.stdout)["unmanaged"]

    applied = invoke(kafka_settings, "apply", "--catalog", str(path))
    assert applied.exit_code == 0, applied.output
    assert f"drift: topic {stray!r} is not in the catalog (left alone)" in applied.output
    assert stray in admin.list_topics()


def test_plan_renders_as_a_table(
    admin: KafkaAdminClient, kafka_settings: Settings, write_catalog: Callable[..., Path]
) -> None:
    result = invoke(kafka_settings, "plan", "--catalog", str(write_catalog()))
    assert result.exit_code == 0, result.output
    assert "Kafka topics: catalog vs cluster" in result.output
    assert result.output.count(" create ") == 2
    assert "2 change(s)" in result.output


def test_replication_above_broker_count_is_rejected_before_anything_is_touched(
    admin: KafkaAdminClient, catalog_of: Callable[..., Catalog], prefix: str
) -> None:
    def three_replicas(data: dict[str, Any]) -> None:
        data["streams"]["app_logs"]["topic"]["replication_factor"] = 3

    brokers = len(admin.describe_cluster()["brokers"])
    with pytest.raises(CatalogError) as caught:
        plan_topics(catalog_of(three_replicas), admin)
    assert caught.value.problems == [
        "conveyor.yaml: streams.app_logs.topic.replication_factor: must be <= the number of "
        f"brokers ({brokers}), got 3"
    ]
    assert not [name for name in admin.list_topics() if name.startswith(prefix)]


def test_topic_created_meanwhile_is_a_warning(
    admin: KafkaAdminClient, catalog_of: Callable[..., Catalog], prefix: str
) -> None:
    plan = plan_topics(catalog_of(), admin)
    racer = f"{prefix}-app_logs"
    admin.create_topics({racer: {"num_partitions": 2, "replication_factor": 1}})

    result = apply_plan(plan, admin)

    assert result.failed == ()
    assert result.warnings == (
        f"topic {racer!r} was created by someone else meanwhile; run the plan again to compare "
        "its settings with the catalog",
    )
    assert result.done == (f"created topic '{prefix}-clicks' (4 partitions, replication 1)",)


def test_produce_to_a_missing_topic_names_it_and_sends_nothing(
    admin: KafkaAdminClient,
    kafka_settings: Settings,
    write_catalog: Callable[..., Path],
    prefix: str,
) -> None:
    from conveyor.cli import app

    result = CliRunner().invoke(
        app,
        ["produce", "clicks", "--count", "10", "--catalog", str(write_catalog())],
        env={"CONVEYOR_KAFKA_BOOTSTRAP": kafka_settings.kafka_servers},
    )

    assert result.exit_code != 0
    assert f"topic '{prefix}-clicks' does not exist" in result.output
    assert "conveyor topics apply" in result.output
    assert f"{prefix}-clicks" not in admin.list_topics()
