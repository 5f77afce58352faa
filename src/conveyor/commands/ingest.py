"""`conveyor ingest | produce | status`: run a stream, feed it sample events, see how it is doing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conveyor.commands import CatalogOption, console, friendly, out, settings_and_catalog
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from conveyor.ingest.stream import IngestSummary


def register(app: typer.Typer) -> None:
    """Mount these commands on the top-level CLI."""
    app.command("ingest")(ingest)
    app.command("produce")(produce)
    app.command("status")(status)


@friendly
def ingest(
    stream: Annotated[str, typer.Argument(help="Stream name from the catalog.")],
    available_now: Annotated[
        bool,
        typer.Option(
            "--available-now", help="Land the backlog and stop (default: run continuously)."
        ),
    ] = False,
    accept_data_loss: Annotated[
        bool,
        typer.Option(
            "--accept-data-loss",
            help="Continue from the earliest offsets Kafka still has; the gap goes to the ledger.",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run's totals as JSON instead of a table.")
    ] = False,
    catalog: CatalogOption = None,
) -> None:
    """Stream a topic into its bronze, silver and quarantine tables, exactly once."""
    from conveyor.evolution import plan_schema, require_no_refused
    from conveyor.ingest.stream import ingest_stream
    from conveyor.kafka.topics import require_topic
    from conveyor.spark.session import spark_session

    settings, spec = settings_and_catalog(catalog)
    # fail fast on an unknown name, a missing topic or a refused schema change, before Spark
    require_topic(
        settings,
        spec.stream(stream).topic.name,
        "ingest",
        needs=("DESCRIBE", "READ"),
        group=spec.stream(stream).monitoring_group,
    )
    schema_plan = plan_schema(settings, spec, [stream])
    require_no_refused(schema_plan, stream)
    with (
        spark_session(settings, f"conveyor-ingest-{stream}") as spark,
        console.status(f"ingesting '{stream}'"),
    ):
        summary = ingest_stream(
            spark,
            settings,
            spec,
            stream,
            available_now=available_now,
            accept_data_loss=accept_data_loss,
            schema_plan=schema_plan,
        )
    _print_totals(summary, as_json)


def _print_totals(summary: IngestSummary, as_json: bool) -> None:
    """The run's totals: a table, or one JSON line."""
    totals = {
        name: summary.total(name)
        for name in ("rows_read", "bronze_rows", "silver_rows", "quarantined", "duplicates_dropped")
    }
    if as_json:
        typer.echo(
            json.dumps({"stream": summary.stream, "batches": len(summary.batches), **totals})
        )
        return
    table = Table(title=f"stream {summary.stream}: {len(summary.batches)} micro-batch(es)")
    for column in ("read", "bronze", "silver", "quarantined", "duplicates dropped"):
        table.add_column(column, justify="right")
    table.add_row(*(str(n) for n in totals.values()))
    out.print(table)


@friendly
def produce(
    stream: Annotated[str, typer.Argument(help="Stream name from the catalog.")],
    count: Annotated[int, typer.Option("--count", min=1, help="Records to send.")] = 1000,
    rate: Annotated[
        float | None, typer.Option("--rate", min=0.1, help="Records per second (default: max).")
    ] = None,
    bad_fraction: Annotated[
        float, typer.Option(min=0, max=1, help="Share of malformed records (for quarantine).")
    ] = 0.0,
    duplicate_fraction: Annotated[
        float, typer.Option(min=0, max=1, help="Share of records sent twice (for dedup).")
    ] = 0.0,
    late_fraction: Annotated[
        float,
        typer.Option(min=0, max=1, help="Share of events older than the late-data tolerance."),
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the generator (same seed, same events).")] = 7,
    catalog: CatalogOption = None,
) -> None:
    """Send realistic sample events (users, sessions, funnels) to a stream's topic."""
    from conveyor.produce import require_writable, send_events, stream_samples

    settings, spec = settings_and_catalog(catalog)
    if spec.stream(stream).cdc is not None:
        raise ConveyorError(
            f"stream {stream!r} is a cdc stream: its Debezium connector writes its topic "
            "(`conveyor cdc apply`); change the source table instead"
        )
    require_writable(settings, spec.stream(stream).topic.name)
    records = stream_samples(
        spec.stream(stream),
        count,
        seed=seed,
        bad_fraction=bad_fraction,
        duplicate_fraction=duplicate_fraction,
        late_fraction=late_fraction,
    )
    with Progress(
        TextColumn(f"producing to {spec.stream(stream).topic.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("produce", total=count)
        sent = send_events(
            settings,
            spec.stream(stream).topic.name,
            records,
            rate=rate,
            on_sent=lambda n: bar.advance(task, n),
            checked=True,
        )
    out.print(f"sent {sent} records to topic '{spec.stream(stream).topic.name}'")


@friendly
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    catalog: CatalogOption = None,
) -> None:
    """Per stream: lag per partition, last batch time, rows/s, quarantined in the last hour;
    for cdc streams the change records of the last hour by kind."""
    from conveyor.ingest.monitor import stream_status

    settings, spec = settings_and_catalog(catalog)
    report = [stream_status(settings, spec.stream(n)) for n in spec.stream_names]
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in report], indent=2, default=str))
        return
    table = Table(title="Conveyor streams")
    for column in (
        "stream",
        "lag (per partition)",
        "last batch",
        "rows/s",
        "quarantined 1h",
        "top reasons",
        "changes 1h (ins/upd/del/no-op)",
    ):
        table.add_column(column)
    for r in report:
        lag = ", ".join(f"p{p}={n}" for p, n in sorted(r.lag.items())) or "-"
        table.add_row(
            r.stream,
            f"{r.total_lag} ({lag})",
            str(r.last_batch_at or "never"),
            f"{r.rows_per_second:.1f}",
            str(r.quarantined_last_hour),
            ", ".join(f"{k}: {v}" for k, v in r.top_reasons[:3]) or "-",
            "/".join(str(n) for n in r.changes_last_hour.values())
            if r.changes_last_hour is not None
            else "-",
        )
    out.print(table)
