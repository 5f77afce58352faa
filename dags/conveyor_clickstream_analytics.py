"""
### Conveyor: clickstream analytics (gold tables)

Once a day, for the day that just ended (UTC), computes the gold tables from silver:
`sessions`, `daily_page_stats`, `daily_users`, `daily_funnel` (clicks) and
`service_errors_hourly` (application logs), at `<lake>/gold/<name>`, each partitioned by day.

1. `wait_for_watermark` waits until the click stream's watermark (newest event time in the
   ingest ledger minus the late-data tolerance) has passed the end of the day plus the session
   gap, so the day's events and the sessions crossing midnight are complete. It is deferrable:
   the triggerer polls the ledger (without Spark) every `CONVEYOR_SENSOR_POKE_INTERVAL_S`
   (300 s), and no worker slot is held meanwhile.
2. `compute_gold_tables` runs `jobs/analytics.py --date D --with-late` with `spark-submit`: it
   replaces day D's partitions (`replaceWhere`), plus those of every earlier day that late events
   changed since it was computed (from the ingest ledger), and records each day in
   `<lake>/_conveyor/analytics_runs`. Its outlets are the gold tables as Airflow Assets, so
   downstream DAGs can be scheduled on them.

Backfill: `airflow backfill create --dag-id conveyor_clickstream_analytics --from-date 2026-03-01
--to-date 2026-03-07` (each day is idempotent), or `conveyor analytics --from D1 --to D2`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, dag
from airflow.timetables.interval import CronDataIntervalTimetable

from conveyor.analytics.gold import GOLD_TABLES
from conveyor.provider.operators.spark import ConveyorSparkSubmitOperator
from conveyor.provider.sensors.watermark import StreamWatermarkSensor
from conveyor.settings import EndpointNotConfigured, get_settings

SETTINGS = get_settings()


def _lake() -> str:
    try:
        return SETTINGS.lake_uri
    except EndpointNotConfigured:  # parsed where no stack runs: the default file system's lake
        return f"hdfs://{SETTINGS.lake_path}"


# Named by their URI: a lake elsewhere (another cluster, a test's own folder) has other assets,
# never a second URI under a name Airflow already knows (which would leave one inactive).
GOLD_ASSETS = [Asset(uri=f"{_lake()}/gold/{table.name}") for table in GOLD_TABLES]


@dag(
    dag_id="conveyor_clickstream_analytics",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["conveyor", "analytics", "spark"],
    default_args={"owner": "conveyor", "retries": 2, "retry_delay": timedelta(minutes=2)},
    doc_md=__doc__,
)
def conveyor_clickstream_analytics() -> None:
    day = "{{ data_interval_start.strftime('%Y-%m-%d') }}"
    watermark = StreamWatermarkSensor(  # the catalog's click stream and gap, read when it runs
        task_id="wait_for_watermark",
        passed="{{ data_interval_end.isoformat() }}",
        poke_interval=SETTINGS.sensor_poke_interval_s,
        timeout=int(timedelta(days=1).total_seconds()),
    )
    compute = ConveyorSparkSubmitOperator(
        task_id="compute_gold_tables",
        job="analytics.py",
        name="conveyor-analytics",
        application_args=["--date", day, "--with-late"],
        outlets=GOLD_ASSETS,
        execution_timeout=timedelta(hours=2),
    )
    watermark >> compute


conveyor_clickstream_analytics()
