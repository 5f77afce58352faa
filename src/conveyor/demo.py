"""`make demo`: start the embedded stack and run the pipeline end to end, then say what happened."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from conveyor.produce import send_events, stream_samples
from conveyor.settings import Settings
from conveyor.stack.local import LocalStack


@contextmanager
def _step(console: Console, title: str) -> Iterator[None]:
    began = time.monotonic()
    console.rule(f"[bold]{title}")
    yield
    console.print(f"[green]done[/] in {time.monotonic() - began:.1f}s")


def run_demo(settings: Settings, *, events: int, console: Console) -> None:
    """Stack up, provision topics from the catalog, produce sample events (with some bad,
    duplicate and late ones), ingest every stream exactly once, and summarise the tables."""
    from conveyor.catalog import load_catalog

    catalog = load_catalog(settings.catalog)
    stack = LocalStack(settings)
    with _step(console, "1. embedded stack (Kafka, HDFS, Airflow)"):
        status = stack.up(progress=console.log)
    settings = Settings(
        **{
            **settings.model_dump(),
            "kafka_bootstrap": status["kafka_bootstrap"],
            "hdfs_uri": status["hdfs_uri"],
            "webhdfs_url": status.get("namenode_http"),
        }
    )

    with _step(console, "2. Kafka topics from the catalog (conveyor topics apply)"):
        from conveyor.kafka.topics import admin_client, apply_plan, plan_topics

        with admin_client(settings) as admin:
            result = apply_plan(plan_topics(catalog, admin), admin)
        console.print(result.summary(), highlight=False)

    produced: dict[str, int] = {}
    with _step(console, "3. produce sample events (2% bad, 1% duplicates, 2% late)"):
        for name in catalog.stream_names:
            stream = catalog.stream(name)
            count = events if name == "clicks" else max(1, events // 4)
            with Progress(
                TextColumn(f"{name:10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task(name, total=count)

                def advance(n: int, bar: Progress = bar, task: TaskID = task) -> None:
                    bar.advance(task, n)

                produced[name] = send_events(
                    settings,
                    stream.topic.name,
                    stream_samples(
                        stream,
                        count,
                        seed=int(time.time()),
                        bad_fraction=0.02,
                        duplicate_fraction=0.01,
                        late_fraction=0.02,
                    ),
                    on_sent=advance,
                )

    with _step(console, "4. Spark: ingest every stream, exactly once (available-now)"):
        from conveyor.ingest.stream import ingest_stream
        from conveyor.spark.session import build_session

        spark = build_session(settings, "conveyor-demo")
        try:
            summaries = {
                n: ingest_stream(spark, settings, catalog, n, available_now=True)
                for n in catalog.stream_names
            }
            counts = _table_counts(spark, settings, catalog)
        finally:
            spark.stop()

    table = Table(title="Demo summary: this run, and rows now in each table")
    for column in (
        "stream",
        "produced",
        "read",
        "silver",
        "quarantined",
        "duplicates",
        "bronze rows",
        "silver rows",
        "quarantine rows",
    ):
        table.add_column(column, justify="right")
    for name, summary in summaries.items():
        table.add_row(
            name,
            str(produced[name]),
            *(
                str(summary.total(k))
                for k in ("rows_read", "silver_rows", "quarantined", "duplicates_dropped")
            ),
            *(str(counts[(name, layer)]) for layer in ("bronze", "silver", "quarantine")),
        )
    console.print(table)
    _say_where_things_are(console, status)


def _table_counts(spark: object, settings: Settings, catalog: object) -> dict[tuple[str, str], int]:
    from conveyor.catalog import Catalog, table_uri

    assert isinstance(catalog, Catalog)
    return {
        (ref.stream, ref.layer.value): spark.read.format("delta")  # type: ignore[attr-defined]
        .load(table_uri(settings, ref))
        .count()
        for ref in catalog.tables()
    }


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
