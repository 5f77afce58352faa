"""The Airflow connections Conveyor's DAGs, operators, sensors and triggers use, one per role.

The ids here are the defaults of every hook and operator parameter (`kafka_conn_id`,
`lake_conn_id`, `spark_conn_id`); the embedded stack and the compose `init` service register
exactly these. Kafka has two roles because a secured cluster gives them two principals:

- `KAFKA_ADMIN`: creates and alters topics, reads consumer-group offsets (provisioning, the
  health DAG, the Conveyor page);
- `KAFKA_INGEST`: what the ingest job reads the topics and commits its monitoring group with.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from conveyor.settings import Settings

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
LAKE_FIELDS = ("hdfs_uri", "webhdfs_url", "lake_path", "checkpoint_path")
"""The settings a lake connection decides."""


def settings_env(settings: Settings, fields: Iterable[str]) -> dict[str, str]:
    """`CONVEYOR_*` variables carrying these settings to a child process (e.g. spark-submit);
    unset ones are left out, secrets are unwrapped: never log the result."""
    from pydantic import SecretStr

    env = {}
    for name in fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"CONVEYOR_{name.upper()}"] = str(value)
    return env


def airflow_connections(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every role's connection (Airflow's JSON form) for the endpoints of these settings: what
    the embedded stack and the compose `init` service register. Both Kafka roles get the
    settings' one client; on a secured cluster give each its own principal afterwards."""
    kafka: dict[str, Any] = {
        "conn_type": "kafka",
        "extra": {
            "bootstrap.servers": settings.kafka_servers,
            "security.protocol": settings.kafka_security_protocol,
        },
    }
    return {
        KAFKA_ADMIN: kafka,
        KAFKA_INGEST: kafka,
        LAKE: {
            "conn_type": "hdfs",
            "host": settings.fs_uri,
            "extra": {
                "lake_path": settings.lake_path,
                "checkpoint_path": settings.checkpoint_path,
                "webhdfs_url": settings.namenode_http,
            },
        },
        SPARK: {"conn_type": "spark", "host": settings.spark_master},
    }
