"""
### Conveyor: provision Kafka topics

Makes the Kafka cluster match the catalog (`conveyor.yaml`, or `CONVEYOR_CATALOG`): creates
missing topics, adds partitions, sets the declared topic configs. Nothing is ever deleted; topics
the catalog does not name are reported as drift. The same code as `conveyor topics plan|apply`.

- **plan** logs a table of what differs and returns the plan (XCom).
- **apply** runs unless the run was triggered with `dry_run: true`. It applies every safe
  change, then fails (without retrying) when the catalog asks for something Kafka cannot do in
  place: fewer partitions or another replication factor. Fix the catalog, or the topic by hand.

Kafka is reached through the `conveyor_kafka_admin` Airflow connection (bootstrap servers and
SASL/TLS settings). Runs daily, so drift made out of band is corrected, and on demand.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, task

from conveyor import connections
from conveyor.provider.operators.topics import TopicsApplyOperator, TopicsPlanOperator


@dag(
    dag_id="conveyor_provision_topics",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["conveyor", "kafka"],
    default_args={"owner": "conveyor", "retries": 1, "retry_delay": timedelta(seconds=30)},
    params={
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Only plan: show what would change and touch nothing.",
        )
    },
    doc_md=__doc__,
)
def conveyor_provision_topics() -> None:
    plan = TopicsPlanOperator(task_id="plan", kafka_conn_id=connections.KAFKA_ADMIN)

    @task.short_circuit
    def unless_dry_run(**context: Any) -> bool:
        """Go on to apply, unless the run asked for a dry run."""
        return not context["params"]["dry_run"]

    apply = TopicsApplyOperator(task_id="apply", kafka_conn_id=connections.KAFKA_ADMIN)

    plan >> unless_dry_run() >> apply


conveyor_provision_topics()
