"""`make demo`: start the embedded stack and run the pipeline end to end, then say what happened."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conveyor.produce import click_events, encode, send_events
from conveyor.settings import Settings
from conveyor.stack.local import LocalStack

DEMO_TOPIC = "clicks"


@contextmanager
def _step(console: Console, title: str) -> Iterator[None]:
    began = time.monotonic()
    console.rule(f"[bold]{title}")
    yield
    console.print(f"[green]done[/] in {time.monotonic() - began:.1f}s")


def run_demo(settings: Settings, *, events: int, console: Console) -> None:
    """Stack up, create the topic, produce sample clicks, land them in Delta, read them back."""
    stack = LocalStack(settings)
    with _step(console, "1. embedded stack (Kafka, HDFS, Airflow)"):
        status = stack.up(progress=console.log)
    settings = Settings(
        **{
            **settings.model_dump(),
            "kafka_bootstrap": status["kafka_bootstrap"],
            "hdfs_uri": status["hdfs_uri"],
        }
    )

    with _step(console, f"2. topic '{DEMO_TOPIC}'"):
        _ensure_topic(settings, DEMO_TOPIC, partitions=4)

    with _step(console, f"3. produce {events} sample click events"):
        with Progress(
            TextColumn("producing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("produce", total=events)
            sent = send_events(
                settings,
                DEMO_TOPIC,
                (encode(e, "user_id") for e in click_events(events)),
                on_sent=lambda n: bar.advance(task, n),
            )
        console.print(f"sent {sent} events to '{DEMO_TOPIC}'")

    with _step(console, "4. Spark: Kafka -> Delta on HDFS (available-now), then read back"):
        from conveyor.ingest.stream import land_topic
        from conveyor.spark.session import build_session

        spark = build_session(settings, "conveyor-demo")
        try:
            result = land_topic(spark, settings, DEMO_TOPIC)
            by_partition = (
                spark.read.format("delta")
                .load(result.table_uri)
                .groupBy("partition")
                .count()
                .orderBy("partition")
                .collect()
            )
        finally:
            spark.stop()

    table = Table(title="Demo summary")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("events produced this run", str(sent))
    table.add_row(f"rows in {result.table_uri}", str(result.rows_in_table))
    for row in by_partition:
        table.add_row(f"  Kafka partition {row['partition']}", str(row["count"]))
    console.print(table)
    _say_where_things_are(console, status)


def _ensure_topic(settings: Settings, topic: str, partitions: int) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(**settings.kafka_client_options())
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
        print(f"created topic '{topic}' with {partitions} partitions")
    except TopicAlreadyExistsError:
        print(f"topic '{topic}' already exists")
    finally:
        admin.close()


def _say_where_things_are(console: Console, status: dict[str, object]) -> None:
    console.rule("[bold]where things are")
    console.print(f"Airflow UI      {status['airflow_url']}")
    console.print(
        f"  log in as     {status['airflow_user']}, password: "
        f"`cat {status['airflow_password_file']}`"
    )
    console.print(f"Kafka           {status['kafka_bootstrap']}")
    console.print(f"Lake (HDFS)     {status['lake_uri']}")
    console.print("stop the stack  make stop   (or: .venv/bin/conveyor stack down)")
