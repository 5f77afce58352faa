"""Analytics benchmark: one day of N click events, before and after compaction and Z-order.

Usage (the embedded stack must be up: `conveyor stack up`):
    .venv/bin/python benchmarks/analytics.py [--events 5000000] [--users 200000] [--files 64]

N events of one day (2026-03-01, UTC) are generated with Spark and written straight into a
silver-shaped Delta table (in --files files, as a stream leaves many small ones) in a fresh
lake folder on the stack's HDFS. Then `run_analytics` computes the day three times: as written,
after `DeltaTable.optimize().executeCompaction()`, and after `executeZOrderBy("user_id")`.
Figures (wall seconds, peak RSS of this process plus its Spark JVM, sampled by psutil) are
printed and written as JSON under benchmarks/results/; nothing is asserted.
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import platform
import threading
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
DAY = date(2026, 3, 1)


class PeakMemory:
    """Samples RSS of this process and its children (the Spark JVM) until stopped."""

    def __init__(self, interval_s: float = 0.2) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            rss = me.memory_info().rss
            for child in me.children(recursive=True):
                try:
                    rss += child.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, rss)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measured(step: Callable[[], Any]) -> dict[str, float]:
    began = time.monotonic()
    with PeakMemory() as memory:
        step()
    return {
        "wall_s": round(time.monotonic() - began, 2),
        "peak_rss_mib": round(memory.peak / 2**20, 1),
    }


def _catalog(folder: Path, name: str) -> Any:
    import yaml

    from conveyor.catalog import load_catalog
    from conveyor.settings import project_root

    data = yaml.safe_load((project_root() / "conveyor.yaml").read_text())
    data["streams"] = {name: data["streams"]["clicks"]}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "conveyor.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_catalog(path)


def write_silver(spark: Any, uri: str, events: int, users: int, files: int) -> None:
    """`events` clicks of DAY: users pick pages and event types at random (seeded)."""
    from pyspark.sql import functions as F

    kinds = F.array(*(F.lit(k) for k in ("page_view",) * 6 + ("click",) * 3 + ("add_to_cart",)))
    day_s = 86_400
    frame = spark.range(events).select(
        "id",
        F.concat(F.lit("e"), F.col("id").cast("string")).alias("event_id"),
        F.concat(F.lit("u"), (F.rand(1) * users).cast("int").cast("string")).alias("user_id"),
        F.when(F.rand(2) < 0.01, F.lit("purchase"))
        .otherwise(kinds[(F.rand(3) * 10).cast("int")])
        .alias("event_type"),
        F.concat(F.lit("/page/"), (F.rand(4) * 500).cast("int").cast("string")).alias("url"),
        F.timestamp_seconds(F.lit(calendar.timegm(DAY.timetuple())) + F.rand(5) * day_s).alias(
            "ts"
        ),
        F.lit(None).cast("string").alias("session_id"),
        F.lit(None).cast("string").alias("referrer"),
        F.lit("NL").alias("country"),
        F.lit("desktop").alias("device"),
        F.round(F.rand(6) * 200, 2).alias("revenue"),
    )
    frame = frame.select(
        *(c for c in frame.columns if c != "id"),
        F.to_date("ts").alias("event_date"),
        F.lit("clicks").alias("topic"),
        F.lit(0).alias("partition"),
        F.col("id").alias("offset"),
        F.col("ts").alias("kafka_timestamp"),
        F.current_timestamp().alias("ingest_time"),
    )
    frame.repartition(files).write.format("delta").mode("overwrite").partitionBy("event_date").save(
        uri
    )


def file_count(spark: Any, uri: str) -> int:
    from delta.tables import DeltaTable

    return int(DeltaTable.forPath(spark, uri).detail().first()["numFiles"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--files", type=int, default=64, help="files the silver day is written in")
    args = parser.parse_args(argv)

    from delta.tables import DeltaTable

    from conveyor.analytics import run_analytics
    from conveyor.catalog import Layer, table_uri
    from conveyor.settings import Settings
    from conveyor.spark.session import build_session

    run = uuid.uuid4().hex[:8]
    settings = Settings(lake_path=f"/benchmarks/analytics-{run}")
    catalog = _catalog(Path("/tmp") / f"conveyor-bench-{run}", f"clicks_{run}")
    stream = catalog.stream(f"clicks_{run}")
    silver = table_uri(settings, stream.table(Layer.SILVER))
    spark = build_session(settings, "conveyor-bench-analytics")
    figures: dict[str, Any] = {
        "events": args.events,
        "users": args.users,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    try:
        figures["write_silver"] = measured(
            lambda: write_silver(spark, silver, args.events, args.users, args.files)
        )
        steps: list[tuple[str, Callable[[], Any] | None]] = [
            ("as_written", None),
            ("compacted", lambda: DeltaTable.forPath(spark, silver).optimize().executeCompaction()),
            (
                "zordered",
                lambda: DeltaTable.forPath(spark, silver).optimize().executeZOrderBy("user_id"),
            ),
        ]
        for name, prepare in steps:
            entry: dict[str, Any] = {}
            if prepare is not None:
                entry["maintenance"] = measured(prepare)
            entry["silver_files"] = file_count(spark, silver)
            entry["analytics"] = measured(lambda: run_analytics(spark, settings, catalog, [DAY]))
            figures[name] = entry
            print(name, json.dumps(entry), flush=True)
    finally:
        spark.stop()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"analytics-{args.events}-{run}.json"
    out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
