"""The small-batch path decides the same duplicates as the large one, on the same input.

A batch of at most SMALL_BATCH records decides its duplicates on the driver (its keys
collected, silver read for them alone, through `ActiveFiles` or Delta); a larger one in Spark
(`repeats`). Replay and rebuild rely on the decision being the table's, whichever path took it.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor.catalog import Layer
from conveyor.ingest import quality
from conveyor.ingest.core import RunState, StreamTarget
from conveyor.ingest.dedup import decide_on_driver, repeats, silver_share
from conveyor.ingest.silver import silver_schema
from conveyor.settings import Settings
from tests.catalogs import catalog_variant, stream_named

START = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
TOPIC = "clicks"


def _event(rng: random.Random, pool: list[str], partition: int, offset: int) -> dict[str, Any]:
    at = START + timedelta(seconds=rng.randrange(0, 5 * 3600))
    kafka = at + timedelta(seconds=rng.choice((0, 0, 1, 30)))  # ties across partitions
    return {
        "event_id": rng.choice(pool),
        "ts": at,
        "kafka_timestamp": kafka,
        "topic": TOPIC,
        "partition": partition,
        "offset": offset,
    }


def _batch(spark: Any, events: list[dict[str, Any]]) -> Any:
    """A classified batch as `_BatchWork.parse` gives it (the fields dedup reads)."""
    from pyspark.sql import functions as F

    rows = [
        (e["event_id"], e["ts"], e["kafka_timestamp"], e["topic"], e["partition"], e["offset"])
        for e in events
    ]
    frame = spark.createDataFrame(
        rows,
        "event_id string, ts timestamp, kafka_timestamp timestamp, topic string, "
        "partition int, offset bigint",
    )
    none = F.expr(f"CAST(array() AS {quality.PROBLEM_TYPE})")
    return (
        frame.withColumn(quality.PROBLEMS, none)
        .withColumn(quality.EVENT_TIME, F.col("ts"))
        .withColumn(quality.EVENT_DATE, F.to_date("ts"))
    )


def _write_silver(spark: Any, target: StreamTarget, events: list[dict[str, Any]]) -> None:
    """Append the events to silver as the stream lands them (the other columns null)."""
    from pyspark.sql import functions as F

    batch = _batch(spark, events).withColumn("ingest_time", F.current_timestamp())
    fields = [c.split(" ", 1) for c in silver_schema(target.stream).split(", ")]
    silver = batch.select(
        *(
            (F.col(name) if name.strip("`") in batch.columns else F.lit(None))
            .cast(kind)
            .alias(name.strip("`"))
            for name, kind in fields
        )
    )
    partition_by = list(target.table(Layer.SILVER).partition_by)
    silver.write.format("delta").mode("append").partitionBy(*partition_by).save(target.silver)


@pytest.fixture
def target(tmp_path: Path, lake: Settings) -> StreamTarget:
    catalog = catalog_variant(tmp_path / "catalog")
    stream = catalog.stream(stream_named(catalog, "clicks"))
    return StreamTarget.resolve(lake, stream, "app-dedup")


def _coordinates(frame: Any) -> set[tuple[str, int, int]]:
    if frame is None:
        return set()
    return {(r["topic"], r["partition"], r["offset"]) for r in frame.collect()}


def test_the_small_and_the_large_path_decide_the_same_duplicates(
    spark: Any, lake: Settings, target: StreamTarget
) -> None:
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    rng = random.Random(35)
    pool = [f"e-{i}" for i in range(300)]
    # silver: three appends (earlier batches), some of the same Kafka records the batch holds
    history = [_event(rng, pool, p, 10_000 + i) for i in range(200) for p in range(2)]
    batch_events = [_event(rng, pool, p, 20_000 + i) for i in range(250) for p in range(4)]
    replayed = rng.sample(batch_events, 40)  # landed already by an earlier attempt
    for part in (history[:150], history[150:], replayed):
        _write_silver(spark, target, part)
    batch = _batch(spark, batch_events)

    state = RunState(lake)
    large = _coordinates(repeats(spark, batch, target, state, None))
    # silver's slice small beside the batch (its size from the files' statistics): one
    # aggregation over both keys, the same decision
    index = RunState(lake).silver_files(target)
    assert index.refresh(spark) and index.records(lambda _: True) == len(history) + len(replayed)
    shuffled = repeats(spark, batch, target, RunState(lake), None, batch_rows=len(batch_events))
    assert _coordinates(shuffled) == large
    # silver read through Delta (a filter keeps the file index out of it): the same decision
    through_delta = repeats(spark, batch, target, RunState(lake), None, F.lit(True))
    assert _coordinates(through_delta) == large
    small_frame, small_share = decide_on_driver(spark, batch, target, RunState(lake))
    assert _coordinates(small_frame) == large
    assert 100 < len(large) < len(batch_events)  # both kinds of repeats occur

    large_share = silver_share(batch, repeats(spark, batch, target, state, None))
    assert small_share == large_share

    # silver compacted since the index was built: the removed files are followed
    index_state = RunState(lake)
    decide_on_driver(spark, batch, target, index_state)
    before = index_state.silver_files(target).version
    DeltaTable.forPath(spark, target.silver).optimize().executeCompaction()
    again, _ = decide_on_driver(spark, batch, target, index_state)
    assert index_state.silver_files(target).version > before
    assert index_state.silver_files(target).usable
    assert _coordinates(again) == large


def test_the_scan_counts_the_share_of_a_batch_it_settled(spark: Any, target: StreamTarget) -> None:
    """A large batch whose records the certifier all settled, without repeats, takes its silver
    share from the scan that fills its cache: the share `silver_share` counts, the late records
    (behind their partition's watermark) quarantined in both."""
    import json

    from conveyor.ingest import decode
    from conveyor.ingest.landings.append import classify, scan_batch
    from conveyor.produce import click_events

    schema = target.stream.event_schema
    events = list(click_events(2_000, seed=35, start=START))
    rows = [
        (
            json.dumps(e).encode(),
            datetime.fromisoformat(e["ts"]) + timedelta(seconds=1),
            TOPIC,
            i % 4,
            i,
        )
        for i, e in enumerate(events)
    ]
    frame = spark.createDataFrame(
        rows, "value binary, kafka_timestamp timestamp, topic string, partition int, offset bigint"
    )
    middle = datetime.fromisoformat(events[1_000]["ts"])
    # partition 1 has none: nothing is late there
    watermarks = {0: middle, 2: middle - timedelta(minutes=5), 3: START - timedelta(days=1)}
    decoded = decode.decode(frame, schema)
    scan = scan_batch(decoded, schema, watermarks)
    classified = classify(
        decode.settled(decoded, schema).transform(quality.with_event_time(schema)), watermarks
    )
    assert scan.unsettled == 0
    assert scan.settled == silver_share(classified, None)
    assert 0 < scan.settled.quarantined < len(events)
    assert scan.settled.rows + scan.settled.quarantined == len(events)
