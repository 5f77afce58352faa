"""Run one catalog stream: Kafka topic into its bronze, silver and quarantine Delta tables.

Usage:
    spark-submit $(conveyor spark-args) jobs/stream_ingest.py --stream clicks [--available-now]
        [--accept-data-loss] [--catalog conveyor.yaml]

Exit codes: 0 done, 1 failed, 3 Kafka lost data the checkpoint expects (see --accept-data-loss).
A job that seems stuck explains itself: `kill -USR1 <pid of this Python process>` prints every
Python thread's stack to stderr (`kill -QUIT <pid of the spark-submit JVM>`: the JVM's threads).
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", required=True, help="stream name from the catalog")
    parser.add_argument(
        "--available-now",
        action="store_true",
        help="land the backlog and stop (default: run continuously)",
    )
    parser.add_argument(
        "--accept-data-loss",
        action="store_true",
        help="continue from the earliest offsets Kafka has; record the gap",
    )
    parser.add_argument("--catalog", type=Path, help="catalog file (default: settings)")
    args = parser.parse_args(argv)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    from conveyor.catalog import resolve_catalog
    from conveyor.errors import ConveyorError
    from conveyor.ingest.stream import ingest_stream
    from conveyor.kafka.topics import require_topic
    from conveyor.settings import get_settings
    from conveyor.spark.session import build_session

    settings = get_settings()
    try:
        catalog = resolve_catalog(settings, args.catalog)
        require_topic(settings, catalog.stream(args.stream).topic.name)  # before Spark starts
    except ConveyorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    spark = build_session(settings, f"conveyor-ingest-{args.stream}")
    try:
        summary = ingest_stream(
            spark,
            settings,
            catalog,
            args.stream,
            available_now=args.available_now,
            accept_data_loss=args.accept_data_loss,
        )
    except ConveyorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        spark.stop()
    print(
        f"stream {args.stream}: {len(summary.batches)} batch(es), "
        f"{summary.total('rows_read')} read, {summary.total('silver_rows')} silver, "
        f"{summary.total('quarantined')} quarantined, "
        f"{summary.total('duplicates_dropped')} duplicates dropped"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
