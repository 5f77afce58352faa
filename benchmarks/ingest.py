"""Ingest benchmark: backlog throughput (available-now) and end-to-end latency at a fixed rate.

Usage (the embedded stack must be up: `conveyor stack up`):
    .venv/bin/python benchmarks/ingest.py [--events 1000000] [--rate 2000] [--seconds 60]
        [--trigger "5 seconds"] [--quick]

Figures are printed (and written as JSON under benchmarks/results/); nothing is asserted.
- throughput: N `clicks` events produced ahead into a 4-partition topic, then one available-now
  run; events/s of wall time and events per CPU-second of the driver (Python + its Spark JVM).
- latency: events produced at --rate for --seconds while the stream runs with --trigger; a
  record's latency is from its Kafka CreateTime (set by the producer when it sends) to the end
  of the micro-batch that landed it (the ledger's ended_at, after silver and quarantine commit).
"""

from __future__ import annotations

import argparse
import json
import platform
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _catalog(folder: Path, name: str) -> Any:
    import yaml

    from conveyor.catalog import load_catalog
    from conveyor.settings import project_root

    data = yaml.safe_load((project_root() / "conveyor.yaml").read_text())
    clicks = data["streams"]["clicks"]
    data["streams"] = {name: clicks}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "conveyor.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_catalog(path)


def _provision(settings: Any, catalog: Any) -> None:
    from conveyor.kafka.topics import admin_client, apply_plan, plan_topics

    with admin_client(settings) as admin:
        apply_plan(plan_topics(catalog, admin), admin)


def _produce(settings: Any, topic: str, count: int, seed: int, rate: float | None = None) -> float:
    from conveyor.produce import click_events, encode, send_events

    began = time.monotonic()
    send_events(
        settings, topic, (encode(e, "user_id") for e in click_events(count, seed=seed)), rate=rate
    )
    return time.monotonic() - began


def _cpu_seconds() -> float:
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            total += sum(child.cpu_times()[:2])
        except psutil.Error:
            continue
    return total


def _peak_rss_mib() -> float:
    import psutil

    me = psutil.Process()
    rss = me.memory_info().rss
    for child in me.children(recursive=True):
        try:
            rss += child.memory_info().rss
        except psutil.Error:
            continue
    return rss / 2**20


def throughput(spark: Any, settings: Any, folder: Path, events: int) -> dict[str, Any]:
    from conveyor.ingest.stream import ingest_stream

    name = f"bench_{uuid.uuid4().hex[:6]}"
    catalog = _catalog(folder / name, name)
    _provision(settings, catalog)
    produce_s = _produce(settings, catalog.stream(name).topic.name, events, seed=1)
    cpu0, wall0 = _cpu_seconds(), time.monotonic()
    summary = ingest_stream(spark, settings, catalog, name, available_now=True)
    wall, cpu = time.monotonic() - wall0, _cpu_seconds() - cpu0
    landed = (
        summary.total("silver_rows")
        + summary.total("quarantined")
        + summary.total("duplicates_dropped")
    )
    return {
        "events": events,
        "landed": landed,
        "batches": len(summary.batches),
        "produce_seconds": round(produce_s, 1),
        "ingest_seconds": round(wall, 1),
        "events_per_second": round(events / wall),
        "driver_cpu_seconds": round(cpu, 1),
        "events_per_cpu_second": round(events / cpu) if cpu else None,
        "rss_mib_after": round(_peak_rss_mib()),
    }


def latency(
    spark: Any, settings: Any, folder: Path, rate: float, seconds: int, trigger: str
) -> dict[str, Any]:
    from pyspark.sql import functions as F

    from conveyor.catalog import Layer, ledger_uri, table_uri
    from conveyor.ingest.stream import ingest_stream
    from conveyor.settings import Settings

    name = f"lat_{uuid.uuid4().hex[:6]}"
    catalog = _catalog(folder / name, name)
    _provision(settings, catalog)
    paced = Settings(**{**settings.model_dump(), "trigger_interval": trigger})
    count = int(rate * seconds)
    producer = threading.Thread(
        target=_produce, args=(settings, catalog.stream(name).topic.name, count, 2, rate)
    )
    runner = threading.Thread(target=ingest_stream, args=(spark, paced, catalog, name), daemon=True)
    runner.start()
    producer.start()
    producer.join()
    silver_uri = table_uri(settings, catalog.stream(name).table(Layer.SILVER))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if spark.read.format("delta").load(silver_uri).count() >= count:
                break
        except Exception:  # the table may not exist yet
            pass
        time.sleep(1)  # polling the table for the last rows, bounded by the deadline
    for query in spark.streams.active:
        query.stop()
    batches = (
        spark.read.format("delta")
        .load(ledger_uri(settings))
        .where((F.col("stream") == name) & (F.col("kind") == "batch"))
        .select("ended_at", F.explode("offsets").alias("o"))
        .select("ended_at", "o.partition", "o.start_offset", "o.end_offset")
    )
    rows = (
        spark.read.format("delta").load(silver_uri).select("partition", "offset", "kafka_timestamp")
    )
    joined = rows.join(
        batches,
        (rows["partition"] == batches["partition"])
        & (rows["offset"] >= batches["start_offset"])
        & (rows["offset"] < batches["end_offset"]),
    )
    seconds_col = (F.unix_millis("ended_at") - F.unix_millis("kafka_timestamp")) / 1000.0
    q = (
        joined.select(seconds_col.alias("s"))
        .agg(
            F.count("s").alias("n"),
            F.percentile_approx("s", 0.5, 10000).alias("p50"),
            F.percentile_approx("s", 0.95, 10000).alias("p95"),
            F.percentile_approx("s", 0.99, 10000).alias("p99"),
            F.max("s").alias("max"),
        )
        .first()
    )
    return {
        "rate": rate,
        "seconds": seconds,
        "trigger": trigger,
        "events": count,
        "measured": q["n"],
        "p50_s": round(q["p50"], 2),
        "p95_s": round(q["p95"], 2),
        "p99_s": round(q["p99"], 2),
        "max_s": round(q["max"], 2),
    }


def _shown(figures: dict[str, Any]) -> dict[str, Any]:
    print(json.dumps(figures), flush=True)  # figures as soon as they exist
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--trigger", default="5 seconds")
    parser.add_argument("--quick", action="store_true", help="small sizes, to prove it works")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.seconds, args.rate = 5000, 10, 200.0

    import tempfile

    import psutil

    from conveyor.settings import get_settings
    from conveyor.spark.session import build_session

    settings = get_settings()
    spark = build_session(settings, "conveyor-bench-ingest")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {
                    "cores": psutil.cpu_count(),
                    "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                    "python": platform.python_version(),
                    "spark": spark.version,
                    "spark_master": settings.spark_master,
                },
                "throughput": _shown(throughput(spark, settings, Path(tmp), args.events)),
                "latency": latency(
                    spark, settings, Path(tmp), args.rate, args.seconds, args.trigger
                ),
            }
    finally:
        spark.stop()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ingest-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
