"""The embedded stack's components: how each is prepared, started and checked for health.

Each component renders its configuration under `$CONVEYOR_HOME/<name>/`, formats its storage on
first start, runs as one process group, and is healthy when a real client call succeeds.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conveyor import connections, jars
from conveyor.settings import LOOPBACK, Settings
from conveyor.stack import config_files
from conveyor.stack.process import ComponentStartError, log_tail


@dataclass(frozen=True)
class Launch:
    """What it takes to run one component: its command, environment and health check."""

    name: str
    command: list[str]
    env: dict[str, str]
    log_file: Path
    healthy: Callable[[], bool]
    cwd: Path | None = None
    ports: tuple[int, ...] = field(default_factory=tuple)


def java() -> str:
    found = jars.java_binary()
    if found is None:
        raise ComponentStartError("java is not installed (JAVA_HOME unset and no java on PATH)")
    return str(found)


def _classpath(settings: Settings, name: str, *extra: Path) -> str:
    entries = [str(p) for p in extra]
    entries.append(str(jars.classpath_dir(settings.jars_dir, name) / "*"))
    jars.jar_files(settings.jars_dir, name)  # raises a clear error when not resolved
    return os.pathsep.join(entries)


# ---------------------------------------------------------------- Kafka


def kafka_cluster_id() -> str:
    """A random KRaft cluster id: 22 url-safe base64 characters, never starting with "-".

    Kafka's storage tool parses its arguments with argparse, which takes a value that starts
    with "-" for an option (one id in 64 did, and formatting failed).
    """
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def kafka_launch(settings: Settings, ports: Mapping[str, int]) -> Launch:
    """Render server.properties, format KRaft storage on first start, and describe the broker."""
    root = settings.home / "kafka"
    data = root / "data"
    values = {
        "bind_host": LOOPBACK,
        "advertised_host": LOOPBACK,
        "controller_host": LOOPBACK,
        "broker_port": ports["kafka"],
        "controller_port": ports["kafka_controller"],
        "data_dir": data,
    }
    server = config_files.write("kafka-server.properties", values, root / "server.properties")
    log4j = config_files.write("kafka-log4j2.properties", {}, root / "log4j2.properties")
    classpath = _classpath(settings, "kafka")
    base = [
        java(),
        "-Xms64m",
        "-Xmx512m",
        "-XX:+UseSerialGC",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        classpath,
    ]
    if not (data / "meta.properties").is_file():
        cluster_id = kafka_cluster_id()
        result = subprocess.run(
            [*base, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(server)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ComponentStartError(
                f"kafka: formatting storage in {data} failed:\n{result.stdout}{result.stderr}"
            )
    bootstrap = f"{LOOPBACK}:{ports['kafka']}"
    return Launch(
        name="kafka",
        command=[*base, "kafka.Kafka", str(server)],
        env=dict(os.environ),
        log_file=settings.home / "logs" / "kafka.log",
        healthy=lambda: kafka_answers(bootstrap),
        ports=(ports["kafka"], ports["kafka_controller"]),
    )


def kafka_answers(bootstrap: str) -> bool:
    """True when the broker answers a metadata request."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


# ---------------------------------------------------------------- HDFS


def hdfs_conf_dir(settings: Settings, ports: Mapping[str, int]) -> Path:
    """Render core-site/hdfs-site/log4j for the embedded HDFS; returns the conf folder."""
    conf = settings.home / "hdfs" / "conf"
    values = {
        "bind_host": LOOPBACK,
        "namenode_host": LOOPBACK,
        "datanode_host": LOOPBACK,
        "namenode_port": ports["namenode"],
        "namenode_http_port": ports["namenode_http"],
        "datanode_port": ports["datanode"],
        "datanode_http_port": ports["datanode_http"],
        "datanode_ipc_port": ports["datanode_ipc"],
        "data_dir": settings.home / "hdfs",
        "user": os.environ.get("USER", "conveyor"),
    }
    config_files.write("core-site.xml", values, conf / "core-site.xml")
    config_files.write("hdfs-site.xml", values, conf / "hdfs-site.xml")
    config_files.write("hadoop-log4j.properties", {}, conf / "log4j.properties")
    # The Maven jars carry no web UI resources; HTTP servers only need the folders to exist.
    for app in ("hdfs", "datanode", "static", "secondary"):
        (conf / "webapps" / app).mkdir(parents=True, exist_ok=True)
    return conf


def _hadoop_command(settings: Settings, conf: Path, main: str, heap: str) -> list[str]:
    return [
        java(),
        "-Xms64m",
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",
        "-Dhadoop.log.dir=" + str(settings.home / "logs"),
        "-cp",
        _classpath(settings, "hdfs", conf),
        main,
    ]


def namenode_launch(settings: Settings, ports: Mapping[str, int]) -> Launch:
    conf = hdfs_conf_dir(settings, ports)
    main = "org.apache.hadoop.hdfs.server.namenode.NameNode"
    if not (settings.home / "hdfs" / "name" / "current" / "VERSION").is_file():
        result = subprocess.run(
            [
                *_hadoop_command(settings, conf, main, "256m"),
                "-format",
                "-nonInteractive",
                "-force",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ComponentStartError(f"namenode: format failed:\n{result.stdout[-3000:]}")
    http = f"http://{LOOPBACK}:{ports['namenode_http']}"
    return Launch(
        name="namenode",
        command=_hadoop_command(settings, conf, main, "512m"),
        env=dict(os.environ),
        log_file=settings.home / "logs" / "namenode.log",
        healthy=lambda: namenode_active(http),
        ports=(ports["namenode"], ports["namenode_http"]),
    )


def datanode_launch(settings: Settings, ports: Mapping[str, int]) -> Launch:
    conf = hdfs_conf_dir(settings, ports)
    http = f"http://{LOOPBACK}:{ports['namenode_http']}"
    return Launch(
        name="datanode",
        command=_hadoop_command(
            settings, conf, "org.apache.hadoop.hdfs.server.datanode.DataNode", "384m"
        ),
        env=dict(os.environ),
        log_file=settings.home / "logs" / "datanode.log",
        healthy=lambda: hdfs_writable(http),
        ports=(ports["datanode"], ports["datanode_http"], ports["datanode_ipc"]),
    )


def _jmx(http: str, query: str) -> dict[str, object]:
    try:
        with urllib.request.urlopen(f"{http}/jmx?qry={query}", timeout=3) as response:
            beans = json.load(response).get("beans", [])
    except (urllib.error.URLError, OSError, json.JSONDecodeError):
        return {}
    return beans[0] if beans else {}


def namenode_active(http: str) -> bool:
    return _jmx(http, "Hadoop:service=NameNode,name=NameNodeStatus").get("State") == "active"


def hdfs_writable(http: str) -> bool:
    """A DataNode is live and the NameNode has left safe mode."""
    state = _jmx(http, "Hadoop:service=NameNode,name=FSNamesystemState")
    info = _jmx(http, "Hadoop:service=NameNode,name=NameNodeInfo")
    live = state.get("NumLiveDataNodes")
    return isinstance(live, int) and live >= 1 and info.get("Safemode") == ""


def hdfs_mkdirs(http: str, path: str, user: str) -> None:
    """Create a directory (and parents) through WebHDFS."""
    from conveyor.lake import webhdfs_at

    if not webhdfs_at(http, path, "MKDIRS", method="PUT", user=user).get("boolean"):
        raise ComponentStartError(f"hdfs: could not create {path}")


# ---------------------------------------------------------------- Airflow

AIRFLOW_PARTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def airflow_env(
    settings: Settings,
    ports: Mapping[str, int],
    secrets: Mapping[str, str],
    endpoints: Mapping[str, str],
) -> dict[str, str]:
    """Environment shared by every Airflow process of the embedded stack (and by dag.test())."""
    home = settings.home / "airflow"
    api = f"http://{LOOPBACK}:{ports['airflow']}"
    registered = connections.airflow_connections(
        Settings(
            **{
                **settings.model_dump(),
                "kafka_bootstrap": endpoints["kafka_bootstrap"],
                "hdfs_uri": endpoints["hdfs_uri"],
                "webhdfs_url": endpoints["namenode_http"],
            }
        )
    )
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.plugins_folder),
        "AIRFLOW__CORE__PARALLELISM": str(settings.airflow_parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(settings.airflow_parallelism),
        # SQLite lets one writer in at a time; its default 5 s wait for the lock was too short
        # for the API server while the scheduler and two task runners wrote (an HTTP 500 on
        # unpausing a DAG in a full test run)
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=60",
        "AIRFLOW__API__HOST": LOOPBACK,
        "AIRFLOW__API__PORT": str(ports["airflow"]),
        "AIRFLOW__API__BASE_URL": api,
        "AIRFLOW__API__SECRET_KEY": secrets["api_secret"],
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets["jwt_secret"],
        "AIRFLOW__CORE__FERNET_KEY": secrets["fernet_key"],
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{settings.airflow_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["airflow_worker_logs"]),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["airflow_trigger_logs"]),
        # one connection per role (conveyor.connections)
        **{f"AIRFLOW_CONN_{cid.upper()}": json.dumps(c) for cid, c in registered.items()},
        "CONVEYOR_HOME": str(settings.home),
        "CONVEYOR_JARS_DIR": str(settings.jars_dir),
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
    }
    return env


def airflow_launches(settings: Settings, env: Mapping[str, str]) -> list[Launch]:
    """Migrate the metadata DB, then describe the four Airflow processes."""
    home = Path(env["AIRFLOW_HOME"])
    full_env = {**os.environ, **env}
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        env=full_env,
        check=False,
        cwd=home,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise ComponentStartError(f"airflow: `airflow db migrate` failed:\n{tail}")
    api = env["AIRFLOW__API__BASE_URL"]
    launches = []
    for part in AIRFLOW_PARTS:
        command = [sys.executable, "-m", "airflow", part]
        if part == "api-server":
            command += ["--host", LOOPBACK, "--port", env["AIRFLOW__API__PORT"]]
        launches.append(
            Launch(
                name=f"airflow-{part}",
                command=command,
                env=full_env,
                log_file=settings.home / "logs" / f"airflow-{part}.log",
                healthy=_airflow_part_healthy(api, part),
                cwd=home,
            )
        )
    return launches


def airflow_health(api: str) -> dict[str, object]:
    try:
        with urllib.request.urlopen(f"{api}/api/v2/monitor/health", timeout=3) as response:
            health: dict[str, object] = json.load(response)
            return health
    except (urllib.error.URLError, OSError, json.JSONDecodeError):
        return {}


def _airflow_part_healthy(api: str, part: str) -> Callable[[], bool]:
    key = {
        "api-server": "metadatabase",
        "scheduler": "scheduler",
        "dag-processor": "dag_processor",
        "triggerer": "triggerer",
    }[part]

    def check() -> bool:
        entry = airflow_health(api).get(key)
        return isinstance(entry, dict) and entry.get("status") == "healthy"

    return check


def failure_message(launch: Launch, reason: str) -> str:
    return f"{launch.name}: {reason}; last lines of {launch.log_file}:\n{log_tail(launch.log_file)}"
