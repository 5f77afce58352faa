"""Conveyor as an Airflow provider: its connection types, hooks, operators, sensors and triggers.

Airflow finds it through the `apache_airflow_provider` entry point (`get_provider_info`), so
its connection types appear in the UI's connection form with their fields and help, without
importing a hook. The classes live in the installed package (`conveyor.provider.*`); the
`plugins/` folder holds only the Conveyor page. The DAGs read the catalog at parse time only to
build their forms; operators, sensors and triggers read it when they run.

Connection types (Conveyor's own names; `kafka` is the official Kafka provider's):

- `conveyor_kafka`: a Kafka cluster and one principal (`ConveyorKafkaHook`);
- `conveyor_lake`: the lake's file system and roots (`ConveyorLakeHook`).

Connections of the types Conveyor used before (`kafka`, `hdfs`) keep working: the hooks read
the same fields whatever the type, and `conveyor.connections.register` (run by
`conveyor stack up` and the compose `init` service) moves Conveyor's own connections to the new
types.
"""

from __future__ import annotations

from typing import Any

from conveyor import __version__

PACKAGE = "conveyor"
"""The distribution's name (`pyproject.toml`): Airflow refuses provider info naming another."""
KAFKA_CONN_TYPE = "conveyor_kafka"
LAKE_CONN_TYPE = "conveyor_lake"
LEGACY_CONN_TYPES = {"kafka": KAFKA_CONN_TYPE, "hdfs": LAKE_CONN_TYPE}
"""The connection types Conveyor's connections had before, and the type each moves to."""


def _field(label: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": "string", **schema}}


CONNECTION_TYPES: list[dict[str, Any]] = [
    {
        "connection-type": KAFKA_CONN_TYPE,
        "hook-class-name": "conveyor.provider.hooks.kafka.ConveyorKafkaHook",
        "hook-name": "Conveyor Kafka",
        "conn-fields": {
            "bootstrap.servers": _field(
                "Bootstrap servers",
                "host:port[,host:port]; or leave empty and set host and port.",
            ),
            "security.protocol": _field(
                "Security protocol",
                "PLAINTEXT (default), SSL, SASL_PLAINTEXT or SASL_SSL.",
                enum=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
            ),
            "sasl.mechanism": _field(
                "SASL mechanism",
                "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; with SASL, login and password are "
                "the principal and its password.",
            ),
            "ssl.cafile": _field(
                "CA file", "The PEM file of the CA that signed the brokers' certificates."
            ),
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema"],
            "relabeling": {"login": "SASL username", "password": "SASL password"},
            "placeholders": {"host": "broker1 (or set Bootstrap servers)", "port": "9092"},
        },
    },
    {
        "connection-type": LAKE_CONN_TYPE,
        "hook-class-name": "conveyor.provider.hooks.lake.ConveyorLakeHook",
        "hook-name": "Conveyor lake",
        "conn-fields": {
            "lake_path": _field("Lake path", "Where the tables live (default /lake)."),
            "checkpoint_path": _field(
                "Checkpoint path", "Where the streams' checkpoints live (default /checkpoints)."
            ),
            "webhdfs_url": _field(
                "WebHDFS URL",
                "The NameNode's HTTP address, e.g. http://namenode:9870 (the health DAG).",
            ),
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login", "password"],
            "relabeling": {"host": "NameNode (or HA nameservice)"},
            "placeholders": {"host": "hdfs://namenode", "port": "8020"},
        },
    },
]


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager reads from the `apache_airflow_provider` entry point."""
    return {
        "package-name": PACKAGE,
        "name": "Conveyor",
        "description": "Kafka event streams into Delta Lake tables on HDFS, exactly once.",
        "versions": [__version__],
        "connection-types": CONNECTION_TYPES,
        "integrations": [{"integration-name": "Conveyor", "tags": ["software"]}],
        "hooks": [
            {
                "integration-name": "Conveyor",
                "python-modules": [
                    "conveyor.provider.hooks.kafka",
                    "conveyor.provider.hooks.lake",
                ],
            }
        ],
        "operators": [
            {
                "integration-name": "Conveyor",
                "python-modules": [
                    "conveyor.provider.operators.ingest",
                    "conveyor.provider.operators.maintenance",
                    "conveyor.provider.operators.rework",
                    "conveyor.provider.operators.spark",
                    "conveyor.provider.operators.topics",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "Conveyor",
                "python-modules": [
                    "conveyor.provider.sensors.maintenance",
                    "conveyor.provider.sensors.watermark",
                ],
            }
        ],
        "triggers": [
            {
                "integration-name": "Conveyor",
                "python-modules": ["conveyor.provider.triggers.watermark"],
            }
        ],
    }
