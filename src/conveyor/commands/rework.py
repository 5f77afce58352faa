"""`conveyor replay | rebuild`: quarantined records and silver rows judged again with the
catalog as it is now (see `conveyor.rework`).

Argument mistakes (an unknown stream or reason code, an empty or inverted range, a date in the
future) get one line and exit 2 before Spark starts; nothing is written.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from conveyor.commands import CatalogOption, console, friendly, out, settings_and_catalog
from conveyor.rework import ReworkResult, reworkable

StreamArgument = Annotated[str, typer.Argument(help="Stream name from the catalog.")]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Print what would move; write nothing.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")]


def register(app: typer.Typer) -> None:
    """Mount these commands on the top-level CLI."""
    app.command("replay")(replay)
    app.command("rebuild")(rebuild)


@friendly
def replay(
    stream: StreamArgument,
    reasons: Annotated[
        list[str] | None,
        typer.Option(
            "--reason",
            help="A reason code to replay (repeat for more; default: every code but too_late).",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Quarantined at or after (ISO-8601 date or timestamp).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Quarantined before (a date: up to the end of that day).")
    ] = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
    catalog: CatalogOption = None,
) -> None:
    """Re-validate quarantined records with the catalog as it is now: those that pass land in
    silver (or count as duplicates), at most once ever; those that fail stay, with their new
    reason. Quarantine rows are marked, not deleted; the run is a ledger row."""
    from conveyor.rework import replay as run_replay
    from conveyor.rework import replay_selection
    from conveyor.spark.session import spark_session

    settings, spec = settings_and_catalog(catalog)
    name = reworkable(spec, stream).name  # checked before Spark starts
    selection = replay_selection(reasons or [], since, until)
    with (
        spark_session(settings, f"conveyor-replay-{name}") as spark,
        console.status(f"replaying quarantined records of '{name}'"),
    ):
        result = run_replay(spark, settings, spec, name, selection, dry_run=dry_run)
    _report(result, as_json)


@friendly
def rebuild(
    stream: StreamArgument,
    from_date: Annotated[
        str | None, typer.Option("--from", help="First ingest date (ISO-8601), inclusive.")
    ] = None,
    to_date: Annotated[
        str | None, typer.Option("--to", help="Last ingest date (ISO-8601), inclusive.")
    ] = None,
    everything: Annotated[bool, typer.Option("--all", help="Every ingest date.")] = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
    catalog: CatalogOption = None,
) -> None:
    """Re-derive silver and quarantine from bronze for the records ingested in a range of
    dates, with the catalog as it is now; duplicates are decided as the stream decides. A
    rerun writes nothing; the run is a ledger row."""
    from conveyor.rework import rebuild as run_rebuild
    from conveyor.rework import rebuild_range
    from conveyor.spark.session import spark_session

    settings, spec = settings_and_catalog(catalog)
    name = reworkable(spec, stream).name  # checked before Spark starts
    span = rebuild_range(from_date, to_date, everything)
    with (
        spark_session(settings, f"conveyor-rebuild-{name}") as spark,
        console.status(f"rebuilding '{name}' from bronze"),
    ):
        result = run_rebuild(spark, settings, spec, name, span, dry_run=dry_run)
    _report(result, as_json)


def _report(result: ReworkResult, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    verb = "would" if result.dry_run else "did"
    if result.kind == "replay":
        table = Table(title=f"replay of {result.stream} ({result.run}): what it {verb} do")
        outcomes = ("silver", "duplicate", "still_failing", "already_landed")
        for column in ("reason", *outcomes):
            table.add_column(column, justify="right" if column != "reason" else "left")
        for reason, counts in sorted(result.by_reason.items()):
            table.add_row(reason, *(str(counts.get(o, 0)) for o in outcomes))
        out.print(table)
        summary = (
            f"{result.read} record(s) re-judged: {result.silver} to silver, "
            f"{result.duplicates} duplicate(s), {result.still_failing} still failing"
        )
    else:
        summary = (
            f"{result.read} bronze record(s) re-derived: silver {result.silver_before} -> "
            f"{result.silver}, quarantine {result.quarantined_before} -> {result.quarantined}, "
            f"{result.duplicates} duplicate(s)"
        )
    days = ", ".join(d.isoformat() for d in result.event_dates) or "none"
    prefix = "dry run, nothing written: " if result.dry_run else ""
    out.print(f"{prefix}{summary}; event dates changed: {days}", highlight=False)


def job_arguments(operation: str, params: dict[str, Any]) -> list[str]:
    """`jobs/rework.py`'s arguments from a DAG run's params: replay (`stream`, `reasons`,
    `since`, `until`, `dry_run`) or rebuild (`stream`, `from`, `to`, `all`, `dry_run`). Empty
    values are left out; the command checks the rest."""
    args = [operation, str(params["stream"])]
    if operation == "replay":
        for reason in params.get("reasons") or []:
            args += ["--reason", str(reason)]
        options = {"--since": params.get("since"), "--until": params.get("until")}
    elif operation == "rebuild":
        options = {"--from": params.get("from"), "--to": params.get("to")}
        if params.get("all"):
            args.append("--all")
    else:
        raise ValueError(f"no rework operation {operation!r} (replay, rebuild)")
    args += [part for option, value in options.items() if value for part in (option, str(value))]
    if params.get("dry_run"):
        args.append("--dry-run")
    return args
