"""Real broker round trip, and Spark streaming Kafka into a Delta table on hdfs:// and back."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from conveyor.kafka.clients import client_options
from conveyor.produce import click_events, encode, send_events
from conveyor.settings import Settings
from tests.catalogs import catalog_variant, provision, stream_named


def _topic(settings: Settings, partitions: int = 2) -> str:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    name = f"t-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(**client_options(settings))
    try:
        admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        admin.close()
    return name


def test_produce_and_consume_through_the_broker(settings: Settings) -> None:
    from kafka import KafkaConsumer

    topic = _topic(settings)
    events = list(click_events(50, seed=1))
    assert send_events(settings, topic, (encode(e, "user_id") for e in events)) == 50
    consumer = KafkaConsumer(
        topic,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
        **client_options(settings),
    )
    seen = []
    for record in consumer:
        seen.append(json.loads(record.value))
        if len(seen) == 50:
            break
    consumer.close()
    assert sorted(e["event_id"] for e in seen) == sorted(e["event_id"] for e in events)


def test_stream_kafka_into_delta_on_hdfs_and_read_back(
    settings: Settings, spark: Any, tmp_path: Path
) -> None:
    from conveyor.catalog import Layer, table_uri
    from conveyor.ingest.stream import ingest_stream

    catalog = catalog_variant(tmp_path)
    provision(settings, catalog)
    clicks = catalog.stream(stream_named(catalog, "clicks"))
    events = list(click_events(300, seed=2))
    send_events(settings, clicks.topic.name, (encode(e, "user_id") for e in events))

    summary = ingest_stream(spark, settings, catalog, clicks.name, available_now=True)
    assert summary.total("rows_read") == 300
    silver_uri = table_uri(settings, clicks.table(Layer.SILVER))
    assert silver_uri.startswith("hdfs://127.0.0.1:")
    silver = spark.read.format("delta").load(silver_uri)
    assert sorted(r["event_id"] for r in silver.select("event_id").collect()) == sorted(
        e["event_id"] for e in events
    )
    bronze = spark.read.format("delta").load(table_uri(settings, clicks.table(Layer.BRONZE)))
    assert bronze.select("partition", "offset").distinct().count() == 300

    # a second available-now run over the same checkpoint reads only what is new
    send_events(
        settings, clicks.topic.name, (encode(e, "user_id") for e in click_events(20, seed=3))
    )
    again = ingest_stream(spark, settings, catalog, clicks.name, available_now=True)
    assert again.total("rows_read") == 20
    assert spark.read.format("delta").load(silver_uri).count() == 320
