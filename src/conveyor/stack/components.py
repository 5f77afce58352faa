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
from typing import Any

from conveyor import connections, jars, webhdfs
from conveyor.settings import LOOPBACK, Settings, write_secret
from conveyor.stack import config_files, security
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


def jvm_classpath(settings: Settings, name: str, *extra: Path) -> str:
    entries = [str(p) for p in extra]
    entries.append(str(jars.classpath_dir(settings.jars_dir, name) / "*"))
    jars.jar_files(settings.jars_dir, name)  # raises a clear error when not resolved
    return os.pathsep.join(entries)


# ---------------------------------------------------------------- topology


@dataclass(frozen=True)
class Topology:
    """How many Kafka nodes and DataNodes the embedded stack runs (1 and 1 by default).

    Every Kafka node is broker and controller at once (KRaft combined mode): three JVMs give a
    three-voter quorum and three brokers, where separate controllers would need three more
    JVMs on a 2-core machine. HDFS replication and Kafka's internal topics follow the count,
    capped at 3.
    """

    brokers: int = 1
    datanodes: int = 1
    secure: bool = False

    @property
    def kafka_replication(self) -> int:
        return min(3, self.brokers)

    @property
    def hdfs_replication(self) -> int:
        return min(3, self.datanodes)

    def kafka_names(self) -> list[str]:
        return [f"kafka-{i}" for i in range(self.brokers)]

    def datanode_names(self) -> list[str]:
        return [f"datanode-{i}" for i in range(self.datanodes)]

    def port_names(self) -> list[str]:
        names = []
        for i in range(self.brokers):
            names += [f"kafka_{i}", f"kafka_controller_{i}"]
        names += ["namenode", "namenode_http"]
        for i in range(self.datanodes):
            names += [f"datanode_{i}", f"datanode_http_{i}", f"datanode_ipc_{i}"]
        return names

    def as_dict(self) -> dict[str, int | bool]:
        return {"brokers": self.brokers, "datanodes": self.datanodes, "secure": self.secure}


def role_of(name: str) -> str:
    """A component's role from its name (`kafka-1` -> `broker+controller`)."""
    if name.startswith("kafka-"):
        return "broker+controller"
    if name.startswith("datanode-"):
        return "datanode"
    return name


def node_index(name: str) -> int:
    """The index in `kafka-<i>` / `datanode-<i>`."""
    return int(name.rsplit("-", 1)[1])


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


def kafka_root(settings: Settings, node: int) -> Path:
    """Node 0 keeps the single-node stack's folder, so an existing stack keeps its data."""
    return settings.home / ("kafka" if node == 0 else f"kafka-{node}")


def kafka_bootstrap(ports: Mapping[str, int], topology: Topology) -> str:
    return ",".join(f"{LOOPBACK}:{ports[f'kafka_{i}']}" for i in range(topology.brokers))


def kafka_launch(
    settings: Settings,
    ports: Mapping[str, int],
    topology: Topology,
    node: int,
    cluster_id: str,
) -> Launch:
    """Render node's server.properties, format its KRaft storage on first start, describe it."""
    root = kafka_root(settings, node)
    data = root / "data"
    voters = ",".join(
        f"{i + 1}@{LOOPBACK}:{ports[f'kafka_controller_{i}']}" for i in range(topology.brokers)
    )
    values = {
        "bind_host": LOOPBACK,
        "advertised_host": LOOPBACK,
        "controller_host": LOOPBACK,
        "broker_port": ports[f"kafka_{node}"],
        "controller_port": ports[f"kafka_controller_{node}"],
        "data_dir": data,
        "node_id": node + 1,
        "quorum_voters": voters,
        "replication": topology.kafka_replication,
        "internal_min_isr": min(2, topology.kafka_replication),
        **security.listener_values(topology.secure),
    }
    text = config_files.render("kafka-server.properties", values)
    files = security.security_files(settings.home)
    if topology.secure:
        text += "\n" + config_files.render(
            "kafka-security.properties", security.kafka_security_values(files.root)
        )
    # the secured node's file holds the admin and keystore passwords
    server = write_secret(root / "server.properties", text)
    log4j = config_files.write("kafka-log4j2.properties", {}, root / "log4j2.properties")
    classpath = jvm_classpath(settings, "kafka")
    # three brokers share the machine with HDFS, Airflow and Spark: small heaps
    heap = "512m" if topology.brokers == 1 else "256m"
    base = [
        java(),
        "-Xms64m",
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        classpath,
    ]
    if not (data / "meta.properties").is_file():
        scram = security.scram_arguments(files) if topology.secure else []
        _format_kafka(root, base, ["format", "-t", cluster_id, "-c", str(server), *scram], node)
    bootstrap = f"{LOOPBACK}:{ports[f'kafka_{node}']}"
    options = security.client_options(files, security.ADMIN) if topology.secure else {}
    return Launch(
        name=f"kafka-{node}",
        command=[*base, "kafka.Kafka", str(server)],
        env=dict(os.environ),
        log_file=settings.home / "logs" / f"kafka-{node}.log",
        healthy=lambda: kafka_broker_ready(bootstrap, node + 1, options),
        ports=(ports[f"kafka_{node}"], ports[f"kafka_controller_{node}"]),
    )


def _format_kafka(root: Path, base: list[str], arguments: list[str], node: int) -> None:
    """Run Kafka's storage tool. Its arguments go in a 0600 argument file read by the JVM
    (`java @file`), so the SCRAM passwords they carry never show on a command line."""
    argfile = security.write_argfile(root / "format.args", ["kafka.tools.StorageTool", *arguments])
    try:
        result = subprocess.run([*base, f"@{argfile}"], capture_output=True, text=True, check=False)
    finally:
        argfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise ComponentStartError(
            f"kafka-{node}: formatting storage in {root / 'data'} failed:\n"
            f"{result.stdout}{result.stderr}"
        )


def kafka_broker_ready(
    bootstrap: str, node_id: int, options: Mapping[str, object] | None = None
) -> bool:
    """The broker at bootstrap answers and the cluster lists it unfenced (options: the
    admin principal's security settings on the secured stack)."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=3000, **dict(options or {})
        )
    except (KafkaError, OSError, ValueError):
        return False
    try:
        brokers = admin.describe_cluster().get("brokers", [])
        return any(b.get("broker_id") == node_id and not b.get("is_fenced") for b in brokers)
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


# ---------------------------------------------------------------- HDFS


def hdfs_conf_dir(
    settings: Settings, ports: Mapping[str, int], topology: Topology, datanode: int = 0
) -> Path:
    """Render core-site/hdfs-site/log4j for the NameNode and DataNode 0 (`hdfs/conf`) or for
    DataNode i (`hdfs/conf-datanode-<i>`, its own ports and storage); returns the folder."""
    conf = settings.home / "hdfs" / ("conf" if datanode == 0 else f"conf-datanode-{datanode}")
    data_dir = settings.home / "hdfs"
    if datanode:
        data_dir = data_dir / f"datanode-{datanode}"
    values = {
        "bind_host": LOOPBACK,
        "namenode_host": LOOPBACK,
        "datanode_host": LOOPBACK,
        "namenode_port": ports["namenode"],
        "namenode_http_port": ports["namenode_http"],
        "datanode_port": ports[f"datanode_{datanode}"],
        "datanode_http_port": ports[f"datanode_http_{datanode}"],
        "datanode_ipc_port": ports[f"datanode_ipc_{datanode}"],
        "data_dir": data_dir,
        "user": webhdfs.hdfs_user(),
        "replication": topology.hdfs_replication,
        "permissions": str(topology.secure).lower(),
    }
    config_files.write("core-site.xml", values, conf / "core-site.xml")
    config_files.write("hdfs-site.xml", values, conf / "hdfs-site.xml")
    config_files.write("hadoop-log4j.properties", {}, conf / "log4j.properties")
    # The Maven jars carry no web UI resources; HTTP servers only need the folders to exist.
    for app in ("hdfs", "datanode", "static", "secondary"):
        (conf / "webapps" / app).mkdir(parents=True, exist_ok=True)
    return conf


HDFS_SUPERUSER = "hdfs"
"""Who the secured stack's NameNode and DataNodes run as: the HDFS superuser, not Conveyor."""


def _hadoop_env(topology: Topology) -> dict[str, str]:
    env = dict(os.environ)
    if topology.secure:
        # the NameNode's superuser is the user it runs as; Conveyor's user must not be it
        env["HADOOP_USER_NAME"] = HDFS_SUPERUSER
    return env


def _hadoop_command(settings: Settings, conf: Path, main: str, heap: str) -> list[str]:
    return [
        java(),
        "-Xms64m",
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",
        "-Dhadoop.log.dir=" + str(settings.home / "logs"),
        "-cp",
        jvm_classpath(settings, "hdfs", conf),
        main,
    ]


def namenode_launch(settings: Settings, ports: Mapping[str, int], topology: Topology) -> Launch:
    conf = hdfs_conf_dir(settings, ports, topology)
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
            env=_hadoop_env(topology),
        )
        if result.returncode != 0:
            raise ComponentStartError(f"namenode: format failed:\n{result.stdout[-3000:]}")
    http = f"http://{LOOPBACK}:{ports['namenode_http']}"
    return Launch(
        name="namenode",
        command=_hadoop_command(settings, conf, main, "512m"),
        env=_hadoop_env(topology),
        log_file=settings.home / "logs" / "namenode.log",
        healthy=lambda: namenode_active(http),
        ports=(ports["namenode"], ports["namenode_http"]),
    )


def datanode_launch(
    settings: Settings, ports: Mapping[str, int], topology: Topology, node: int
) -> Launch:
    conf = hdfs_conf_dir(settings, ports, topology, node)
    http = f"http://{LOOPBACK}:{ports['namenode_http']}"
    own_http = f"http://{LOOPBACK}:{ports[f'datanode_http_{node}']}"
    transfer = ports[f"datanode_{node}"]
    heap = "384m" if topology.datanodes == 1 else "256m"
    return Launch(
        name=f"datanode-{node}",
        command=_hadoop_command(
            settings, conf, "org.apache.hadoop.hdfs.server.datanode.DataNode", heap
        ),
        env=_hadoop_env(topology),
        log_file=settings.home / "logs" / f"datanode-{node}.log",
        healthy=lambda: datanode_registered(own_http) and hdfs_writable(http),
        ports=(transfer, ports[f"datanode_http_{node}"], ports[f"datanode_ipc_{node}"]),
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


def datanode_registered(http: str) -> bool:
    """The DataNode at http (its own web port) runs and has registered with the NameNode."""
    raw = _jmx(http, "Hadoop:service=DataNode,name=DataNodeInfo").get("BPServiceActorInfo")
    try:
        actors = json.loads(raw) if isinstance(raw, str) else []
    except json.JSONDecodeError:
        return False
    return any(a.get("ActorState") == "RUNNING" and a.get("BlockPoolID") for a in actors)


def hdfs_mkdirs(http: str, path: str, user: str, owner: str | None = None) -> None:
    """Create a directory (and parents) through WebHDFS as user; with owner, hand it to owner
    and this process's group with mode 750 (user must be the HDFS superuser then)."""
    webhdfs_at = webhdfs.webhdfs_at
    if not webhdfs_at(http, path, "MKDIRS", method="PUT", user=user).get("boolean"):
        raise ComponentStartError(f"hdfs: could not create {path}")
    if owner:
        import grp

        group = grp.getgrgid(os.getgid()).gr_name
        webhdfs_at(
            http, path, "SETOWNER", method="PUT", user=user, params={"owner": owner, "group": group}
        )
        webhdfs_at(
            http, path, "SETPERMISSION", method="PUT", user=user, params={"permission": "750"}
        )


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
        "CONVEYOR_HOME": str(settings.home),
        "CONVEYOR_JARS_DIR": str(settings.jars_dir),
        "PATH": venv_bin + os.pathsep + os.environ.get("PATH", ""),
    }
    return env


def airflow_migrate(env: Mapping[str, str]) -> None:
    """Create or upgrade Airflow's metadata database (`airflow db migrate`)."""
    home = Path(env["AIRFLOW_HOME"])
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
        cwd=home,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise ComponentStartError(f"airflow: `airflow db migrate` failed:\n{tail}")


def stack_connections(settings: Settings, endpoints: Mapping[str, str]) -> dict[str, Any]:
    """The Airflow connections of the embedded stack, one per role (`conveyor.connections`);
    on the secured stack each Kafka role logs in as its own principal."""
    secured: dict[str, object] = {}
    if endpoints.get("kafka_security_protocol"):
        secured = {
            "kafka_security_protocol": endpoints["kafka_security_protocol"],
            "kafka_sasl_mechanism": endpoints["kafka_sasl_mechanism"],
            "kafka_ssl_cafile": endpoints["kafka_ca_file"],
            "kafka_credentials_file": endpoints["kafka_credentials_file"],
            "kafka_sasl_username": endpoints["kafka_ingest_username"],
            "kafka_admin_username": endpoints["kafka_admin_username"],
            "kafka_produce_username": endpoints["kafka_produce_username"],
        }
    values: dict[str, Any] = {
        **settings.model_dump(),
        "kafka_bootstrap": endpoints["kafka_bootstrap"],
        "hdfs_uri": endpoints["hdfs_uri"],
        "webhdfs_url": endpoints["namenode_http"],
        **secured,
    }
    return connections.airflow_connections(Settings(**values))


def airflow_register_connections(env: Mapping[str, str], conns: Mapping[str, Any]) -> None:
    """Store the connections in the stack's Airflow metadata database (replacing older ones);
    they travel on stdin, never as arguments or environment."""
    result = subprocess.run(
        [sys.executable, "-m", "conveyor.connections", "--replace"],
        input=json.dumps(conns),
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
        cwd=Path(env["AIRFLOW_HOME"]),
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise ComponentStartError(f"airflow: registering the connections failed:\n{tail}")


def airflow_launch(settings: Settings, env: Mapping[str, str], part: str) -> Launch:
    """One Airflow process (a part of AIRFLOW_PARTS) of the embedded stack."""
    api = env["AIRFLOW__API__BASE_URL"]
    command = [sys.executable, "-m", "airflow", part]
    if part == "api-server":
        command += ["--host", LOOPBACK, "--port", env["AIRFLOW__API__PORT"]]
    inherited = {k: v for k, v in os.environ.items() if k != "_AIRFLOW_PROCESS_CONTEXT"}
    return Launch(
        name=f"airflow-{part}",
        command=command,
        env={**inherited, **env},
        log_file=settings.home / "logs" / f"airflow-{part}.log",
        healthy=_airflow_part_healthy(api, part),
        cwd=Path(env["AIRFLOW_HOME"]),
    )


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
