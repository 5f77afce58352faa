"""
### Conveyor: ingest every stream (available-now)

`streams` reads the catalog when the run starts (`conveyor.yaml`, or `CONVEYOR_CATALOG`), so a
stream added since is ingested by the next run without a new parse; then one mapped task per
stream (`IngestStreamOperator`) runs `jobs/stream_ingest.py STREAM --available-now` through
`spark-submit`: it lands everything Kafka holds beyond the stream's checkpoint in the bronze,
silver and quarantine tables, exactly once, and writes a ledger row per micro-batch. A stream
with nothing to land (its monitoring group at every partition's end) is skipped without
starting Spark.

- Runs every 15 minutes; `max_active_runs=1`, so two runs never share a checkpoint.
- A stream whose Kafka offsets were deleted before they were landed fails with a message naming
  the partitions and offsets; continue deliberately with
  `conveyor ingest STREAM --accept-data-loss`.
- Spark is reached through the `conveyor_spark` Airflow connection (its host is the master:
  `local[2]`, `yarn`, `spark://…`, `k8s://…`), Kafka through `conveyor_kafka_ingest` (the
  ingest principal), the lake through `conveyor_lake`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from conveyor.provider.operators.ingest import IngestStreamOperator


@dag(
    dag_id="conveyor_ingest",
    schedule=timedelta(minutes=15),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["conveyor", "ingest", "spark"],
    default_args={"owner": "conveyor", "retries": 2, "retry_delay": timedelta(minutes=1)},
    doc_md=__doc__,
)
def conveyor_ingest() -> None:
    @task
    def streams() -> list[str]:
        """Each catalog stream, from the catalog as it is when the run starts."""
        from conveyor.catalog import resolve_catalog
        from conveyor.settings import get_settings

        return list(resolve_catalog(get_settings()).stream_names)

    IngestStreamOperator.partial(
        task_id="ingest_stream",
        max_active_tis_per_dagrun=1,
        execution_timeout=timedelta(hours=1),
    ).expand(stream=streams())


conveyor_ingest()
