"""Land a Kafka topic in its bronze Delta table on the lake.

Usage:
    spark-submit $(conveyor spark-args) jobs/stream_ingest.py --topic clicks [--available-now]
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topic", required=True, help="Kafka topic to land")
    parser.add_argument(
        "--available-now",
        action="store_true",
        help="process the backlog and stop (default: run continuously)",
    )
    args = parser.parse_args(argv)

    from conveyor.ingest.stream import land_topic
    from conveyor.settings import get_settings
    from conveyor.spark.session import build_session

    settings = get_settings()
    spark = build_session(settings, f"conveyor-ingest-{args.topic}")
    try:
        result = land_topic(spark, settings, args.topic, available_now=args.available_now)
        print(f"landed topic {result.topic}: {result.rows_in_table} rows in {result.table_uri}")
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
