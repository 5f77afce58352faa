"""
### Conveyor: rebuild silver from bronze

Re-derives a stream's silver and quarantine rows from bronze, for the records ingested in a
range of dates (or all of them), with the catalog as it is now: after a rule was tightened or
a parsing bug fixed, rows that now fail move to quarantine and rows that now pass move to
silver; duplicates are decided as the stream decides. Runs `jobs/rework.py rebuild` with
`spark-submit`.

- **stream**: the catalog stream.
- **from** / **to**: the first and last ingest date (UTC, inclusive), or
- **all**: every ingest date.
- **dry_run**: the task log shows what would change; nothing is written.

Silver and quarantine are each replaced in one commit over the range; a rerun writes nothing.
Records the stream judged too late stay so (replay them with `too_late`). The stream's write
lease keeps a rebuild, a replay and the stream's batches apart; `max_active_runs=1`. Each run
is a ledger row (`kind = rebuild`) with the event dates it changed, which the analytics DAG
recomputes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag

from conveyor.catalog import resolve_catalog
from conveyor.provider.operators.rework import ReworkOperator
from conveyor.settings import get_settings

# append streams only: a cdc stream's silver follows its source table, not bronze
STREAMS = list(resolve_catalog(get_settings()).append_stream_names)


@dag(
    dag_id="conveyor_rebuild",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["conveyor", "quarantine", "spark"],
    default_args={"owner": "conveyor", "retries": 1, "retry_delay": timedelta(minutes=2)},
    params={
        "stream": Param(STREAMS[0] if STREAMS else None, enum=STREAMS or [None], title="Stream"),
        "from": Param(None, type=["null", "string"], format="date", title="From ingest date (UTC)"),
        "to": Param(None, type=["null", "string"], format="date", title="To ingest date (UTC)"),
        "all": Param(False, type="boolean", title="All ingest dates"),
        "dry_run": Param(False, type="boolean", title="Dry run"),
    },
    doc_md=__doc__,
)
def conveyor_rebuild() -> None:
    ReworkOperator(task_id="rebuild", operation="rebuild", execution_timeout=timedelta(hours=4))


conveyor_rebuild()
