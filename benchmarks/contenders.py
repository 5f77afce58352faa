"""The benchmark's contenders, one per process, so each one's CPU and memory can be metered.

Run by `benchmarks/ingest.py`; every contender reads the same Kafka topic from the earliest
offset and prints JSON lines on stdout: `{"event": "ready", "t": ...}` just before it starts
consuming, and (the ceilings, which land nothing) `{"event": "done", "t": ..., "records": n}`.

    python benchmarks/contenders.py conveyor  --catalog C --stream S [--available-now]
    python benchmarks/contenders.py baseline  --topic T --table URI --checkpoint URI
                                              [--trigger default|available-now|5 seconds]
    python benchmarks/contenders.py medallion --catalog C --stream S --table URI --checkpoint URI
                                              [--trigger available-now|5 seconds]
    python benchmarks/contenders.py deltars   --topic T --table URI [--expect N] [--wait-s 5]
    python benchmarks/contenders.py count     --topic T --expect N
    python benchmarks/contenders.py parse     --topic T --expect N

- conveyor: the real ingest (bronze, silver, quarantine, ledger; exactly once).
- baseline: what a user writes from the Spark and Delta docs: `from_json` with the schema,
  `writeStream.format("delta")`, one table, nothing else.
- medallion: the same job the way the docs teach it: Kafka -> bronze, then bronze -> silver
  (from_json, checks as filters, watermark + dropDuplicatesWithinWatermark on RocksDB state)
  and the failures -> quarantine, as chained streaming queries.
- deltars: a confluent-kafka consumer that parses in Python, writes each batch with delta-rs
  (`write_deltalake`) and commits its offsets after each Delta commit.
- count / parse: ceilings. `count` only counts bytes; `parse` also parses the JSON and encodes
  Parquet in memory, committing nothing anywhere.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

BATCH = 50_000
CLICK_FIELDS = (
    ("event_id", "string"),
    ("user_id", "string"),
    ("session_id", "string"),
    ("event_type", "string"),
    ("url", "string"),
    ("ts", "timestamp"),
    ("referrer", "string"),
    ("country", "string"),
    ("device", "string"),
    ("revenue", "double"),
)


def say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, "t": time.time(), **fields}), flush=True)


# ---------------------------------------------------------------- Spark contenders


def docs_session(name: str) -> Any:
    """The session of a docs contender: Conveyor's (the same jars, JVM options, driver memory,
    HDFS client settings, writers), and the Delta table settings of this round that are
    configuration only, so that a ratio measures design rather than tuning: tables created
    with Conveyor's checkpoint interval and statistics on the columns reads filter by (Kafka
    coordinates and time, event time, the Z-order column; Delta ignores the names a table
    lacks)."""
    from conveyor import catalog
    from conveyor.settings import get_settings
    from conveyor.spark.session import build_session

    spark = build_session(get_settings(), name)
    interval = getattr(catalog, "CHECKPOINT_INTERVAL", None)  # absent from code before it
    if interval is not None:
        defaults = "spark.databricks.delta.properties.defaults."
        spark.conf.set(defaults + "checkpointInterval", str(interval))
        columns = "partition,offset,timestamp,kafka_timestamp,ts,user_id"
        spark.conf.set(defaults + "dataSkippingStatsColumns", columns)
    return spark


def conveyor(args: argparse.Namespace) -> None:
    import logging

    from conveyor.catalog import load_catalog

    # each batch's step times (`<step> ms`, sub-steps too) in the contender's log
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from conveyor.ingest.stream import ingest_stream
    from conveyor.settings import get_settings
    from conveyor.spark.session import build_session

    settings = get_settings()
    catalog = load_catalog(args.catalog)
    spark = build_session(settings, "bench-conveyor")
    try:
        say("ready")
        ingest_stream(spark, settings, catalog, args.stream, available_now=args.available_now)
    finally:
        spark.stop()


def baseline(args: argparse.Namespace) -> None:
    """The docs' way: a schema, from_json, one Delta sink. (The session is Conveyor's only so
    that both get the same jars, driver memory and shuffle partitions.)"""
    from pyspark.sql.functions import col, from_json
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType, TimestampType

    from conveyor.settings import get_settings

    settings = get_settings()
    spark = docs_session("bench-baseline")
    types = {"string": StringType(), "timestamp": TimestampType(), "double": DoubleType()}
    schema = StructType([StructField(name, types[kind]) for name, kind in CLICK_FIELDS])
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_servers)
        .option("subscribe", args.topic)
        .option("startingOffsets", "earliest")
    )
    if args.trigger != "default":
        reader = reader.option("maxOffsetsPerTrigger", str(settings.max_offsets_per_trigger))
    events = (
        reader.load()
        .select(from_json(col("value").cast("string"), schema).alias("event"), col("timestamp"))
        .select("event.*", "timestamp")
    )
    writer = events.writeStream.format("delta").option("checkpointLocation", args.checkpoint)
    if args.trigger == "available-now":
        writer = writer.trigger(availableNow=True)
    elif args.trigger != "default":
        writer = writer.trigger(processingTime=args.trigger)
    say("ready")
    query = writer.start(args.table)
    try:
        query.awaitTermination()
    finally:
        spark.stop()


ROCKSDB = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"


def _catalog_checks(stream: Any) -> tuple[Any, Any]:
    """The catalog's event schema as a Spark schema, and its checks as one boolean Column over
    the parsed struct `event` (what the docs' expectations-as-filters look like)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from conveyor.catalog.types import decimal

    spark_types = {
        "string": T.StringType(),
        "int": T.IntegerType(),
        "long": T.LongType(),
        "float": T.FloatType(),
        "double": T.DoubleType(),
        "boolean": T.BooleanType(),
        "date": T.DateType(),
        "timestamp": T.TimestampType(),
        "bytes": T.BinaryType(),
    }

    def spark_type(name: str) -> Any:
        exact = decimal(name)
        return T.DecimalType(exact.precision, exact.scale) if exact else spark_types[name]

    fields = stream.event_schema.fields
    schema = T.StructType([T.StructField(n, spark_type(f.type)) for n, f in fields.items()])
    valid = F.col("event").isNotNull()
    for name, spec in fields.items():
        value = F.col(f"event.{name}")
        if spec.required:
            valid &= value.isNotNull()
        if spec.allowed is not None:
            valid &= value.isNull() | value.isin(*spec.allowed)
        if spec.pattern is not None:
            valid &= value.isNull() | value.rlike(spec.pattern)
        if spec.minimum is not None:
            valid &= value.isNull() | (value >= spec.minimum)
        if spec.maximum is not None:
            valid &= value.isNull() | (value <= spec.maximum)
    return schema, valid


def medallion(args: argparse.Namespace) -> None:
    """The docs' medallion: Kafka -> bronze (raw record and coordinates) in one query; bronze
    -> silver in a second (from_json with the catalog schema, the catalog's checks as filters,
    a watermark of the late-data tolerance and dropDuplicatesWithinWatermark on the dedup key,
    RocksDB state) and the failures -> quarantine in a third, all at Conveyor's trigger. For a
    drain the bronze query is available-now and the downstream ones re-run available-now until
    the bronze query has ended and they have caught up."""
    from pyspark.sql import functions as F

    from conveyor.catalog import load_catalog
    from conveyor.settings import get_settings

    settings = get_settings()
    stream = load_catalog(args.catalog).stream(args.stream)
    spark = docs_session("bench-medallion")
    spark.conf.set("spark.sql.streaming.stateStore.providerClass", ROCKSDB)
    schema, valid = _catalog_checks(stream)
    bronze_uri, quarantine_uri = f"{args.table}__bronze", f"{args.table}__quarantine"
    kafka = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", settings.kafka_servers)
        .option("subscribe", stream.topic.name)
        .option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", str(settings.max_offsets_per_trigger))
        .load()
        .select("key", "value", "topic", "partition", "offset", "timestamp")
    )
    bronze = kafka.writeStream.format("delta").option("checkpointLocation", f"{args.checkpoint}/b")
    time_field = stream.event_schema.event_time
    tolerance = int(stream.event_schema.late_tolerance.total_seconds())

    def downstream(trigger: dict[str, Any]) -> list[Any]:
        """Start bronze -> silver and bronze -> quarantine (bronze must exist by then)."""
        parsed = (
            spark.readStream.format("delta")
            .load(bronze_uri)
            .withColumn("event", F.from_json(F.col("value").cast("string"), schema))
            .withColumn("_valid", F.coalesce(valid, F.lit(False)))
        )
        silver = (
            parsed.where("_valid")
            .select(
                "event.*",
                "topic",
                "partition",
                "offset",
                F.col("timestamp").alias("kafka_timestamp"),
            )
            .withWatermark(time_field, f"{tolerance} seconds")
            .dropDuplicatesWithinWatermark(list(stream.event_schema.dedup_key))
            .writeStream.format("delta")
            .option("checkpointLocation", f"{args.checkpoint}/s")
            .trigger(**trigger)
        )
        quarantine = (
            parsed.where(~F.col("_valid"))
            .select("value", "topic", "partition", "offset", "timestamp")
            .withColumn("reason", F.lit("failed a catalog check"))
            .writeStream.format("delta")
            .option("checkpointLocation", f"{args.checkpoint}/q")
            .trigger(**trigger)
        )
        return [silver.start(args.table), quarantine.start(quarantine_uri)]

    say("ready")
    try:
        if args.trigger == "available-now":
            first = bronze.trigger(availableNow=True).start(bronze_uri)
            while True:
                upstream_active = first.isActive
                if _is_delta(spark, bronze_uri):
                    for query in downstream({"availableNow": True}):
                        query.awaitTermination()
                if not upstream_active:
                    break
                first.awaitTermination(2)  # let the first bronze batch land before starting
            first.awaitTermination()
        else:
            first = bronze.trigger(processingTime=args.trigger).start(bronze_uri)
            while not _is_delta(spark, bronze_uri):
                first.awaitTermination(1)  # the downstream queries need bronze to exist
            downstream({"processingTime": args.trigger})
            spark.streams.awaitAnyTermination()
    finally:
        spark.stop()


def _is_delta(spark: Any, uri: str) -> bool:
    """Whether the table's first commit (with its schema) has landed."""
    from conveyor.delta_rs import open_table

    return open_table(uri) is not None


# ---------------------------------------------------------------- Python consumers


def _consumer(topic: str) -> Any:
    from confluent_kafka import Consumer

    from conveyor.settings import get_settings

    consumer = Consumer(
        {
            "bootstrap.servers": get_settings().kafka_servers,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    return consumer


def _arrow_schema() -> Any:
    import pyarrow as pa

    kinds = {"string": pa.string(), "timestamp": pa.timestamp("us", "UTC"), "double": pa.float64()}
    extra = [
        ("kafka_timestamp", pa.timestamp("ms", "UTC")),
        ("partition", pa.int32()),
        ("offset", pa.int64()),
    ]
    return pa.schema([*((name, kinds[kind]) for name, kind in CLICK_FIELDS), *extra])


def _to_arrow(messages: list[Any], schema: Any) -> Any:
    """Parse JSON values into an Arrow table (timestamps from ISO-8601 strings)."""
    import pyarrow as pa

    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    for message in messages:
        event = json.loads(message.value())
        for name, kind in CLICK_FIELDS:
            value = event.get(name)
            if kind == "timestamp" and value is not None:
                value = datetime.fromisoformat(value)
            columns[name].append(value)
        columns["kafka_timestamp"].append(message.timestamp()[1])
        columns["partition"].append(message.partition())
        columns["offset"].append(message.offset())
    return pa.table(columns, schema=schema)


def deltars(args: argparse.Namespace) -> None:
    from deltalake import write_deltalake

    schema = _arrow_schema()
    consumer = _consumer(args.topic)
    landed, pending, first_at = 0, [], None
    say("ready")
    try:
        while args.expect is None or landed < args.expect:
            pending += [
                m for m in consumer.consume(num_messages=10_000, timeout=0.5) if not m.error()
            ]
            first_at = first_at or (time.monotonic() if pending else None)
            waited = first_at is not None and time.monotonic() - first_at >= args.wait_s
            last = args.expect is not None and landed + len(pending) >= args.expect
            if pending and (len(pending) >= BATCH or waited or last):
                write_deltalake(args.table, _to_arrow(pending, schema), mode="append")
                consumer.commit(asynchronous=False)  # offsets only after the Delta commit
                landed += len(pending)
                pending, first_at = [], None
    finally:
        consumer.close()


def count(args: argparse.Namespace) -> None:
    consumer = _consumer(args.topic)
    records = size = 0
    say("ready")
    while records < args.expect:
        for message in consumer.consume(num_messages=10_000, timeout=0.5):
            if not message.error():
                records += 1
                size += len(message.value())
    say("done", records=records, bytes=size)
    consumer.close()


def parse(args: argparse.Namespace) -> None:
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    consumer = _consumer(args.topic)
    records = encoded = 0
    pending: list[Any] = []
    say("ready")
    while records < args.expect:
        pending += [m for m in consumer.consume(num_messages=10_000, timeout=0.5) if not m.error()]
        if len(pending) >= BATCH or (pending and records + len(pending) >= args.expect):
            buffer = io.BytesIO()
            pq.write_table(_to_arrow(pending, schema), buffer, compression="snappy")
            records += len(pending)
            encoded += buffer.tell()
            pending = []
    say("done", records=records, parquet_bytes=encoded)
    consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="contender", required=True)
    one = sub.add_parser("conveyor")
    one.add_argument("--catalog", type=Path, required=True)
    one.add_argument("--stream", required=True)
    one.add_argument("--available-now", action="store_true")
    one = sub.add_parser("baseline")
    one.add_argument("--topic", required=True)
    one.add_argument("--table", required=True)
    one.add_argument("--checkpoint", required=True)
    one.add_argument("--trigger", default="default")
    one = sub.add_parser("medallion")
    one.add_argument("--catalog", type=Path, required=True)
    one.add_argument("--stream", required=True)
    one.add_argument("--table", required=True)
    one.add_argument("--checkpoint", required=True)
    one.add_argument("--trigger", default="available-now")
    one = sub.add_parser("deltars")
    one.add_argument("--topic", required=True)
    one.add_argument("--table", required=True)
    one.add_argument("--expect", type=int)
    one.add_argument("--wait-s", type=float, default=5.0)
    for name in ("count", "parse"):
        one = sub.add_parser(name)
        one.add_argument("--topic", required=True)
        one.add_argument("--expect", type=int, required=True)
    args = parser.parse_args()
    {
        "conveyor": conveyor,
        "baseline": baseline,
        "medallion": medallion,
        "deltars": deltars,
        "count": count,
        "parse": parse,
    }[args.contender](args)


if __name__ == "__main__":
    main()
