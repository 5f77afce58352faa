"""Maintenance benchmark: a clicks table of thousands of small files, queried before and after
compaction and after Z-order, with the throughput of each rewrite.

Usage (the embedded stack must be up: `conveyor stack up`):
    .venv/bin/python benchmarks/maintenance.py [--files 2000] [--rows 1000000] [--days 4]
        [--target-mb 2] [--small-mb 1] [--repeats 3]

Figures are printed (and written as JSON under benchmarks/results/); nothing is asserted.
- The table is built with `--files` small appends' worth of files (one commit per day and
  round) on the stack's HDFS, with closed (past) event dates.
- Queries: page views per URL for one day (partition pruning only) and one user's events over
  all days (benefits from Z-order data skipping). Median of --repeats runs after a warm-up.
- Compaction and Z-order run through `compact_table` with the table's policy (`--target-mb`,
  `--small-mb`); between them the table is restored to its small-file version, so both start
  from the same layout. MB/s is bytes rewritten per second of the whole run (planning, OPTIMIZE,
  statistics afterwards, the maintenance log).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
USER = "u00042"


def _catalog(folder: Path, name: str, target_mb: int, small_mb: int) -> Any:
    import yaml

    from conveyor.catalog import load_catalog
    from conveyor.settings import project_root

    data = yaml.safe_load((project_root() / "conveyor.yaml").read_text())
    clicks = data["streams"]["clicks"]
    clicks["tables"]["maintenance"].update(
        {"target_file_size": f"{target_mb}MB", "small_file_threshold": f"{small_mb}MB"}
    )
    data["streams"] = {name: clicks}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "conveyor.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_catalog(path)


def _build(spark: Any, uri: str, files: int, rows: int, days: list[date]) -> float:
    """Write `files` small files (rounds of one commit per day); returns seconds taken."""
    from pyspark.sql import functions as F

    per_commit = 20
    rounds = max(1, files // (per_commit * len(days)))
    rows_per_file = max(1, rows // (rounds * per_commit * len(days)))
    pages = F.array(*[F.lit(p) for p in ("/", "/search", "/cart", "/checkout", "/product/42")])
    kinds = F.array(*[F.lit(k) for k in ("page_view", "page_view", "click", "add_to_cart")])
    began = time.monotonic()
    for round_ in range(rounds):
        for day in days:
            seed = (round_ * len(days) + days.index(day)) * per_commit * rows_per_file
            midnight = int(datetime.combine(day, datetime.min.time(), UTC).timestamp())
            frame = (
                spark.range(seed, seed + per_commit * rows_per_file, numPartitions=per_commit)
                .withColumn("h", F.xxhash64("id"))
                .select(
                    F.sha2(F.col("id").cast("string"), 256).substr(1, 32).alias("event_id"),
                    F.format_string("u%05d", F.pmod("h", F.lit(5000))).alias("user_id"),
                    F.element_at(kinds, (F.pmod("h", F.lit(4)) + 1).cast("int")).alias(
                        "event_type"
                    ),
                    F.element_at(pages, (F.pmod(F.col("h") / 7, F.lit(5)) + 1).cast("int")).alias(
                        "url"
                    ),
                    F.timestamp_seconds(F.lit(midnight) + F.pmod("id", F.lit(86400))).alias("ts"),
                    F.lit(day).alias("event_date"),
                )
            )
            frame.write.format("delta").mode("append").partitionBy("event_date").save(uri)
    return time.monotonic() - began


def _timed(action: Any, repeats: int) -> float:
    action()  # warm-up
    times = []
    for _ in range(repeats):
        began = time.monotonic()
        action()
        times.append(time.monotonic() - began)
    return statistics.median(times)


def _queries(spark: Any, uri: str, day: date, repeats: int) -> dict[str, float]:
    from pyspark.sql import functions as F

    def page_views() -> None:
        frame = spark.read.format("delta").load(uri)
        frame.where(
            (F.col("event_date") == F.lit(day)) & (F.col("event_type") == "page_view")
        ).groupBy("url").count().collect()

    def one_user() -> None:
        frame = spark.read.format("delta").load(uri)
        frame.where(F.col("user_id") == USER).orderBy("ts").collect()

    return {
        "daily_page_views_s": round(_timed(page_views, repeats), 3),
        "one_user_events_s": round(_timed(one_user, repeats), 3),
    }


def _layout(stats: Any) -> dict[str, Any]:
    return {
        "files": stats.files,
        "mb": round(stats.bytes / 1024 / 1024, 2),
        "avg_file_kb": round(stats.average_file_size / 1024, 1),
        "small_share": round(stats.small_share, 3),
    }


def _rewrite(spark: Any, settings: Any, catalog: Any, ref: Any, zorder: bool) -> dict[str, Any]:
    from conveyor.maintenance import CompactOptions, compact_table

    run = compact_table(spark, settings, catalog, ref, CompactOptions(zorder=zorder))
    mb = run.bytes_before / 1024 / 1024
    return {
        "status": run.status.value,
        "files": f"{run.files_before} -> {run.files_after}",
        "mb_rewritten": round(mb, 2),
        "seconds": round(run.duration_s, 2),
        "mb_per_s": round(mb / run.duration_s, 2) if run.duration_s else None,
        "files_per_s": round(run.files_before / run.duration_s, 1) if run.duration_s else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=4)
    parser.add_argument("--target-mb", type=int, default=2)
    parser.add_argument("--small-mb", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from delta.tables import DeltaTable

    from conveyor.catalog import Layer, table_uri
    from conveyor.maintenance import table_stats
    from conveyor.settings import Settings
    from conveyor.spark.session import build_session

    settings = Settings()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    catalog = _catalog(settings.home / "benchmarks" / name, name, args.target_mb, args.small_mb)
    ref = catalog.stream(name).table(Layer.SILVER)
    uri = table_uri(settings, ref)
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=d) for d in range(args.days + 1, 1, -1)]
    spark = build_session(settings, "conveyor-maintenance-benchmark")
    try:
        build_s = _build(spark, uri, args.files, args.rows, days)
        began = time.monotonic()
        small = table_stats(settings, ref)
        stats_s = time.monotonic() - began
        assert small is not None
        result: dict[str, Any] = {
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
            "table": uri,
            "rows": spark.read.format("delta").load(uri).count(),
            "build_s": round(build_s, 1),
            "stats_s": round(stats_s, 2),
            "small_files": {
                **_layout(small),
                "queries": _queries(spark, uri, days[1], args.repeats),
            },
        }
        result["compaction"] = _rewrite(spark, settings, catalog, ref, zorder=False)
        compacted = table_stats(settings, ref)
        result["compacted"] = {
            **_layout(compacted),
            "queries": _queries(spark, uri, days[1], args.repeats),
        }
        DeltaTable.forPath(spark, uri).restoreToVersion(small.version)
        result["zorder"] = _rewrite(spark, settings, catalog, ref, zorder=True)
        zordered = table_stats(settings, ref)
        result["zordered"] = {
            **_layout(zordered),
            "queries": _queries(spark, uri, days[1], args.repeats),
        }
    finally:
        spark.stop()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"maintenance-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
