"""`conveyor cdc plan|apply`: the Debezium connector of each cdc stream, from the catalog."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from conveyor.commands import CatalogOption, console, friendly, out, settings_and_catalog

cdc_app = typer.Typer(
    no_args_is_help=True,
    help="Debezium connectors on Kafka Connect for the catalog's cdc streams.",
)


def register(app: typer.Typer) -> None:
    """Mount `conveyor cdc ...`."""
    app.add_typer(cdc_app, name="cdc")


StreamsArgument = Annotated[
    list[str] | None, typer.Argument(help="cdc streams (default: every cdc stream)")
]


@cdc_app.command("plan")
@friendly
def plan(
    streams: StreamsArgument = None,
    catalog: CatalogOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show what each cdc stream's connector and source table need; changes nothing."""
    from conveyor.debezium import plan_connectors

    settings, spec = settings_and_catalog(catalog)
    connector_plan = plan_connectors(settings, spec, streams)
    if as_json:
        typer.echo(json.dumps(connector_plan.to_dict(), indent=2))
        return
    for change in connector_plan.changes:
        out.print(escape(change.describe()), highlight=False)
        for note in change.notes:
            console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    pending = len(connector_plan.pending)
    out.print(
        f"{pending} change(s) to apply (`conveyor cdc apply`)" if pending else "nothing to do",
        highlight=False,
    )


@cdc_app.command("apply")
@friendly
def apply(streams: StreamsArgument = None, catalog: CatalogOption = None) -> None:
    """Set REPLICA IDENTITY FULL on each source table, create or update its connector and wait
    until it runs (the stream's topic must exist: `conveyor topics apply`)."""
    from conveyor.debezium import apply_connectors

    settings, spec = settings_and_catalog(catalog)
    with console.status(f"applying connectors on {settings.connect_rest}"):
        connector_plan = apply_connectors(settings, spec, streams)
    for change in connector_plan.changes:
        label = "unchanged" if change.action == "unchanged" else "done"
        out.print(f"[green]{label}:[/] {escape(change.describe())}", highlight=False)
