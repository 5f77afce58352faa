"""`make demo`: start the embedded stack and run the pipeline end to end, then say what happened."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from conveyor.catalog import Catalog
    from conveyor.ingest.stream import IngestSummary

DEMO_BATCH = 500
"""Records per micro-batch in the demo (a running stream's batches are small too)."""
DEMO_DAGS = ("conveyor_provision_topics", "conveyor_ingest", "conveyor_maintain_tables")
"""The DAGs the demo runs once through Airflow's REST API, in this order."""


@contextmanager
def _step(console: Console, title: str) -> Iterator[None]:
    began = time.monotonic()
    console.rule(f"[bold]{title}")
    yield
    console.print(f"[green]done[/] in {time.monotonic() - began:.1f}s")


@contextmanager
def _output_to(log_file: Path) -> Iterator[None]:
    """Processes started inside (Spark's JVM) write their stdout and stderr to `log_file` for
    their whole life; this process's own output is back on its streams afterwards."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log_file.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _log_to(log_file: Path) -> None:
    """Python's log records and warnings (Conveyor's batch lines, py4j's, libraries') go to the
    same file as Spark's output, not to the summary."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)


def run_demo(settings: Settings, *, events: int, console: Console) -> None:
    """Stack up, provision topics from the catalog, produce sample events (with some bad,
    duplicate and late ones), ingest every stream exactly once, run one maintenance pass and
    the analytics of the days produced, then run the provisioning, ingest and maintenance DAGs
    once in Airflow (over a few more events), and say what each step did."""
    from conveyor.catalog import resolve_catalog

    catalog = resolve_catalog(settings)
    spark_log = settings.home / "logs" / "demo.log"
    _log_to(spark_log)
    console.print(f"Spark's output and Conveyor's own log lines go to {spark_log}")
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
        from conveyor.kafka.clients import admin_client
        from conveyor.kafka.topics import apply_plan, plan_topics

        with admin_client(settings) as admin:
            result = apply_plan(plan_topics(catalog, admin), admin)
        console.print(result.summary(), highlight=False)

    with _step(console, "3. produce sample events (2% bad, 1% duplicates, 2% late)"):
        produced = _produce(settings, catalog, events, console)

    from conveyor.spark.session import spark_session

    with ExitStack() as held:
        with _output_to(spark_log):  # the session's start prints to the log, not the terminal
            spark = held.enter_context(spark_session(settings, "conveyor-demo"))
        with _step(console, "4. Spark: ingest every stream, exactly once (available-now)"):
            summaries = _ingest(spark, settings, catalog, produced, console)
        _maintain(spark, settings, catalog, console)
        _analytics(spark, settings, catalog, summaries, console)
    with _step(console, "7. Airflow: the provisioning, ingest and maintenance DAGs, run once"):
        _produce(settings, catalog, max(10, events // 10), console)
        _run_dags(status, console)
    _say_where_things_are(console, status, spark_log)


def _produce(settings: Settings, catalog: Catalog, events: int, console: Console) -> dict[str, int]:
    """Sample events for every stream (`events` for the first, a quarter for the others)."""
    produced: dict[str, int] = {}
    for index, name in enumerate(catalog.stream_names):
        stream = catalog.stream(name)
        count = events if index == 0 else max(1, events // 4)
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
    return produced


def _run_dags(status: dict[str, object], console: Console) -> None:
    """Trigger DEMO_DAGS one after another through Airflow's REST API, wait for each, leave
    them paused; a run that did not succeed stops the demo, naming it."""
    from conveyor.airflow_api import AirflowApi, AirflowApiError, run_dag_once

    api = AirflowApi(
        str(status["airflow_url"]), str(status["airflow_user"]), str(status["airflow_password"])
    )
    table = Table(title="Airflow runs (the DAGs are paused again: unpause them to schedule)")
    for column in ("DAG", "run", "state", "seconds", "tasks"):
        table.add_column(column)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    outcomes = []
    for dag_id in DEMO_DAGS:
        with console.status(f"running {dag_id} in Airflow"):
            outcome = run_dag_once(api, dag_id, run_id=f"conveyor_demo__{stamp}")
        outcomes.append(outcome)
        table.add_row(
            dag_id,
            outcome.run_id,
            outcome.state,
            f"{outcome.seconds:.0f}",
            outcome.describe_tasks(),
        )
        if outcome.state != "success":
            break
    console.print(table)
    failed = [o for o in outcomes if o.state != "success"]
    if failed:
        raise AirflowApiError(
            f"DAG {failed[0].dag_id} run {failed[0].run_id} ended {failed[0].state} "
            f"({failed[0].describe_tasks()}): its task logs are in the Airflow UI"
        )


def _ingest(
    spark: SparkSession,
    settings: Settings,
    catalog: Catalog,
    produced: dict[str, int],
    console: Console,
) -> dict[str, IngestSummary]:
    from conveyor.ingest.stream import ingest_stream

    # small micro-batches, so the tables get the small files a running stream leaves behind
    summaries = {
        n: ingest_stream(
            spark, settings, catalog, n, available_now=True, max_offsets_per_trigger=DEMO_BATCH
        )
        for n in catalog.stream_names
    }
    counts = _table_counts(spark, settings, catalog)
    table = Table(title="Ingest: this run, and rows now in each table")
    for column in (
        "stream",
        "produced",
        "batches",
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
            str(len(summary.batches)),
            *(
                str(summary.total(k))
                for k in ("rows_read", "silver_rows", "quarantined", "duplicates_dropped")
            ),
            *(str(counts[(name, layer)]) for layer in ("bronze", "silver", "quarantine")),
        )
    console.print(table)
    return summaries


def _maintain(spark: SparkSession, settings: Settings, catalog: Catalog, console: Console) -> None:
    from conveyor.maintenance import maintenance_pass, print_runs

    title = "5. maintenance: compact small files (Z-order silver), vacuum at the safe retention"
    with _step(console, title):
        # the demo's partitions are from today, still open: compact them anyway, from 2 files
        runs = maintenance_pass(spark, settings, catalog, force=True, include_open=True)
        print_runs(console, runs, "Maintenance pass: files before -> after")


def _analytics(
    spark: SparkSession,
    settings: Settings,
    catalog: Catalog,
    summaries: dict[str, IngestSummary],
    console: Console,
) -> None:
    from conveyor.analytics import funnel_and_top_pages, run_analytics
    from conveyor.analytics.report import days_table, funnel_table, top_pages_table

    days = sorted({d for s in summaries.values() for b in s.batches for d in b.event_dates})
    with _step(console, f"6. analytics: gold tables for {', '.join(map(str, days)) or 'no day'}"):
        summary = run_analytics(spark, settings, catalog, days)
        report = funnel_and_top_pages(spark, settings, days)
        console.print(days_table(summary))
        console.print(funnel_table(report["funnel"]))
        console.print(top_pages_table(report["top_pages"]))


def _table_counts(
    spark: SparkSession, settings: Settings, catalog: Catalog
) -> dict[tuple[str, str], int]:
    from concurrent.futures import ThreadPoolExecutor

    from conveyor.catalog import table_uri

    refs = list(catalog.tables())

    def count(uri: str) -> int:
        return spark.read.format("delta").load(uri).count()

    # each count is mostly the driver loading a table's log: together, not one after the other
    with ThreadPoolExecutor(max_workers=max(1, len(refs))) as pool:
        counts = pool.map(count, [table_uri(settings, ref) for ref in refs])
        return {(r.stream, r.layer.value): n for r, n in zip(refs, counts, strict=True)}


def _say_where_things_are(console: Console, status: dict[str, object], spark_log: Path) -> None:
    console.rule("[bold]where things are")
    console.print(f"Airflow UI      {status['airflow_url']}")
    console.print(f"Conveyor page   {status['airflow_url']}/plugin/conveyor   (Browse > Conveyor)")
    console.print(
        f"  log in as     {status['airflow_user']}, password: "
        f"`cat {status['airflow_password_file']}`"
    )
    console.print(f"Kafka           {status['kafka_bootstrap']}")
    console.print(f"Lake (HDFS)     {status['lake_uri']}")
    console.print(f"Log             {spark_log}   (Spark's output, Conveyor's log lines)")
    console.print("stop the stack  make stop   (or: .venv/bin/conveyor stack down)")
