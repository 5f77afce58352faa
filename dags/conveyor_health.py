"""
### Conveyor health

Checks that the pieces the pipeline stands on answer: the Kafka broker (through the
`conveyor_kafka_admin` Airflow connection) and the lake's file system (through `conveyor_lake`:
the lake and checkpoint roots exist). Runs hourly and on demand; a failure here explains failures elsewhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from conveyor import connections


@dag(
    dag_id="conveyor_health",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["conveyor", "ops"],
    default_args={"owner": "conveyor", "retries": 1, "retry_delay": timedelta(seconds=30)},
    doc_md=__doc__,
)
def conveyor_health() -> None:
    @task
    def kafka_answers() -> list[str]:
        """List the broker's topics through the Airflow connection (SASL/TLS included)."""
        from conveyor.provider.hooks.kafka import ConveyorKafkaHook

        with ConveyorKafkaHook(connections.KAFKA_ADMIN) as hook:
            return sorted(t for t in hook.admin.list_topics() if not t.startswith("__"))

    @task
    def lake_answers() -> list[str]:
        """The lake and checkpoint roots exist on the file system."""
        from conveyor.provider.hooks.lake import ConveyorLakeHook
        from conveyor.webhdfs import webhdfs

        settings = ConveyorLakeHook(connections.LAKE).settings
        for path in (settings.lake_path, settings.checkpoint_path):
            status = webhdfs(settings, path, "GETFILESTATUS")["FileStatus"]
            if status["type"] != "DIRECTORY":
                raise NotADirectoryError(f"{settings.fs_uri}{path} is not a directory")
        return [settings.lake_uri, settings.checkpoint_uri]

    kafka_answers()
    lake_answers()


conveyor_health()
