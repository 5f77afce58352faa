"""
### Conveyor: replay quarantined records

Re-validates a stream's quarantined records with the catalog as it is now (after a value was
allowed, a rule relaxed, a field added): records that now pass land in silver, or count as
duplicates when silver already holds their dedup key; records that still fail stay, with their
new reason. Runs `jobs/rework.py replay` with `spark-submit`.

- **stream**: the catalog stream.
- **reasons**: the reason codes to replay (none: every code but `too_late`; late records are
  replayed only when `too_late` is chosen, into their event date).
- **since** / **until**: only records quarantined in that window (ISO-8601 date or timestamp).
- **dry_run**: the task log shows what would move, by reason; nothing is written.

Each record lands in silver at most once, ever (a rerun, or a run killed half way and run
again, moves nothing twice). Quarantine rows are marked (`replayed_at`, `replay_run`,
`replay_outcome`), never deleted. The stream's write lease keeps a replay, a rebuild and the
stream's batches apart; `max_active_runs=1`. Each run is a ledger row (`kind = replay`), and
the analytics DAG recomputes the days it changed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag

from conveyor.catalog import resolve_catalog
from conveyor.ingest.quality import QuarantineReason
from conveyor.provider.operators.rework import ReworkOperator
from conveyor.settings import get_settings

# append streams only: a cdc stream's silver follows its source table, not bronze
STREAMS = list(resolve_catalog(get_settings()).append_stream_names)


@dag(
    dag_id="conveyor_replay",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["conveyor", "quarantine", "spark"],
    default_args={"owner": "conveyor", "retries": 1, "retry_delay": timedelta(minutes=2)},
    params={
        "stream": Param(STREAMS[0] if STREAMS else None, enum=STREAMS or [None], title="Stream"),
        "reasons": Param(
            [],
            type="array",
            items={"type": "string", "enum": [r.value for r in QuarantineReason]},
            examples=[r.value for r in QuarantineReason],
            title="Reason codes",
            description="Empty: every code but too_late.",
        ),
        "since": Param(
            None,
            type=["null", "string"],
            title="Quarantined since",
            description="ISO-8601 date or timestamp, e.g. 2026-12-01 (empty: no bound).",
        ),
        "until": Param(
            None,
            type=["null", "string"],
            title="Quarantined until",
            description="ISO-8601; a date means up to the end of that day (empty: no bound).",
        ),
        "dry_run": Param(False, type="boolean", title="Dry run"),
    },
    doc_md=__doc__,
)
def conveyor_replay() -> None:
    ReworkOperator(task_id="replay", operation="replay", execution_timeout=timedelta(hours=2))


conveyor_replay()
