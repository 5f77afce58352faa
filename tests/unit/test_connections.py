"""Connections per role: every operator, sensor and trigger takes its connection ids, with the
defaults of `conveyor.connections`, and builds its settings from those connections (not from
the worker's CONVEYOR_* variables). Connections come from AIRFLOW_CONN_* variables: no server."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import connections
from conveyor.kafka.clients import client_options
from conveyor.settings import Settings
from conveyor.stack import components
from tests.conftest import REPO

KAFKA = {
    "conn_type": "kafka",
    "login": "ingest-bot",
    "password": "s3cret",
    "extra": {
        "bootstrap.servers": "broker1:9093,broker2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
    },
}
LAKE = {
    "conn_type": "hdfs",
    "host": "lake-ns",
    "extra": {"lake_path": "/data/lake", "checkpoint_path": "/data/checkpoints"},
}
SPARK = {"conn_type": "spark", "host": "spark://master", "port": 7077}


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The plugin importable, the worker's environment pointing elsewhere, and one Airflow
    connection per role under test ids."""
    monkeypatch.syspath_prepend(str(REPO / "plugins"))
    monkeypatch.setenv("CONVEYOR_KAFKA_BOOTSTRAP", "worker-env:9092")
    monkeypatch.setenv("CONVEYOR_HDFS_URI", "hdfs://worker-env:8020")
    for conn_id, conn in (("cvt_kafka", KAFKA), ("cvt_lake", LAKE), ("cvt_spark", SPARK)):
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    yield


def test_settings_come_from_each_roles_connection(plugin: None) -> None:
    from conveyor.provider.hooks.connections import pipeline_settings

    settings = pipeline_settings(
        kafka_conn_id="cvt_kafka", lake_conn_id="cvt_lake", spark_conn_id="cvt_spark"
    )
    assert settings.kafka_servers == "broker1:9093,broker2:9093"
    assert (settings.kafka_security_protocol, settings.kafka_sasl_mechanism) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
    )
    assert settings.kafka_sasl_username == "ingest-bot"
    assert settings.lake_uri == "hdfs://lake-ns/data/lake"
    assert settings.checkpoint_uri == "hdfs://lake-ns/data/checkpoints"
    assert settings.spark_master == "spark://master:7077"
    # a role left out keeps the worker's environment
    assert pipeline_settings(lake_conn_id="cvt_lake").kafka_servers == "worker-env:9092"


def test_spark_job_gets_its_connections_as_environment_and_the_password_as_a_file(
    plugin: None, tmp_path: Path
) -> None:
    from conveyor.provider.operators.spark import ConveyorSparkSubmitOperator

    task = ConveyorSparkSubmitOperator(
        task_id="ingest",
        job="stream_ingest.py",
        kafka_conn_id="cvt_kafka",
        lake_conn_id="cvt_lake",
        env_vars={"CONVEYOR_LAKE_PATH": "/chosen/by/the/task"},
    )
    env = task.job_environment(task.job_settings(), tmp_path)
    assert env["CONVEYOR_KAFKA_BOOTSTRAP"] == "broker1:9093,broker2:9093"
    assert not any("s3cret" in value for value in env.values())
    secret = Path(env["CONVEYOR_KAFKA_SASL_PASSWORD_FILE"])
    assert secret.read_text() == "s3cret"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert env["CONVEYOR_HDFS_URI"] == "hdfs://lake-ns"
    assert env["CONVEYOR_LAKE_PATH"] == "/chosen/by/the/task"  # the task's own env_vars win
    # what the job makes of that environment
    job = Settings(**{k.removeprefix("CONVEYOR_").lower(): v for k, v in env.items()})
    assert client_options(job)["sasl_plain_password"] == "s3cret"


def test_every_operator_sensor_and_trigger_defaults_to_the_roles_ids(plugin: None) -> None:
    from conveyor.provider.hooks.kafka import ConveyorKafkaHook
    from conveyor.provider.hooks.lake import ConveyorLakeHook
    from conveyor.provider.operators.maintenance import (
        CompactTableOperator,
        VacuumTableOperator,
    )
    from conveyor.provider.operators.spark import ConveyorSparkSubmitOperator
    from conveyor.provider.operators.topics import TopicsApplyOperator, TopicsPlanOperator
    from conveyor.provider.sensors.maintenance import TableNeedsCompactionSensor
    from conveyor.provider.sensors.watermark import StreamWatermarkSensor
    from conveyor.provider.triggers.watermark import StreamWatermarkTrigger

    def defaults(cls: type[Any]) -> dict[str, Any]:
        found = {}
        for klass in cls.__mro__:
            if "__init__" in vars(klass):
                for name, p in inspect.signature(klass.__init__).parameters.items():
                    if name.endswith("conn_id") and p.default is not inspect.Parameter.empty:
                        found.setdefault(name, p.default)
        return found

    # maintenance runs through spark-submit too (one way to run Spark from Airflow), with no
    # Kafka principal: it never reaches Kafka
    assert defaults(ConveyorSparkSubmitOperator) == {
        "spark_conn_id": connections.SPARK,
        "kafka_conn_id": connections.KAFKA_INGEST,
        "lake_conn_id": connections.LAKE,
        "conn_id": "spark_default",  # the provider's own, which ours always sets
    }
    for cls in (CompactTableOperator, VacuumTableOperator):
        assert issubclass(cls, ConveyorSparkSubmitOperator)
        operator = cls(task_id="t", table="clicks_silver")
        assert (operator.kafka_conn_id, operator.lake_conn_id) == (None, connections.LAKE), cls
        assert operator._conn_id == connections.SPARK, cls
    for cls in (TableNeedsCompactionSensor, StreamWatermarkSensor, StreamWatermarkTrigger):
        assert defaults(cls) == {"lake_conn_id": connections.LAKE}, cls
    for cls in (TopicsPlanOperator, TopicsApplyOperator, ConveyorKafkaHook):
        assert defaults(cls)["kafka_conn_id"] == connections.KAFKA_ADMIN, cls
    assert defaults(ConveyorLakeHook) == {"lake_conn_id": connections.LAKE}
    for cls in (TopicsPlanOperator, TopicsApplyOperator):
        assert _ingest_default(cls) == connections.KAFKA_INGEST
    # the trigger carries its connection id to the triggerer
    trigger = StreamWatermarkTrigger("clicks", "2026-03-02T00:00:00+00:00", lake_conn_id="x")
    assert trigger.serialize()[1]["lake_conn_id"] == "x"


def test_the_embedded_stack_registers_every_role() -> None:
    env = components.airflow_env(
        Settings(),
        ports={"airflow": 1, "airflow_worker_logs": 2, "airflow_trigger_logs": 3},
        secrets={"api_secret": "a", "jwt_secret": "j", "fernet_key": "f"},
        endpoints={
            "kafka_bootstrap": "127.0.0.1:9",
            "hdfs_uri": "hdfs://127.0.0.1:8",
            "namenode_http": "http://127.0.0.1:7",
        },
    )
    # connections live in Airflow's metadata database, never in the environment
    assert not [key for key in env if key.startswith("AIRFLOW_CONN_")]
    registered = components.stack_connections(
        Settings(),
        {
            "kafka_bootstrap": "127.0.0.1:9",
            "hdfs_uri": "hdfs://127.0.0.1:8",
            "namenode_http": "http://127.0.0.1:7",
        },
    )
    assert set(registered) == set(connections.ALL)
    assert registered[connections.KAFKA_INGEST]["extra"]["bootstrap.servers"] == "127.0.0.1:9"
    assert registered[connections.LAKE]["extra"]["webhdfs_url"] == "http://127.0.0.1:7"


def _ingest_default(cls: type[Any]) -> object:
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            parameter = inspect.signature(klass.__init__).parameters.get("ingest_conn_id")
            if parameter is not None:
                return parameter.default
    return None
