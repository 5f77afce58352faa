"""Conveyor settings from Airflow connections: what every operator, sensor and trigger runs with.

Each role's connection decides its part of the settings (`conveyor.connections`): a Kafka
connection the bootstrap servers and security, the lake connection the file system and roots,
the Spark connection the master. Everything else (catalog, jars, Spark memory) comes from the
worker's environment as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.settings import Settings

if TYPE_CHECKING:
    from airflow.sdk import Connection


def pipeline_settings(
    *,
    kafka_conn_id: str | None = None,
    lake_conn_id: str | None = None,
    spark_conn_id: str | None = None,
) -> Settings:
    """The worker's settings with the named connections' parts in place (None: keep the
    environment's). Raises KafkaConnectionInvalid / LakeConnectionInvalid naming the connection."""
    from airflow.sdk import BaseHook

    from conveyor.connections import KAFKA_FIELDS, LAKE_FIELDS
    from conveyor.provider.hooks.kafka import ConveyorKafkaHook
    from conveyor.provider.hooks.lake import ConveyorLakeHook
    from conveyor.settings import get_settings

    values = get_settings().model_dump()
    if kafka_conn_id:
        kafka = ConveyorKafkaHook(kafka_conn_id).settings
        values.update({name: getattr(kafka, name) for name in KAFKA_FIELDS})
    if lake_conn_id:
        lake = ConveyorLakeHook(lake_conn_id).settings
        values.update({name: getattr(lake, name) for name in LAKE_FIELDS})
    if spark_conn_id:
        values["spark_master"] = spark_master(BaseHook.get_connection(spark_conn_id))
    return Settings(**values)


def spark_master(conn: Connection) -> str:
    """The master a Spark connection names, as the Spark provider reads it (host, then port)."""
    host = (conn.host or "").strip()
    if not host:
        from conveyor.errors import ConveyorError

        raise ConveyorError(
            f"Airflow connection {conn.conn_id!r}: no host: set the Spark master "
            "(local[2], yarn, spark://host, k8s://https://host)"
        )
    return f"{host}:{conn.port}" if conn.port else host
