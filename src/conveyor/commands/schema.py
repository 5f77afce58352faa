"""`conveyor schema plan|apply`: silver tables follow the catalog's fields.

`apply` exits 4 while the catalog asks for a change Conveyor refuses (it still makes the allowed
ones), like `topics apply`.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from conveyor.commands import CatalogOption, console, friendly, out, settings_and_catalog

if TYPE_CHECKING:
    from conveyor.evolution import SchemaPlan

REFUSED_EXIT_CODE = 4

schema_app = typer.Typer(
    no_args_is_help=True,
    help="Silver tables against the catalog's fields (new columns, widened types, refusals) "
    "and every table against the catalog's Delta table properties.",
)


def register(app: typer.Typer) -> None:
    """Mount `conveyor schema ...`."""
    app.add_typer(schema_app, name="schema")


StreamArgument = Annotated[
    str | None, typer.Argument(help="One stream of the catalog (default: every stream).")
]


@schema_app.command("plan")
@friendly
def plan(
    stream: StreamArgument = None,
    catalog: CatalogOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show how each stream's silver table differs from the catalog's fields, and its tables
    (and the ledger) from the catalog's Delta table properties; changes nothing."""
    from conveyor.evolution import plan_schema
    from conveyor.maintenance.properties import plan_properties

    settings, spec = settings_and_catalog(catalog)
    names = [spec.stream(stream).name] if stream else None
    schema_plan = plan_schema(settings, spec, names)
    properties = plan_properties(settings, spec, names)
    if as_json:
        shown = {**schema_plan.to_dict(), "properties": [asdict(p) for p in properties]}
        typer.echo(json.dumps(shown, indent=2))
        return
    if schema_plan.changes:
        out.print(schema_table(schema_plan))
    out.print(schema_plan.summary(), highlight=False)
    for prop in properties:
        out.print(f"property drift: {escape(prop.describe())}", highlight=False)


@schema_app.command("apply")
@friendly
def apply(
    stream: StreamArgument = None,
    catalog: CatalogOption = None,
    backfill: Annotated[
        bool,
        typer.Option(
            "--backfill",
            help="Also fill declared fields of rows already landed from the values they kept "
            "in _unknown (sent before the catalog declared them).",
        ),
    ] = False,
) -> None:
    """Add new optional columns and widen types on silver (each recorded in the ledger);
    refused changes are listed and exit 4."""
    from conveyor.evolution import apply_changes, backfill_kept, plan_schema
    from conveyor.maintenance.properties import apply_properties, plan_properties
    from conveyor.spark.session import spark_session

    settings, spec = settings_and_catalog(catalog)
    names = [spec.stream(stream).name] if stream else list(spec.stream_names)
    schema_plan = plan_schema(settings, spec, names)
    properties = plan_properties(settings, spec, names)
    applied = []
    filled: dict[str, dict[str, int]] = {}
    if schema_plan.allowed or backfill or properties:
        with (
            spark_session(settings, "conveyor-schema-apply") as spark,
            console.status("applying schema changes"),
        ):
            applied = apply_changes(spark, settings, schema_plan.allowed, spec)
            apply_properties(spark, properties)
            if backfill:
                filled = {name: backfill_kept(spark, settings, spec, name) for name in names}
    for prop in properties:
        out.print(f"[green]property set:[/] {escape(prop.describe())}", highlight=False)
    for change in applied:
        out.print(f"[green]done:[/] {escape(change.describe())}", highlight=False)
    for name, fields in filled.items():
        for field, rows in fields.items():
            out.print(
                f"[green]backfilled:[/] stream {name!r}, field {field!r}: {rows} row(s) from "
                "_unknown",
                highlight=False,
            )
    for change in schema_plan.refused:
        console.print(f"[red]refused:[/] {escape(change.describe())}", highlight=False)
    out.print(
        f"{len(applied)} change(s) applied, {len(schema_plan.refused)} refused", highlight=False
    )
    if schema_plan.refused:
        raise typer.Exit(REFUSED_EXIT_CODE)


def schema_table(plan: SchemaPlan) -> Table:
    """The plan as the terminal shows it: one row per change, allowed or refused, and why."""
    table = Table(title="schema plan: catalog -> silver")
    for column in ("stream", "table", "field", "change", "old", "new", "", "why / way out"):
        table.add_column(column)
    for c in plan.changes:
        verdict = "[green]allowed[/]" if c.allowed else "[red]refused[/]"
        table.add_row(
            c.stream,
            c.table,
            c.field,
            c.kind.value,
            c.old_type or "-",
            c.new_type or "-",
            verdict,
            c.reason,
        )
    return table
