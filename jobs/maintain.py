"""Compact or vacuum catalog tables (the same library calls as `conveyor compact | vacuum`).

Usage:
    spark-submit $(conveyor spark-args) jobs/maintain.py compact (--table clicks_silver | --all)
        [--zorder] [--include-open] [--force] [--catalog conveyor.yaml]
    spark-submit $(conveyor spark-args) jobs/maintain.py vacuum (--table clicks_silver | --all)
        [--dry-run] [--retain 10d] [--catalog conveyor.yaml]

Exit codes: 0 done (also when nothing was due, or another run held a table's lock), 1 failed or
refused (e.g. a retention below the safe one).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("operation", choices=("compact", "vacuum"))
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--table", help="table name from the catalog, e.g. clicks_silver")
    which.add_argument("--all", action="store_true", help="every table of the catalog")
    parser.add_argument("--zorder", action="store_true", help="compact: Z-order by zorder_by")
    parser.add_argument("--include-open", action="store_true", help="compact: open partitions too")
    parser.add_argument("--force", action="store_true", help="compact: 2+ small files suffice")
    parser.add_argument("--dry-run", action="store_true", help="vacuum: only list the files")
    parser.add_argument("--retain", help="vacuum: history to keep, e.g. 10d (default: safe)")
    parser.add_argument("--catalog", type=Path, help="catalog file (default: settings)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    from conveyor.catalog import resolve_catalog
    from conveyor.errors import ConveyorError
    from conveyor.maintenance import CompactOptions, VacuumOptions, maintain, select_tables
    from conveyor.settings import get_settings
    from conveyor.spark.session import build_session
    from conveyor.units import parse_duration

    settings = get_settings()
    options: CompactOptions | VacuumOptions
    try:
        catalog = resolve_catalog(settings, args.catalog)
        tables = select_tables(catalog, args.table, args.all)
        if args.operation == "vacuum":
            retention = parse_duration(args.retain) if args.retain else None
            options = VacuumOptions(retention=retention, dry_run=args.dry_run)
            options.refuse_unsafe(settings, tables)
        else:
            options = CompactOptions(
                zorder=args.zorder, include_open=args.include_open, force=args.force
            )
    except (ConveyorError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    spark = build_session(settings, f"conveyor-{args.operation}")
    try:
        runs = maintain(spark, settings, catalog, tables, options)
    except ConveyorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        spark.stop()
    for run in runs:
        print(json.dumps(run.to_dict()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
