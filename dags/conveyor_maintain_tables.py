"""
### Conveyor: maintain tables (compaction hourly, VACUUM daily)

`tables` reads the catalog when the run starts (`conveyor.yaml`, or `CONVEYOR_CATALOG`); the
tasks are mapped over its tables:

- **compaction.needs_compaction** reads the table's statistics once: does a *closed* partition
  (its day ended more than the stream's late-data tolerance ago) hold at least
  `min_small_files` files below `small_file_threshold`? If not, it and the compaction are
  skipped until the next run.
- **compaction.compact** bin-packs those partitions with Delta's OPTIMIZE (Z-order by the
  catalog's `zorder_by` when the `zorder` param is on). OPTIMIZE commits with dataChange=false,
  so running streams are not disturbed; conflicts are retried with backoff. A lock per table
  means a retried task never starts a second compaction of a table: it is skipped while the
  first holds the lock.
- **vacuum_due** decides whether this run vacuums (the `vacuum` param: daily, in the 00:00 UTC
  run; `now`; `never`); when it does not, every **vacuum** task is skipped without starting.
- **vacuum** runs at the safe retention: the largest of the catalog's `vacuum_retention`, Delta's 7 days and
  the longest stream lag in the ledger plus a day. A cdc stream's history and delete-marker
  tables are the stream's tables too; the vacuum of the markers' table first drops the markers
  past the stream's `delete_marker_retention`.

Every run is recorded in the maintenance log table (`<lake>/_conveyor/maintenance`);
`conveyor tables` shows the state of each table. `max_active_runs=1`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import Param, dag, task, task_group

from conveyor.provider.operators.maintenance import CompactTableOperator, VacuumTableOperator
from conveyor.provider.sensors.maintenance import TableNeedsCompactionSensor


@dag(
    dag_id="conveyor_maintain_tables",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["conveyor", "maintenance", "spark"],
    default_args={"owner": "conveyor", "retries": 1, "retry_delay": timedelta(minutes=5)},
    params={
        "zorder": Param(
            True,
            type="boolean",
            title="Z-order",
            description="Z-order tables that declare zorder_by columns (others are bin-packed).",
        ),
        "vacuum": Param(
            "daily",
            enum=["daily", "now", "never"],
            title="Vacuum",
            description="daily: in the 00:00 UTC run; now: in this run; never: skip it.",
        ),
    },
    doc_md=__doc__,
)
def conveyor_maintain_tables() -> None:
    @task
    def tables() -> list[str]:
        """Every catalog table, from the catalog as it is when the run starts."""
        from conveyor.catalog import resolve_catalog
        from conveyor.settings import get_settings

        return [ref.name for ref in resolve_catalog(get_settings()).tables()]

    names = tables()

    @task_group(group_id="compaction")
    def compaction(table: str) -> None:
        needs = TableNeedsCompactionSensor(
            task_id="needs_compaction",
            table=table,
            mode="poke",
            timeout=0,  # check once: a table that needs nothing is skipped until the next run
            poke_interval=60,
            soft_fail=True,
            max_active_tis_per_dagrun=1,
        )
        compact = CompactTableOperator(
            task_id="compact",
            table=table,
            zorder="{{ params.zorder }}",
            max_active_tis_per_dagrun=1,
            execution_timeout=timedelta(hours=1),
        )
        needs >> compact

    @task.short_circuit
    def vacuum_due(**context: Any) -> bool:
        """Whether this run vacuums; when not, the vacuum tasks are skipped unstarted."""
        from conveyor.provider.operators.maintenance import vacuum_due as due

        return due(context["params"]["vacuum"], context.get("logical_date"))

    vacuum = VacuumTableOperator.partial(
        task_id="vacuum",
        when="{{ params.vacuum }}",
        trigger_rule="all_done",
        max_active_tis_per_dagrun=1,
        execution_timeout=timedelta(hours=1),
    ).expand(table=names)

    compaction.expand(table=names) >> vacuum
    vacuum_due() >> vacuum


conveyor_maintain_tables()
