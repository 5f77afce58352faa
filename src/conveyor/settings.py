"""Conveyor's one settings object: every endpoint, path and knob, from `CONVEYOR_*` variables.

With nothing set, endpoints come from the embedded stack's state file (written by
`conveyor stack up`), so every command points at the running local stack. On a real cluster set
`CONVEYOR_KAFKA_BOOTSTRAP`, `CONVEYOR_HDFS_URI`, `CONVEYOR_SPARK_MASTER` and friends instead.

This module is the ground floor: it imports only `conveyor.errors`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from conveyor.errors import ConveyorError

LOOPBACK = "127.0.0.1"
STATE_FILE_NAME = "stack.json"


REDACTED = "[redacted]"
SECRET_CLIENT_OPTIONS = ("sasl_plain_password", "ssl_password")
# kafka-python logs a client's whole configuration (password included) at DEBUG
KAFKA_CLIENT_LOGGERS = ("kafka.admin.client", "kafka.producer.kafka", "kafka.consumer.group")


class RedactClientSecrets(logging.Filter):
    """Blanks secrets in client configurations that libraries log whole."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            record.args = {
                k: REDACTED if k in SECRET_CLIENT_OPTIONS else v for k, v in record.args.items()
            }
        elif isinstance(record.args, tuple):
            record.args = tuple(_redacted(arg) for arg in record.args)
        return True


def _redacted(value: object) -> object:
    if isinstance(value, Mapping) and any(key in value for key in SECRET_CLIENT_OPTIONS):
        return {k: REDACTED if k in SECRET_CLIENT_OPTIONS else v for k, v in value.items()}
    return value


_REDACT = RedactClientSecrets()


def project_root() -> Path:
    """The repository root when running from a checkout, else the working directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "jvm").is_dir():
            return parent
    return Path.cwd()


class Settings(BaseSettings):
    """Typed configuration. Explicit values win; unset endpoints fall back to the local stack."""

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="ignore", frozen=True)

    home: Path = Field(default_factory=lambda: project_root() / ".conveyor")
    jars_dir: Path = Field(default_factory=lambda: project_root() / ".jars")
    jvm_artifacts_file: Path = Field(default_factory=lambda: project_root() / "jvm/artifacts.toml")
    catalog: Path = Field(default_factory=lambda: project_root() / "conveyor.yaml")
    dags_folder: Path = Field(default_factory=lambda: project_root() / "dags")
    plugins_folder: Path = Field(default_factory=lambda: project_root() / "plugins")
    jobs_folder: Path = Field(default_factory=lambda: project_root() / "jobs")

    # Endpoints. Unset means "the embedded stack's".
    kafka_bootstrap: str | None = None
    hdfs_uri: str | None = None
    webhdfs_url: str | None = None
    airflow_url: str | None = None

    # Kafka client security; passed through to every Kafka client, never written in code.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None

    # Where the lake and the streaming checkpoints live inside the file system (never nested).
    lake_path: str = "/lake"
    checkpoint_path: str = "/checkpoints"

    # Spark.
    spark_master: str = "local[2]"
    spark_driver_memory: str = "1g"
    spark_shuffle_partitions: int = 2
    spark_extra_conf: dict[str, str] = Field(default_factory=dict)
    # HotSpot's compilers for Spark's JVMs. "tiered" (the default) ends in C2's optimised code,
    # which a long drain needs; "c1" (-XX:TieredStopAtLevel=1) skips C2, so a short run (a
    # backfill of a batch or two, a demo, a test run) spends its cores on the work instead of on
    # compiling: see README, Performance (measured there, both ways).
    spark_jit: Literal["tiered", "c1"] = "tiered"
    trigger_interval: str = "5 seconds"
    # Upper bound of records per micro-batch (available-now splits a backlog into batches of
    # this size), so a large backlog never has to fit in the driver's memory at once. Each
    # batch pays a fixed few seconds (four Delta commits on HDFS), so larger batches drain
    # faster (on 2 cores: 100k batches 8.7k events/s, 500k 14.7k, at the same peak memory).
    # With a 1g driver a batch of 1M clicks still fits: the default keeps a 2x margin.
    max_offsets_per_trigger: int = 500_000

    # How often Conveyor's sensors and triggers look again (the watermark sensor, for one).
    sensor_poke_interval_s: float = 300.0

    # Test-only: the least history `conveyor vacuum --i-know-this-is-a-test` may keep, as a
    # duration (`0s`, `1h`). Unset, nothing can go below the safe retention. Never set it in
    # production; Delta's own retention check stays on either way.
    test_only_min_vacuum_retention: str | None = None

    # Embedded stack: fixed ports are optional; 0 means "pick a free one (reused on restart)".
    kafka_port: int = 0
    hdfs_port: int = 0
    airflow_port: int = 0
    stack_start_timeout_s: float = 180.0
    # Kafka nodes (each broker and controller) and HDFS DataNodes of the embedded stack; unset
    # means as the stack was made (1 and 1 for a new one). `stack up --brokers 3 --datanodes 3`.
    stack_brokers: int | None = Field(default=None, ge=1, le=5)
    stack_datanodes: int | None = Field(default=None, ge=1, le=5)
    airflow_parallelism: int = 2
    airflow_user: str = "admin"

    @property
    def state_file(self) -> Path:
        return self.home / STATE_FILE_NAME

    @property
    def stack_state(self) -> dict[str, Any]:
        """Endpoints the embedded stack recorded, or {} when it was never started. Read from
        the state file at each use: a stack restarted while this process runs (on new free
        ports) is seen at once."""
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}
        return state.get("endpoints", {})

    def _endpoint(self, explicit: str | None, key: str) -> str:
        if explicit:
            return explicit
        value = self.stack_state.get(key)
        if not value:
            raise EndpointNotConfigured(key, self.state_file)
        return str(value)

    @property
    def kafka_servers(self) -> str:
        """Kafka bootstrap servers (host:port[,host:port])."""
        return self._endpoint(self.kafka_bootstrap, "kafka_bootstrap")

    @property
    def fs_uri(self) -> str:
        """Default file system URI, e.g. hdfs://namenode:8020."""
        return self._endpoint(self.hdfs_uri, "hdfs_uri")

    @property
    def namenode_http(self) -> str:
        """WebHDFS base URL of the NameNode, e.g. http://namenode:9870."""
        return self._endpoint(self.webhdfs_url, "namenode_http")

    @property
    def lake_uri(self) -> str:
        return self.fs_uri.rstrip("/") + self.lake_path

    @property
    def checkpoint_uri(self) -> str:
        return self.fs_uri.rstrip("/") + self.checkpoint_path

    @property
    def airflow_api(self) -> str:
        return self._endpoint(self.airflow_url, "airflow_url")

    def kafka_client_options(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python clients (security included, secrets unwrapped)."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.kafka_servers.split(","),
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_sasl_mechanism:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
                for name in KAFKA_CLIENT_LOGGERS:
                    logging.getLogger(name).addFilter(_REDACT)
        if self.kafka_ssl_cafile:
            options["ssl_cafile"] = str(self.kafka_ssl_cafile)
        return options

    def spark_kafka_options(self) -> dict[str, str]:
        """`kafka.*` options for Spark's Kafka source (security included; never log these)."""
        return _spark_kafka_security(self)


_JAAS_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}


def _spark_kafka_security(settings: Settings) -> dict[str, str]:
    options = {"kafka.security.protocol": settings.kafka_security_protocol}
    mechanism = settings.kafka_sasl_mechanism
    if mechanism:
        options["kafka.sasl.mechanism"] = mechanism
        password = (
            settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
        )
        module = _JAAS_MODULES.get(mechanism.upper(), _JAAS_MODULES["PLAIN"])
        options["kafka.sasl.jaas.config"] = (
            f'{module} required username="{settings.kafka_sasl_username}" password="{password}";'
        )
    if settings.kafka_ssl_cafile:
        options["kafka.ssl.truststore.type"] = "PEM"
        options["kafka.ssl.truststore.location"] = str(settings.kafka_ssl_cafile)
    return options


class EndpointNotConfigured(ConveyorError):
    """An endpoint is neither set in the environment nor recorded by a running local stack."""

    def __init__(self, key: str, state_file: Path) -> None:
        super().__init__(
            f"{key} is not configured: set CONVEYOR_{key.upper()} or start the embedded stack "
            f"with `conveyor stack up` (no state at {state_file})"
        )


class SettingsError(ConveyorError):
    """A setting (a CONVEYOR_* variable) has a value it cannot take; the message names it."""

    exit_code = 2


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with keyword overrides (used by tests and the CLI).
    Raises SettingsError naming each CONVEYOR_* variable whose value is refused."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        wrong = "; ".join(
            f"CONVEYOR_{'_'.join(str(part) for part in e['loc']).upper()}={e['input']!r}: "
            f"{e['msg']}"
            for e in exc.errors()
        )
        raise SettingsError(f"bad setting: {wrong}") from None
