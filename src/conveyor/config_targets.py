"""Configuration files for a deployment target, rendered from the stack's shared templates.

`conveyor stack up` renders the Kafka and Hadoop templates for loopback and free ports. The
compose target renders the very same templates with compose service names, fixed ports and
container paths into `docker/config/` (committed; docker-compose.yml mounts them), so the two
stacks differ only in hosts, ports and data paths. The Spark defaults render from settings, so
they fit the embedded stack, docker-compose or a real cluster alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conveyor import jars
from conveyor.errors import ConveyorError
from conveyor.settings import Settings
from conveyor.stack import change_capture, config_files, security

SPARK_DEFAULTS = "spark/spark-defaults.conf"


@dataclass(frozen=True)
class ConfigFile:
    """One file of a target: its path inside the target folder, its template and values."""

    path: str
    template: str
    values: dict[str, object]
    # more templates rendered after the first, in order (the secured Kafka's security part)
    appendix: tuple[tuple[str, dict[str, object]], ...] = ()

    def render(self) -> str:
        parts = [config_files.render(self.template, self.values)]
        parts += [config_files.render(name, values) for name, values in self.appendix]
        return "\n".join(parts)


@dataclass(frozen=True)
class ComposeTopology:
    """Service names, in-network ports and container paths of docker-compose.yml."""

    kafka_host: str = "kafka"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    kafka_data_dir: str = "/var/lib/kafka/data"
    namenode_host: str = "namenode"
    namenode_port: int = 8020
    namenode_http_port: int = 9870
    datanode_host: str = "datanode"
    datanode_port: int = 9866
    datanode_http_port: int = 9864
    datanode_ipc_port: int = 9867
    hdfs_data_dir: str = "/data/hdfs"
    hdfs_user: str = "conveyor"
    # the secured profile (docker-compose.secure.yml): where the secrets volume is mounted
    kafka_secrets_dir: str = "/etc/conveyor/kafka-secrets"
    spark_master_host: str = "spark-master"
    spark_master_port: int = 7077
    airflow_host: str = "airflow-api-server"
    airflow_port: int = 8080
    jars_dir: str = "/opt/conveyor/jars"
    # the `cdc` profile: Kafka Connect with Debezium's jars in its plugin folder, and the
    # Postgres it reads (its password generated into the cdc-secrets volume on first start)
    connect_host: str = "connect"
    connect_port: int = 8083
    connect_plugin_path: str = "/opt/conveyor/connect-plugins"
    postgres_host: str = "cdc-postgres"
    postgres_port: int = 5432
    postgres_database: str = "conveyor"
    postgres_user: str = "conveyor"
    cdc_secrets_dir: str = "/etc/conveyor/cdc-secrets"

    def endpoints(self) -> dict[str, str]:
        """The `CONVEYOR_*` endpoint values every Conveyor container gets (name -> value)."""
        return {
            "CONVEYOR_KAFKA_BOOTSTRAP": f"{self.kafka_host}:{self.kafka_port}",
            "CONVEYOR_HDFS_URI": f"hdfs://{self.namenode_host}:{self.namenode_port}",
            "CONVEYOR_WEBHDFS_URL": f"http://{self.namenode_host}:{self.namenode_http_port}",
            "CONVEYOR_AIRFLOW_URL": f"http://{self.airflow_host}:{self.airflow_port}",
            "CONVEYOR_SPARK_MASTER": f"spark://{self.spark_master_host}:{self.spark_master_port}",
            "CONVEYOR_CONNECT_URL": f"http://{self.connect_host}:{self.connect_port}",
            "CONVEYOR_POSTGRES_HOST": self.postgres_host,
            "CONVEYOR_POSTGRES_PORT": str(self.postgres_port),
            "CONVEYOR_POSTGRES_DATABASE": self.postgres_database,
            "CONVEYOR_POSTGRES_USER": self.postgres_user,
            "CONVEYOR_POSTGRES_PASSWORD_FILE": f"{self.cdc_secrets_dir}/postgres-password",
        }

    def settings(self) -> Settings:
        """Conveyor settings as a container of the compose stack sees them."""
        env = self.endpoints()
        return Settings(
            kafka_bootstrap=env["CONVEYOR_KAFKA_BOOTSTRAP"],
            hdfs_uri=env["CONVEYOR_HDFS_URI"],
            webhdfs_url=env["CONVEYOR_WEBHDFS_URL"],
            airflow_url=env["CONVEYOR_AIRFLOW_URL"],
            spark_master=env["CONVEYOR_SPARK_MASTER"],
            jars_dir=Path(self.jars_dir),
        )


COMPOSE = ComposeTopology()


def spark_defaults(settings: Settings) -> ConfigFile:
    """spark-defaults.conf for settings: the lake's file system, the Spark jars folder and
    Conveyor's own jar."""
    spark_jars = jars.classpath_dir(settings.jars_dir, "spark") / "*.jar"
    ours = jars.classpath_dir(settings.jars_dir, jars.MODULE) / jars.MODULE_JAR
    return ConfigFile(
        SPARK_DEFAULTS,
        "spark-defaults.conf",
        {"fs_uri": settings.fs_uri, "spark_jars": f"{spark_jars.as_posix()},{ours.as_posix()}"},
    )


def _compose_kafka(t: ComposeTopology) -> dict[str, object]:
    """The compose broker's template values (plaintext listeners)."""
    return {
        "bind_host": "0.0.0.0",
        "advertised_host": t.kafka_host,
        "controller_host": t.kafka_host,
        "broker_port": t.kafka_port,
        "controller_port": t.kafka_controller_port,
        "data_dir": t.kafka_data_dir,
        "node_id": 1,
        "quorum_voters": f"1@{t.kafka_host}:{t.kafka_controller_port}",
        "replication": 1,
        "internal_min_isr": 1,
        **security.listener_values(False),
    }


def _compose_hdfs(t: ComposeTopology) -> dict[str, object]:
    """The compose NameNode's and DataNode's template values (permissions off)."""
    return {
        "bind_host": "0.0.0.0",
        "namenode_host": t.namenode_host,
        "datanode_host": t.datanode_host,
        "namenode_port": t.namenode_port,
        "namenode_http_port": t.namenode_http_port,
        "datanode_port": t.datanode_port,
        "datanode_http_port": t.datanode_http_port,
        "datanode_ipc_port": t.datanode_ipc_port,
        "data_dir": t.hdfs_data_dir,
        "user": t.hdfs_user,
        "replication": 1,
        "permissions": "false",
    }


def compose_files(topology: ComposeTopology = COMPOSE) -> list[ConfigFile]:
    """Every file docker-compose.yml mounts from docker/config/."""
    t = topology
    kafka, hdfs = _compose_kafka(t), _compose_hdfs(t)
    secured_kafka = {**kafka, **security.listener_values(True)}
    connect = change_capture.connect_values(
        f"{t.kafka_host}:{t.kafka_port}",
        replication=1,
        rest_port=t.connect_port,
        plugin_path=t.connect_plugin_path,
        bind_host="0.0.0.0",
        advertised_host=t.connect_host,
    )
    return [
        ConfigFile("kafka/server.properties", "kafka-server.properties", kafka),
        ConfigFile("kafka/log4j2.properties", "kafka-log4j2.properties", {}),
        ConfigFile("hadoop/core-site.xml", "core-site.xml", hdfs),
        ConfigFile("hadoop/hdfs-site.xml", "hdfs-site.xml", hdfs),
        ConfigFile("hadoop/log4j.properties", "hadoop-log4j.properties", {}),
        spark_defaults(t.settings()),
        ConfigFile(
            "connect/connect-distributed.properties", "connect-distributed.properties", connect
        ),
        ConfigFile("connect/log4j2.properties", "kafka-log4j2.properties", {}),
        # the `docker-compose.secure.yml` override mounts these instead
        ConfigFile(
            "kafka-secure/server.properties",
            "kafka-server.properties",
            secured_kafka,
            appendix=(
                (
                    "kafka-security.properties",
                    security.kafka_security_values(t.kafka_secrets_dir),
                ),
            ),
        ),
        ConfigFile("kafka-secure/log4j2.properties", "kafka-log4j2.properties", {}),
        ConfigFile("hadoop-secure/hdfs-site.xml", "hdfs-site.xml", {**hdfs, "permissions": "true"}),
    ]


def local_files(settings: Settings) -> list[ConfigFile]:
    """Files for the embedded stack beyond those `stack up` renders itself (the Spark defaults)."""
    return [spark_defaults(settings)]


TARGETS = ("compose", "local")


def target_files(target: str, settings: Settings) -> list[ConfigFile]:
    if target == "compose":
        return compose_files()
    if target == "local":
        return local_files(settings)
    raise UnknownTarget(target)


def write_files(files: list[ConfigFile], out: Path) -> list[Path]:
    """Render files under out (folders created); returns the paths written."""
    written = []
    for item in files:
        target = out / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(item.render())
        written.append(target)
    return written


def stale_files(files: list[ConfigFile], out: Path) -> list[str]:
    """Paths under out that are missing or differ from a fresh render."""
    stale = []
    for item in files:
        target = out / item.path
        if not target.is_file() or target.read_text() != item.render():
            stale.append(item.path)
    return stale


class UnknownTarget(ConveyorError):
    """render-config was asked for a target it does not know."""

    def __init__(self, target: str) -> None:
        super().__init__(f"unknown target {target!r}: use one of {', '.join(TARGETS)}")
