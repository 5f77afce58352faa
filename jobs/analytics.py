"""Compute the gold tables for one day or a range of days (UTC), idempotently.

Gold tables: sessions, daily page stats, daily users, daily funnel, hourly service errors. Each
day's partitions are replaced, so reruns and backfills give identical tables.

Usage:
    spark-submit $(conveyor spark-args) jobs/analytics.py --date 2026-03-01 [--with-late]
    spark-submit $(conveyor spark-args) jobs/analytics.py --from 2026-03-01 --to 2026-03-03

--with-late also recomputes every computed day that late events changed since it was computed
(read from the ingest ledger). Exit codes: 0 done, 1 failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--date", type=date.fromisoformat, help="one day, YYYY-MM-DD (UTC)")
    parser.add_argument("--from", dest="first", type=date.fromisoformat, help="first day")
    parser.add_argument("--to", dest="last", type=date.fromisoformat, help="last day (included)")
    parser.add_argument("--with-late", action="store_true", help="also recompute stale days")
    parser.add_argument("--catalog", type=Path, help="catalog file (default: settings)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    from conveyor.analytics import requested_days, run_analytics
    from conveyor.catalog import resolve_catalog
    from conveyor.errors import ConveyorError
    from conveyor.settings import get_settings
    from conveyor.spark.session import build_session

    settings = get_settings()
    spark = None
    try:
        days = requested_days(args.date, args.first, args.last)
        catalog = resolve_catalog(settings, args.catalog)
        spark = build_session(settings, "conveyor-analytics")
        summary = run_analytics(spark, settings, catalog, days, include_stale=args.with_late)
    except ConveyorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        if spark is not None:
            spark.stop()
    print(summary.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
