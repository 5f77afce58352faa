"""The embedded stack: real components answer, `up` is idempotent, data survives a restart."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conveyor.kafka.clients import client_options
from conveyor.settings import Settings
from conveyor.stack.change_capture import CDC_COMPONENTS
from conveyor.stack.components import AIRFLOW_PARTS
from conveyor.stack.local import LocalStack
from conveyor.stack.process import ComponentStartError, is_running

EXPECTED = {"kafka-0", "namenode", "datanode-0", *(f"airflow-{p}" for p in AIRFLOW_PARTS)}
# started only `--with cdc` (the cdc_stack fixture), which other tests of the run may ask for
OPTIONAL = set(CDC_COMPONENTS)


def test_status_json_names_every_component_and_endpoint(stack: dict[str, object]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "stack", "status", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    status = json.loads(result.stdout)
    assert {c["name"] for c in status["components"]} - OPTIONAL == EXPECTED
    assert all(c["state"] == "running" for c in status["components"])
    kafka = next(c for c in status["components"] if c["name"] == "kafka-0")
    assert kafka["role"] == "broker+controller"
    assert kafka["pgid"] > 0
    assert f"127.0.0.1:{kafka['ports'][0]}" == status["kafka_bootstrap"]
    assert status["topology"] == {"brokers": 1, "datanodes": 1, "secure": False}
    for key in (
        "kafka_bootstrap",
        "hdfs_uri",
        "lake_uri",
        "airflow_url",
        "airflow_user",
        "airflow_password",
    ):
        assert status[key], key
    assert status["hdfs_uri"].startswith("hdfs://127.0.0.1:")
    assert status["lake_uri"] == status["hdfs_uri"] + "/lake"
    assert Path(status["airflow_password_file"]).is_file()


def test_up_twice_is_harmless(stack: dict[str, object]) -> None:
    local = LocalStack(Settings())
    before = {c["name"]: c["pgid"] for c in local.status()["components"]}
    again = local.up()
    after = {c["name"]: c["pgid"] for c in again["components"]}
    assert after == before
    assert again["kafka_bootstrap"] == stack["kafka_bootstrap"]


def test_lake_and_checkpoint_roots_exist(settings: Settings) -> None:
    from conveyor.webhdfs import webhdfs

    for path in ("/lake", "/checkpoints"):
        assert webhdfs(settings, path, "GETFILESTATUS")["FileStatus"]["type"] == "DIRECTORY"


def test_a_taken_port_stops_up_with_a_clear_error(stack: dict[str, object], tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        other = LocalStack(Settings(home=tmp_path / "other", kafka_port=port))
        with pytest.raises(ComponentStartError) as info:
            other.up()
    assert f"kafka-0 cannot start: port 127.0.0.1:{port} is already in use" in str(info.value)
    assert other.status()["components"] == []


def test_a_component_that_dies_reports_its_log(stack: dict[str, object], tmp_path: Path) -> None:
    home = tmp_path / "broken"
    (home / "kafka").mkdir(parents=True)
    # a data folder the broker cannot use: a file where its log directory should be
    (home / "kafka" / "data").write_text("not a directory")
    other = LocalStack(Settings(home=home))
    with pytest.raises(ComponentStartError) as info:
        other.up()
    message = str(info.value)
    assert message.startswith("kafka-0:")
    assert "last lines of" in message or "format" in message
    assert all(not is_running(c["pgid"]) for c in other._read_state()["components"].values())


def test_down_then_up_keeps_topics_and_tables(stack: dict[str, object], settings: Settings) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    from conveyor.webhdfs import list_dir, webhdfs

    topic = f"keep-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(**client_options(settings))
    admin.create_topics([NewTopic(topic, 1, 1)])
    admin.close()
    webhdfs(settings, f"/lake/{topic}", "MKDIRS", method="PUT")

    local = LocalStack(Settings())
    stopped = local.down()
    assert set(stopped) - OPTIONAL == EXPECTED
    assert not local.status()["running"]
    local.up()

    restarted = Settings()
    admin = KafkaAdminClient(**client_options(restarted))
    try:
        assert topic in admin.list_topics()
    finally:
        admin.close()
    assert topic in list_dir(restarted, "/lake")
