"""`ConveyorKafkaHook`: a kafka-python admin client built from an Airflow connection.

The connection (type `conveyor_kafka`, or `kafka` as before; default id `conveyor_kafka_admin`, the admin role; the ingest job
uses `conveyor_kafka_ingest`, see `conveyor.connections`) holds everything the client needs:

- bootstrap servers: extra `bootstrap.servers` (`host:port[,host:port]`), else host and port;
- security: extras `security.protocol` (default PLAINTEXT), `sasl.mechanism`, `ssl.cafile`;
- SASL credentials: the connection's login and password.

The hook turns it into `conveyor.settings.Settings`, so it builds the very same client as the CLI
(`conveyor.kafka.topics.open_admin`). The password is never logged nor shown in `repr`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from pydantic import SecretStr

from conveyor import connections
from conveyor.errors import ConveyorError
from conveyor.provider import KAFKA_CONN_TYPE
from conveyor.settings import Settings

if TYPE_CHECKING:
    from airflow.sdk import Connection
    from kafka import KafkaAdminClient

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class KafkaConnectionInvalid(ConveyorError):
    """The Airflow connection lacks a field the Kafka client needs, or holds a bad value."""

    def __init__(self, conn_id: str, problem: str) -> None:
        super().__init__(f"Airflow connection {conn_id!r}: {problem}")
        self.conn_id = conn_id


class ConveyorKafkaHook(BaseHook):
    """Kafka admin access through an Airflow connection; the client is built on first use.

    `admin_options` are passed to `KafkaAdminClient` over the connection's (e.g. timeouts).
    Call `close()` when done; the hook can be used as a context manager.
    """

    conn_name_attr = "kafka_conn_id"
    default_conn_name = connections.KAFKA_ADMIN
    conn_type = KAFKA_CONN_TYPE
    hook_name = "Conveyor Kafka"

    def __init__(
        self,
        kafka_conn_id: str = default_conn_name,
        admin_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.kafka_conn_id = kafka_conn_id
        self.admin_options = dict(admin_options or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kafka_conn_id={self.kafka_conn_id!r})"

    def __enter__(self) -> ConveyorKafkaHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @cached_property
    def settings(self) -> Settings:
        """Conveyor settings for this connection; raises KafkaConnectionInvalid."""
        return settings_from_connection(self.get_connection(self.kafka_conn_id))

    @cached_property
    def admin(self) -> KafkaAdminClient:
        """The admin client, connected on first access; raises KafkaAdminFailed."""
        from conveyor.kafka.clients import open_admin

        settings = self.settings
        self.log.info(
            "Connecting to Kafka at %s (connection %r, %s%s)",
            settings.kafka_servers,
            self.kafka_conn_id,
            settings.kafka_security_protocol,
            f", SASL {settings.kafka_sasl_mechanism} as {settings.kafka_sasl_username!r}"
            if settings.kafka_sasl_mechanism
            else "",
        )
        return open_admin(settings, **self.admin_options)

    def get_conn(self) -> KafkaAdminClient:
        """The admin client (same as `admin`)."""
        return self.admin

    def close(self) -> None:
        """Close the admin client if one was built; the next use builds a new one."""
        admin = self.__dict__.pop("admin", None)
        if admin is not None:
            admin.close()

    def test_connection(self) -> tuple[bool, str]:
        """(True, what answered) when the cluster answers a metadata request, else (False, why)."""
        try:
            brokers = self.admin.describe_cluster()["brokers"]
        except Exception as exc:  # the UI shows the reason instead of a traceback
            return False, f"{type(exc).__name__}: {exc}"
        finally:
            self.close()
        return True, (
            f"Connected to Kafka at {self.settings.kafka_servers}: {len(brokers)} broker(s)"
        )


def settings_from_connection(conn: Connection) -> Settings:
    """Validate an Airflow Kafka connection and express it as Conveyor settings.

    Security comes from the connection alone (explicit values, including defaults), so
    `CONVEYOR_KAFKA_*` variables of the worker cannot mix into it.
    """
    conn_id = conn.conn_id
    extra = conn.extra_dejson
    protocol = str(extra.get("security.protocol") or "PLAINTEXT").upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise KafkaConnectionInvalid(
            conn_id,
            f"extra 'security.protocol' is {protocol!r}; use one of {', '.join(SECURITY_PROTOCOLS)}",
        )
    mechanism = extra.get("sasl.mechanism")
    mechanism = str(mechanism).upper() if mechanism else None
    if protocol.startswith("SASL_"):
        _check_sasl(conn_id, mechanism, conn.login, conn.password)
    elif mechanism:
        raise KafkaConnectionInvalid(
            conn_id,
            f"extra 'sasl.mechanism' is set but 'security.protocol' is {protocol}; "
            "set it to SASL_PLAINTEXT or SASL_SSL, or remove the mechanism",
        )
    cafile = extra.get("ssl.cafile")
    return Settings(
        kafka_bootstrap=_bootstrap_servers(conn),
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username=conn.login if mechanism else None,
        kafka_sasl_password=SecretStr(conn.password) if mechanism and conn.password else None,
        kafka_ssl_cafile=Path(cafile) if cafile else None,
    )


def _bootstrap_servers(conn: Connection) -> str:
    servers = conn.extra_dejson.get("bootstrap.servers")
    if servers:
        return ",".join(s.strip() for s in str(servers).split(",") if s.strip())
    host = (conn.host or "").strip()
    if not host:
        raise KafkaConnectionInvalid(
            conn.conn_id,
            "no bootstrap servers: set extra 'bootstrap.servers' (host:port[,host:port]) "
            "or the connection's host and port",
        )
    if conn.port:
        return f"{host}:{conn.port}"
    if ":" not in host:
        raise KafkaConnectionInvalid(
            conn.conn_id, f"host {host!r} has no port: set the connection's port"
        )
    return host


def _check_sasl(
    conn_id: str, mechanism: str | None, login: str | None, password: str | None
) -> None:
    if mechanism not in SASL_MECHANISMS:
        raise KafkaConnectionInvalid(
            conn_id,
            f"extra 'sasl.mechanism' is {mechanism!r}; with SASL use one of "
            f"{', '.join(SASL_MECHANISMS)}",
        )
    missing = [name for name, value in (("login", login), ("password", password)) if not value]
    if missing:
        raise KafkaConnectionInvalid(
            conn_id, f"SASL {mechanism} needs the connection's {' and '.join(missing)}"
        )
