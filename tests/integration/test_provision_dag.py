"""The topic-provisioning DAG run for real with dag.test(), and its Kafka hook, on the test broker.

Each test points the DAG at its own catalog variant (every stream renamed with a unique suffix,
so topics are never shared) through CONVEYOR_CATALOG, which the operators read when they run.
The broker is checked with kafka-python's admin client, independently of the DAG.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from conveyor import connections
from conveyor.catalog import Catalog
from conveyor.kafka.clients import client_options
from conveyor.settings import Settings
from tests.catalogs import catalog_variant, stream_named
from tests.conftest import REPO
from tests.polling import eventually

DAG_ID = "conveyor_provision_topics"


@pytest.fixture
def variant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, admin: KafkaAdminClient
) -> Iterator[Catalog]:
    """A catalog variant the DAG reads (CONVEYOR_CATALOG); its topics are deleted afterwards."""
    catalog = catalog_variant(tmp_path / "catalog")
    monkeypatch.setenv("CONVEYOR_CATALOG", str(catalog.source))
    yield catalog
    ours = sorted(set(topic_names(catalog)) & set(admin.list_topics()))
    if ours:
        admin.delete_topics(ours)


def topic_names(catalog: Catalog) -> list[str]:
    return [spec.topic.name for spec in catalog.streams.values()]


def provision_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / f"{DAG_ID}.py"))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def broker_partitions(admin: KafkaAdminClient, topic: str) -> int:
    (meta,) = admin.describe_topics([topic])
    return len(meta["partitions"])


def broker_configs(admin: KafkaAdminClient, topic: str, keys: list[str]) -> dict[str, str]:
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, keys)
    described = admin.describe_configs([resource], config_filter="all")["topic"][topic]
    return {key: entry["value"] for key, entry in described.items()}


def task_states(run: Any) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def xcom(run: Any, task_id: str) -> Any:
    (ti,) = [ti for ti in run.get_task_instances() if ti.task_id == task_id]
    return ti.xcom_pull(task_ids=task_id)


# --- the DAG -----------------------------------------------------------------------------------


def test_dry_run_plans_and_changes_nothing(
    stack: dict[str, Any],
    admin: KafkaAdminClient,
    variant: Catalog,
    capfd: pytest.CaptureFixture[str],
) -> None:
    names = topic_names(variant)

    run = provision_dag().test(run_conf={"dry_run": True})

    assert run.state == "success"
    assert task_states(run) == {"plan": "success", "unless_dry_run": "success", "apply": "skipped"}
    plan = xcom(run, "plan")
    assert [(t["topic"], t["action"], t["partitions"]) for t in plan["topics"]] == [
        (spec.topic.name, "create", {"current": None, "wanted": spec.topic.partitions})
        for spec in variant.streams.values()
    ]
    assert plan["summary"].startswith(f"{len(names)} change(s)")
    # The plan is in the task log (dag.test() prints it) as a table: one `create` row per topic.
    task_log = "".join(capfd.readouterr())
    assert "Kafka topics: catalog vs cluster" in task_log
    rows = [line for line in task_log.splitlines() if " create " in line]
    assert [next(n for n in names if n in row) for row in rows] == names
    assert not set(names) & set(admin.list_topics())


def test_run_creates_every_topic_as_declared(
    stack: dict[str, Any], admin: KafkaAdminClient, variant: Catalog
) -> None:
    run = provision_dag().test()

    assert run.state == "success"
    assert task_states(run) == {"plan": "success", "unless_dry_run": "success", "apply": "success"}
    result = xcom(run, "apply")
    assert result["done"] == [
        f"created topic {spec.topic.name!r} ({spec.topic.partitions} partitions, replication 1)"
        for spec in variant.streams.values()
    ]
    assert (result["refused"], result["failed"]) == ([], [])
    for spec in variant.streams.values():
        wanted = spec.topic.configs.to_kafka()
        assert broker_partitions(admin, spec.topic.name) == spec.topic.partitions
        assert broker_configs(admin, spec.topic.name, list(wanted)) == wanted


def test_refused_change_fails_apply_after_the_safe_ones(
    stack: dict[str, Any],
    admin: KafkaAdminClient,
    variant: Catalog,
    capfd: pytest.CaptureFixture[str],
) -> None:
    clicks_stream = stream_named(variant, "clicks")
    clicks = variant.stream(clicks_stream).topic
    logs = variant.stream(stream_named(variant, "app_logs")).topic
    # Someone made the clicks topic wider than the catalog says: Kafka cannot take it back.
    admin.create_topics(
        {clicks.name: {"num_partitions": clicks.partitions + 2, "replication_factor": 1}}
    )

    run = provision_dag().test()

    assert run.state == "failed"
    assert task_states(run)["apply"] == "failed"  # failed for good: no retry would help
    assert broker_partitions(admin, clicks.name) == clicks.partitions + 2
    wanted = clicks.configs.to_kafka()
    eventually(
        lambda: broker_configs(admin, clicks.name, list(wanted)),
        lambda configs: configs == wanted,
        "the catalog's configs on the refused topic",
    )
    assert broker_partitions(admin, logs.name) == logs.partitions
    task_log = "".join(capfd.readouterr())
    assert f"done: created topic {logs.name!r}" in task_log
    refusal = variant.problem(
        f"streams.{clicks_stream}.topic.partitions",
        f"topic {clicks.name!r} has {clicks.partitions + 2} partitions, the catalog asks for "
        f"{clicks.partitions}: Kafka cannot remove partitions",
    )
    assert f"refused: {refusal}" in task_log


# --- the plugin and the hook -------------------------------------------------------------------


def test_loading_the_plugin_leaves_kafka_python_alone(stack: dict[str, Any]) -> None:
    # Airflow imports every .py file of the plugins folder as a module named after the file:
    # without plugins/.airflowignore, hooks/kafka.py would replace kafka-python as `kafka`.
    probe = (
        "import json\n"
        "from airflow import plugins_manager\n"
        "plugins_manager.ensure_plugins_loaded()\n"
        "from kafka import KafkaAdminClient\n"
        "import kafka\n"
        "print(json.dumps({'errors': plugins_manager.get_import_errors(), 'kafka': kafka.__file__,\n"
        "    'plugins': [p['name'] for p in plugins_manager.get_plugin_info()]}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert report["plugins"] == ["conveyor"]
    assert "site-packages" in report["kafka"], report["kafka"]


def test_hook_reads_the_stack_connection_and_lists_topics(
    stack: dict[str, Any], settings: Settings, admin: KafkaAdminClient
) -> None:
    from conveyor.provider.hooks.kafka import ConveyorKafkaHook

    topic = f"cvh-{uuid.uuid4().hex[:8]}"
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    try:
        with ConveyorKafkaHook() as hook:
            assert hook.kafka_conn_id == connections.KAFKA_ADMIN
            assert hook.settings.kafka_servers == settings.kafka_servers
            assert topic in hook.get_conn().list_topics()
            ok, message = hook.test_connection()
        assert (ok, message) == (
            True,
            f"Connected to Kafka at {settings.kafka_servers}: 1 broker(s)",
        )
    finally:
        admin.delete_topics([topic])


def test_connection_without_bootstrap_servers_is_named_in_the_error(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from conveyor.provider.hooks.kafka import ConveyorKafkaHook, KafkaConnectionInvalid

    monkeypatch.setenv(
        "AIRFLOW_CONN_CVT_NO_SERVERS",
        json.dumps({"conn_type": "kafka", "extra": {"security.protocol": "PLAINTEXT"}}),
    )
    expected = (
        "Airflow connection 'cvt_no_servers': no bootstrap servers: set extra "
        "'bootstrap.servers' (host:port[,host:port]) or the connection's host and port"
    )
    hook = ConveyorKafkaHook("cvt_no_servers")

    with pytest.raises(KafkaConnectionInvalid) as caught:
        hook.get_conn()

    assert str(caught.value) == expected
    assert hook.test_connection() == (False, f"KafkaConnectionInvalid: {expected}")


def test_sasl_password_never_shows_in_repr_or_logs(
    stack: dict[str, Any],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from conveyor.provider.hooks.kafka import ConveyorKafkaHook

    password = f"pw-{uuid.uuid4().hex}"
    conn = {
        "conn_type": "kafka",
        "login": "conveyor-user",
        "password": password,
        "extra": {
            "bootstrap.servers": settings.kafka_servers,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_CVT_SASL", json.dumps(conn))
    caplog.set_level(logging.DEBUG)
    hook = ConveyorKafkaHook("cvt_sasl", admin_options={"bootstrap_timeout_ms": 3000})

    ok, message = hook.test_connection()  # the test broker speaks PLAINTEXT: SASL fails

    assert not ok
    # Conveyor's own login probe answers first, in one line naming the servers
    assert message.startswith(f"KafkaAccessError: Kafka at {settings.kafka_servers}"), message
    # kafka-python, given the same options, logs its configuration with the password blanked
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    options = client_options(hook.settings)
    assert options["sasl_plain_password"] == password  # the password did reach the client
    with pytest.raises(KafkaError):
        KafkaAdminClient(**options, bootstrap_timeout_ms=3000)
    printed = "".join(capfd.readouterr())  # the hook logs through Airflow's structlog
    assert "SASL PLAIN as 'conveyor-user'" in printed
    assert "'sasl_plain_password': '[redacted]'" in caplog.text
    for shown in (repr(hook), str(hook), repr(hook.settings), message, caplog.text, printed):
        assert password not in shown
