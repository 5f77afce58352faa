"""Real broker round trip, and Spark streaming Kafka into a Delta table on hdfs:// and back."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

from conveyor.produce import click_events, encode, send_events
from conveyor.settings import Settings
from conveyor.spark.session import spark_submit_args
from tests.conftest import REPO


def _topic(settings: Settings, partitions: int = 2) -> str:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    name = f"t-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(**settings.kafka_client_options())
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
        **settings.kafka_client_options(),
    )
    seen = []
    for record in consumer:
        seen.append(json.loads(record.value))
        if len(seen) == 50:
            break
    consumer.close()
    assert sorted(e["event_id"] for e in seen) == sorted(e["event_id"] for e in events)


def test_stream_kafka_into_delta_on_hdfs_and_read_back(settings: Settings, spark: object) -> None:
    from conveyor.ingest.stream import land_topic

    topic = _topic(settings, partitions=3)
    events = list(click_events(300, seed=2))
    send_events(settings, topic, (encode(e, "user_id") for e in events))

    result = land_topic(spark, settings, topic)  # type: ignore[arg-type]
    assert result.table_uri.startswith("hdfs://127.0.0.1:")
    assert result.rows_in_table == 300
    table = spark.read.format("delta").load(result.table_uri)  # type: ignore[attr-defined]
    landed = sorted(json.loads(r["value"])["event_id"] for r in table.select("value").collect())
    assert landed == sorted(e["event_id"] for e in events)
    coordinates = table.select("partition", "offset").distinct().count()
    assert coordinates == 300

    # a second available-now run over the same checkpoint adds only what is new
    more = list(click_events(20, seed=3))
    send_events(settings, topic, (encode(e, "user_id") for e in more))
    assert land_topic(spark, settings, topic).rows_in_table == 320  # type: ignore[arg-type]


def test_spark_submit_runs_a_job_with_the_same_jars(settings: Settings, spark: object) -> None:
    topic = _topic(settings)
    send_events(settings, topic, (encode(e, "user_id") for e in click_events(40, seed=4)))
    submit = Path(sys.executable).parent / "spark-submit"
    result = subprocess.run(
        [
            str(submit),
            *spark_submit_args(settings),
            str(REPO / "jobs/stream_ingest.py"),
            "--topic",
            topic,
            "--available-now",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"landed topic {topic}: 40 rows" in result.stdout
    table = spark.read.format("delta").load(f"{settings.lake_uri}/{topic}/bronze")  # type: ignore[attr-defined]
    assert table.count() == 40
