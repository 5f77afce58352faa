"""Conveyor's one settings object: every endpoint, path and knob, from `CONVEYOR_*` variables.

With nothing set, endpoints come from the embedded stack's state file (written by
`conveyor stack up`), so every command points at the running local stack. On a real cluster set
`CONVEYOR_KAFKA_BOOTSTRAP`, `CONVEYOR_HDFS_URI`, `CONVEYOR_SPARK_MASTER` and friends instead.

This module is the ground floor: it imports only `conveyor.errors`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from conveyor.errors import ConveyorError

LOOPBACK = "127.0.0.1"
STATE_FILE_NAME = "stack.json"


def project_root() -> Path:
    """The repository root when running from a checkout, else the working directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "jvm").is_dir():
            return parent
    return Path.cwd()


class Settings(BaseSettings):
    """Typed configuration. Explicit values win; unset endpoints fall back to the local stack."""

    model_config = SettingsConfigDict(
        env_prefix="CONVEYOR_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    home: Path = Field(default_factory=lambda: project_root() / ".conveyor")
    """The embedded stack's home: its state file, logs, data and secrets (default `.conveyor`
    in the checkout)."""
    jars_dir: Path = Field(default_factory=lambda: project_root() / ".jars")
    """Where `conveyor jars` puts the JVM jars Spark and the stack use (default `.jars`)."""
    jvm_artifacts_file: Path = Field(default_factory=lambda: project_root() / "jvm/artifacts.toml")
    """The pinned list of JVM artifacts `conveyor jars` resolves with Maven."""
    catalog: Path = Field(default_factory=lambda: project_root() / "conveyor.yaml")
    """The catalog file every command, job and DAG reads (default `conveyor.yaml`)."""
    dags_folder: Path = Field(default_factory=lambda: project_root() / "dags")
    """The DAGs the embedded Airflow loads."""
    plugins_folder: Path = Field(default_factory=lambda: project_root() / "plugins")
    """The Airflow plugins folder the embedded Airflow loads (the Conveyor page)."""
    jobs_folder: Path = Field(default_factory=lambda: project_root() / "jobs")
    """The `spark-submit` entry points the DAGs run."""

    kafka_bootstrap: str | None = None
    """Kafka's bootstrap servers (`host:port[,host:port]`); unset: the embedded stack's."""
    hdfs_uri: str | None = None
    """The file system URI (`hdfs://namenode:8020`); unset: the embedded stack's."""
    webhdfs_url: str | None = None
    """The NameNode's WebHDFS base URL (`http://namenode:9870`); unset: the embedded stack's."""
    airflow_url: str | None = None
    """Airflow's API server (`http://host:8080`); unset: the embedded stack's."""
    connect_url: str | None = None
    """Kafka Connect's REST API; unset: the embedded stack's (`stack up --with cdc`)."""

    postgres_host: str | None = None
    """The Postgres database CDC reads; unset (all five): the embedded stack's."""
    postgres_port: int | None = None
    """Its port."""
    postgres_database: str | None = None
    """Its database."""
    postgres_user: str | None = None
    """The user Debezium connects as."""
    postgres_password_file: Path | None = None
    """A file holding that user's password (never the environment)."""

    kafka_security_protocol: str | None = None
    """`PLAINTEXT`, `SASL_SSL`, ...; passed to every Kafka client. Unset with no
    `CONVEYOR_KAFKA_BOOTSTRAP`: the embedded stack's (SASL_SSL on a `--secure` stack)."""
    kafka_sasl_mechanism: str | None = None
    """`SCRAM-SHA-512`, `PLAIN`, ..."""
    kafka_sasl_username: str | None = None
    """The ingest's principal (the default for every role)."""
    kafka_sasl_password: SecretStr | None = None
    """The password of `kafka_sasl_username`; prefer one of the two files below."""
    kafka_sasl_password_file: Path | None = None
    """A file holding the password of `kafka_sasl_username` alone."""
    kafka_credentials_file: Path | None = None
    """A JSON file `{"principal": "password"}` with every role's password."""
    kafka_ssl_cafile: Path | None = None
    """The CA that signed the brokers' certificates."""
    kafka_admin_username: str | None = None
    """The admin role's principal (topics, ACLs); default `kafka_sasl_username`."""
    kafka_produce_username: str | None = None
    """The produce role's principal (`conveyor produce`); default `kafka_sasl_username`."""

    hdfs_superuser: str | None = None
    """With HDFS permissions on: the user who creates the lake's roots and hands them to
    Conveyor's user with mode 750 (the compose `init` service); unset, Conveyor creates them."""

    lake_path: str = "/lake"
    """Where the tables live in the file system (never inside `checkpoint_path`)."""
    checkpoint_path: str = "/checkpoints"
    """Where the streams' checkpoints live in the file system (never inside `lake_path`)."""

    spark_master: str = "local[2]"
    """The Spark master of every job and command."""
    spark_driver_memory: str = "1g"
    """The driver's heap."""
    spark_shuffle_partitions: int = 2
    """`spark.sql.shuffle.partitions`."""
    spark_extra_conf: dict[str, str] = Field(default_factory=dict)
    """Further Spark settings, as JSON (`{"spark.executor.memory": "2g"}`)."""
    spark_jit: Literal["tiered", "c1"] = "tiered"
    """HotSpot's compilers for Spark's JVMs: `tiered` ends in C2's optimised code, which a long
    drain needs; `c1` skips C2, so a short run (a backfill, a demo, a test) spends its cores on
    the work instead of compiling."""
    trigger_interval: str = "1 second"
    """How often a running ingest looks for new records. An empty batch costs one Kafka offsets
    request, so a short interval buys latency for little idle CPU; a backlog runs its batches
    back to back whatever the interval."""
    max_offsets_per_trigger: int = 500_000
    """Records per micro-batch at most, so a backlog never has to fit in the driver at once.
    Each batch pays a fixed few seconds, so larger batches drain faster; a 1g driver holds a
    batch of 1M clicks, and the default keeps a 2x margin."""

    sensor_poke_interval_s: float = 300.0
    """How often Conveyor's sensors and triggers look again (the watermark sensor, for one)."""

    test_only_min_vacuum_retention: str | None = None
    """Tests only: the least history `conveyor vacuum --i-know-this-is-a-test` may keep (`0s`,
    `1h`). Unset, nothing goes below the safe retention; Delta's own check stays on."""

    kafka_port: int = 0
    """The embedded Kafka's port; 0 picks a free one (kept across restarts)."""
    hdfs_port: int = 0
    """The embedded NameNode's port; 0 picks a free one (kept across restarts)."""
    airflow_port: int = 0
    """The embedded Airflow's port; 0 picks a free one (kept across restarts)."""
    stack_start_timeout_s: float = 180.0
    """How long `conveyor stack up` waits for each component to answer."""
    stack_brokers: int | None = Field(default=None, ge=1, le=5)
    """Kafka nodes of the embedded stack (`stack up --brokers 3`); unset: as it was made."""
    stack_datanodes: int | None = Field(default=None, ge=1, le=5)
    """HDFS DataNodes of the embedded stack (`stack up --datanodes 3`); unset: as it was made."""
    stack_secure: bool | None = None
    """`stack up --secure`: SASL_SSL Kafka with ACLs and HDFS permissions; unset: as made."""
    stack_with: str | None = None
    """Optional component sets, comma separated (`cdc`: Postgres and Kafka Connect); unset: as
    the stack was last started."""
    airflow_parallelism: int = 2
    """Task slots of the embedded Airflow's scheduler."""
    airflow_user: str = "admin"
    """The embedded Airflow's user for the UI and the API."""

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

    @property
    def connect_rest(self) -> str:
        """Kafka Connect's REST base URL, e.g. http://connect:8083."""
        return self._endpoint(self.connect_url, "connect_url")

    def postgres_password_path(self) -> Path:
        """The file holding the CDC database's password (explicit, else the stack's)."""
        stack = {} if self.postgres_host else self.stack_state
        path = self.postgres_password_file or _path(stack.get("postgres_password_file"))
        if path is None:
            raise SettingsError(
                "no password file for the CDC Postgres: set CONVEYOR_POSTGRES_PASSWORD_FILE"
            )
        return path

    def postgres_connection(self) -> PostgresConnection:
        """The CDC source database: explicit CONVEYOR_POSTGRES_* settings, else the embedded
        stack's (started with `--with cdc`). Raises EndpointNotConfigured when neither names a
        host, SettingsError when the password file cannot be read."""
        stack = {} if self.postgres_host else self.stack_state
        host = self.postgres_host or stack.get("postgres_host")
        if not host:
            raise EndpointNotConfigured("postgres_host", self.state_file)
        password_file = self.postgres_password_path()
        return PostgresConnection(
            host=str(host),
            port=int(self.postgres_port or stack.get("postgres_port") or 5432),
            database=str(self.postgres_database or stack.get("postgres_database") or "conveyor"),
            user=str(self.postgres_user or stack.get("postgres_user") or "conveyor"),
            password=_read_secret(password_file, "CONVEYOR_POSTGRES_PASSWORD_FILE"),
        )

    def kafka_security(self, role: KafkaRole = "ingest") -> KafkaSecurity:
        """How role's Kafka clients authenticate: explicit settings, else (no explicit
        bootstrap) the embedded stack's. Raises SettingsError naming an unreadable file."""
        stack = {} if self.kafka_bootstrap or self.kafka_security_protocol else self.stack_state
        protocol = self.kafka_security_protocol or stack.get("kafka_security_protocol")
        mechanism = self.kafka_sasl_mechanism or stack.get("kafka_sasl_mechanism")
        cafile = self.kafka_ssl_cafile or _path(stack.get("kafka_ca_file"))
        credentials = self.kafka_credentials_file or _path(stack.get("kafka_credentials_file"))
        explicit = {"admin": self.kafka_admin_username, "produce": self.kafka_produce_username}
        username = (
            explicit.get(role) or self.kafka_sasl_username or stack.get(f"kafka_{role}_username")
        )
        password = self.kafka_sasl_password
        if mechanism and credentials:
            known = _read_json_secret(credentials, "CONVEYOR_KAFKA_CREDENTIALS_FILE")
            if username not in known:
                raise SettingsError(
                    f"no password for Kafka principal {username!r} in {credentials} "
                    f"(it has: {', '.join(sorted(known)) or 'none'})"
                )
            password = SecretStr(str(known[username]))
        elif mechanism and self.kafka_sasl_password_file:
            password = SecretStr(
                _read_secret(self.kafka_sasl_password_file, "CONVEYOR_KAFKA_SASL_PASSWORD_FILE")
            )
        return KafkaSecurity(
            protocol=(protocol or "PLAINTEXT").upper(),
            mechanism=mechanism.upper() if mechanism else None,
            username=username if mechanism else None,
            password=password if mechanism else None,
            cafile=cafile,
        )


KafkaRole = Literal["admin", "ingest", "produce"]
"""Conveyor's Kafka roles: provisioning (topics, ACLs), ingest (read, monitoring groups),
produce (the `conveyor produce` command and load generators)."""


@dataclass(frozen=True)
class KafkaSecurity:
    """One role's Kafka client security, resolved (see `Settings.kafka_security`)."""

    protocol: str
    mechanism: str | None
    username: str | None
    password: SecretStr | None
    cafile: Path | None

    def describe(self) -> str:
        """For messages: protocol, mechanism and principal (never the password)."""
        if self.mechanism:
            return f"{self.protocol}, {self.mechanism} as {self.username!r}"
        return self.protocol


@dataclass(frozen=True)
class PostgresConnection:
    """Where and as whom to connect to Postgres (see `Settings.postgres_connection`)."""

    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False)

    def describe(self) -> str:
        """For messages: user, host, port and database (never the password)."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"

    def conninfo(self) -> dict[str, Any]:
        """Keyword arguments for `psycopg.connect` (the password included: never log them)."""
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "user": self.user,
            "password": self.password,
        }


def write_secret(path: Path, text: str) -> Path:
    """Write text to a file only its owner can read (0600 from the first byte; its folder
    0700 when this call makes it)."""
    import os

    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.chmod(path, 0o600)
    return path


def _path(value: object) -> Path | None:
    return Path(str(value)) if value else None


def _read_secret(path: Path, setting: str) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise SettingsError(f"{setting}: cannot read {path}: {exc.strerror}") from None


def _read_json_secret(path: Path, setting: str) -> dict[str, Any]:
    try:
        data = json.loads(_read_secret(path, setting))
    except json.JSONDecodeError as exc:
        raise SettingsError(
            f'{setting}: {path} is not JSON ({{"principal": "password"}}): {exc.msg}'
        ) from None
    if not isinstance(data, dict):
        raise SettingsError(f'{setting}: {path} must hold {{"principal": "password"}}')
    return data


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
