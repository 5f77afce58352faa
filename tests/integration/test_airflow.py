"""Airflow against the running embedded api-server, and DAGs run for real with dag.test()."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import pytest

from conveyor.stack.process import wait_until
from tests.conftest import REPO


def _call(url: str, token: str | None = None, body: dict[str, Any] | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def airflow_token(stack: dict[str, Any]) -> str:
    reply = _call(
        f"{stack['airflow_url']}/auth/token",
        body={"username": stack["airflow_user"], "password": stack["airflow_password"]},
    )
    return str(reply["access_token"])


def test_health_endpoint_reports_every_component(stack: dict[str, Any]) -> None:
    health = _call(f"{stack['airflow_url']}/api/v2/monitor/health")
    for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"):
        assert health[part]["status"] == "healthy", part


def test_dag_list_needs_a_login_and_shows_the_repo_dags(stack: dict[str, Any]) -> None:
    with pytest.raises(urllib.error.HTTPError) as refused:
        _call(f"{stack['airflow_url']}/api/v2/dags")
    assert refused.value.code == 401

    token = airflow_token(stack)
    dag_files = {p.stem for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_")}

    def listed() -> bool:
        dags = _call(f"{stack['airflow_url']}/api/v2/dags?limit=100", token)["dags"]
        return dag_files <= {d["dag_id"] for d in dags}

    wait_until(listed, 120, what=f"the api-server to list the DAGs {sorted(dag_files)}")


def test_every_dag_imports_cleanly_without_heavy_modules(stack: dict[str, Any]) -> None:
    # `stack` exports the Airflow environment (plugins folder on sys.path, as for the processor).
    probe = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags')!r})\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'kafka', 'delta'))\n"
        "print(json.dumps({'errors': bag.import_errors, 'dags': bag.dag_ids, 'heavy': heavy}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    assert "conveyor_health" in report["dags"]
    assert report["heavy"] == []


def test_every_dag_follows_house_policy(stack: dict[str, Any]) -> None:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}  # a DAG that does not import would pass vacuously
    for dag_id, dag in bag.dags.items():
        assert dag.tags and "conveyor" in dag.tags, dag_id
        assert dag.doc_md, dag_id
        for task in dag.tasks:
            assert task.owner == "conveyor", f"{dag_id}.{task.task_id}"
            assert task.retries >= 1, f"{dag_id}.{task.task_id}"


def test_health_dag_runs_with_dag_test(stack: dict[str, Any]) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags" / "conveyor_health.py")).get_dag("conveyor_health")
    run = dag.test()
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"kafka_answers": "success", "lake_answers": "success"}


def test_the_provider_registers_conveyors_connection_types(stack: dict[str, Any]) -> None:
    """Conveyor is an Airflow provider: the API server's connection form offers its own types
    with their fields and help; the stack registered its connections under them; and a
    connection of the type Conveyor used before is moved to the new one, fields kept."""
    from conveyor.connections import register

    token = airflow_token(stack)
    base = stack["airflow_url"]
    meta = {m["connection_type"]: m for m in _call(f"{base}/ui/connections/hook_meta", token)}
    kafka = meta["conveyor_kafka"]
    assert kafka["hook_name"] == "Conveyor Kafka"
    fields = kafka["extra_fields"]
    assert set(fields) == {"bootstrap.servers", "security.protocol", "sasl.mechanism", "ssl.cafile"}
    assert "host:port" in fields["bootstrap.servers"]["description"]
    assert kafka["standard_fields"]["login"]["title"] == "SASL username"
    assert set(meta["conveyor_lake"]["extra_fields"]) == {
        "lake_path",
        "checkpoint_path",
        "webhdfs_url",
    }
    for conn_id, conn_type in (
        ("conveyor_kafka_admin", "conveyor_kafka"),
        ("conveyor_lake", "conveyor_lake"),
    ):
        assert _call(f"{base}/api/v2/connections/{conn_id}", token)["conn_type"] == conn_type

    legacy = {"conn_type": "kafka", "extra": {"bootstrap.servers": "legacy:9092"}}
    assert register({"cvt_legacy_kafka": legacy}, replace=True) == [
        "connection cvt_legacy_kafka added"
    ]
    wanted = {"conn_type": "conveyor_kafka", "extra": {"bootstrap.servers": "new:9092"}}
    lines = register({"cvt_legacy_kafka": wanted}, replace=False)
    assert lines == ["connection cvt_legacy_kafka: type kafka -> conveyor_kafka (fields kept)"]
    moved = _call(f"{base}/api/v2/connections/cvt_legacy_kafka", token)
    assert moved["conn_type"] == "conveyor_kafka"
    assert json.loads(moved["extra"])["bootstrap.servers"] == "legacy:9092"
