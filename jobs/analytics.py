"""Compute the gold tables for one day or a range of days (UTC), idempotently.

`conveyor analytics` under spark-submit: the same command with the same arguments. Gold tables:
sessions, daily page stats, daily users, daily funnel, hourly service errors. Each day's
partitions are replaced, so reruns and backfills give identical tables.

Usage:
    spark-submit $(conveyor spark-args) jobs/analytics.py --date 2026-03-01 [--with-late]
    spark-submit $(conveyor spark-args) jobs/analytics.py --from 2026-03-01 --to 2026-03-03

--with-late also recomputes every computed day that late events changed since it was computed
(read from the ingest ledger). Exit codes: 0 done, 1 failed.
"""

from __future__ import annotations

if __name__ == "__main__":
    from conveyor.cli import run_job

    run_job(["analytics"])
