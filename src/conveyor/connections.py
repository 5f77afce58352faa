"""The Airflow connections Conveyor's DAGs, operators, sensors and triggers use, one per role.

The ids here are the defaults of every hook and operator parameter (`kafka_conn_id`,
`lake_conn_id`, `spark_conn_id`); the embedded stack and the compose `init` service register
exactly these. Kafka has two roles because a secured cluster gives them two principals:

- `KAFKA_ADMIN`: creates and alters topics, reads consumer-group offsets (provisioning, the
  health DAG, the Conveyor page);
- `KAFKA_INGEST`: what the ingest job reads the topics and commits its monitoring group with.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from conveyor.provider import KAFKA_CONN_TYPE, LAKE_CONN_TYPE, LEGACY_CONN_TYPES
from conveyor.settings import KafkaRole, Settings, write_secret

KAFKA_ADMIN = "conveyor_kafka_admin"
KAFKA_INGEST = "conveyor_kafka_ingest"
LAKE = "conveyor_lake"
SPARK = "conveyor_spark"
ALL = (KAFKA_ADMIN, KAFKA_INGEST, LAKE, SPARK)

KAFKA_FIELDS = (
    "kafka_bootstrap",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_cafile",
)
"""The settings a Kafka connection decides."""
SECRET_FIELDS = {"kafka_sasl_password": "kafka_sasl_password_file"}
"""Secret settings, and the setting that reads each from a file instead."""
LAKE_FIELDS = ("hdfs_uri", "webhdfs_url", "lake_path", "checkpoint_path")
"""The settings a lake connection decides."""


def settings_env(settings: Settings, fields: Iterable[str], secrets_dir: Path) -> dict[str, str]:
    """`CONVEYOR_*` variables carrying these settings to a child process (e.g. spark-submit);
    unset ones are left out. A secret never goes in the environment: it is written to a 0600
    file in secrets_dir (the caller deletes it when the child is done) and its `*_FILE`
    setting names that file."""
    from pydantic import SecretStr

    env = {}
    for name in fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            path = write_secret(secrets_dir / name, value.get_secret_value())
            env[f"CONVEYOR_{SECRET_FIELDS[name].upper()}"] = str(path)
            continue
        env[f"CONVEYOR_{name.upper()}"] = str(value)
    return env


def kafka_connection(settings: Settings, role: KafkaRole) -> dict[str, Any]:
    """role's Kafka connection (Airflow's JSON form): servers, security and, with SASL, the
    role's principal and password (unwrapped: register it, never log it)."""
    security = settings.kafka_security(role)
    extra: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_servers,
        "security.protocol": security.protocol,
    }
    conn: dict[str, Any] = {"conn_type": KAFKA_CONN_TYPE, "extra": extra}
    if security.mechanism:
        extra["sasl.mechanism"] = security.mechanism
        conn["login"] = security.username
        if security.password is not None:
            conn["password"] = security.password.get_secret_value()
    if security.cafile:
        extra["ssl.cafile"] = str(security.cafile)
    return conn


def airflow_connections(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every role's connection (Airflow's JSON form) for these settings, each Kafka role with
    its own principal: what the embedded stack and the compose `init` service register in
    Airflow's metadata database (`register`), never in the environment."""
    return {
        KAFKA_ADMIN: kafka_connection(settings, "admin"),
        KAFKA_INGEST: kafka_connection(settings, "ingest"),
        LAKE: {
            "conn_type": LAKE_CONN_TYPE,
            "host": settings.fs_uri,
            "extra": {
                "lake_path": settings.lake_path,
                "checkpoint_path": settings.checkpoint_path,
                "webhdfs_url": settings.namenode_http,
            },
        },
        SPARK: {"conn_type": "spark", "host": settings.spark_master},
    }


def register(connections: Mapping[str, Mapping[str, Any]], *, replace: bool) -> list[str]:
    """Store connections in Airflow's metadata database (passwords encrypted with its fernet
    key); an existing one is replaced, or kept as it is when replace is False (only moved from
    the type Conveyor used before to its provider's, fields kept). Runs where Airflow is
    configured (its environment); returns a line per connection."""
    from airflow.models import Connection
    from airflow.utils.session import create_session

    lines = []
    with create_session() as session:
        for conn_id, spec in connections.items():
            existing = session.query(Connection).filter(Connection.conn_id == conn_id).first()
            if existing is not None and not replace:
                moved = LEGACY_CONN_TYPES.get(existing.conn_type or "")
                if moved is not None and moved == spec["conn_type"]:
                    old, existing.conn_type = existing.conn_type, moved
                    lines.append(f"connection {conn_id}: type {old} -> {moved} (fields kept)")
                else:
                    lines.append(f"connection {conn_id} exists (left as it is)")
                continue
            if existing is not None:
                session.delete(existing)
                session.flush()
            extra = spec.get("extra")
            session.add(
                Connection(
                    conn_id=conn_id,
                    conn_type=spec["conn_type"],
                    host=spec.get("host"),
                    login=spec.get("login"),
                    password=spec.get("password"),
                    port=spec.get("port"),
                    extra=json.dumps(extra) if extra is not None else None,
                )
            )
            lines.append(f"connection {conn_id} {'replaced' if existing else 'added'}")
    return lines


if __name__ == "__main__":
    # `python -m conveyor.connections [--replace]` with the connections as JSON on stdin
    # (never as arguments: they carry passwords)
    for line in register(json.load(sys.stdin), replace="--replace" in sys.argv[1:]):
        print(line)
