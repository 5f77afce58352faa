"""`conveyor compact | vacuum | tables`: table maintenance, driven by the catalog.

Argument mistakes (an unknown table, TABLE together with --all, a retention below the safe one)
are reported before Spark starts. A Spark session the command did not start (a test's) is left
running.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from conveyor.commands import CatalogOption, console, friendly, out, settings_and_catalog
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    pass

TableArgument = Annotated[
    str | None, typer.Argument(help="Table name from the catalog, e.g. clicks_silver.")
]
AllOption = Annotated[bool, typer.Option("--all", help="Every table of the catalog.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RunIdOption = Annotated[
    str | None,
    typer.Option(
        "--run-id",
        help="The run's id in the maintenance log (one table only), for a scheduler that reads "
        "the outcome back; default: a new id.",
    ),
]
SHOWN_PATHS = 50


def register(app: typer.Typer) -> None:
    """Mount these commands on the top-level CLI."""
    app.command("compact")(compact)
    app.command("vacuum")(vacuum)
    app.command("tables")(tables)


@friendly
def compact(
    table: TableArgument = None,
    every: AllOption = False,
    zorder: Annotated[
        bool, typer.Option("--zorder", help="Z-order by the catalog's zorder_by columns.")
    ] = False,
    include_open: Annotated[
        bool,
        typer.Option(
            "--include-open", help="Also partitions still inside the late-data tolerance."
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Compact partitions with 2+ small files (not min_small_files)."
        ),
    ] = False,
    as_json: JsonOption = False,
    run_id: RunIdOption = None,
    catalog: CatalogOption = None,
) -> None:
    """Compact closed partitions that crossed the catalog's small-file thresholds."""
    from conveyor.maintenance import CompactOptions, maintain, print_runs, select_tables
    from conveyor.spark.session import spark_session

    settings, spec = settings_and_catalog(catalog)
    refs = select_tables(spec, table, every, run_id)
    options = CompactOptions(zorder=zorder, include_open=include_open, force=force, run_id=run_id)
    with (
        spark_session(settings, "conveyor-compact") as spark,
        console.status(f"compacting {len(refs)} table(s)"),
    ):
        runs = maintain(spark, settings, spec, refs, options)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in runs], indent=2))
        return
    print_runs(out, runs, "Compaction")


@friendly
def vacuum(
    table: TableArgument = None,
    every: AllOption = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")
    ] = False,
    retain: Annotated[
        str | None,
        typer.Option(
            "--retain", help="History to keep, e.g. 10d (default and minimum: the safe retention)."
        ),
    ] = None,
    test_only: Annotated[
        bool,
        typer.Option(
            "--i-know-this-is-a-test",
            help="Allow keeping less, down to $CONVEYOR_TEST_ONLY_MIN_VACUUM_RETENTION. Tests only.",
        ),
    ] = False,
    as_json: JsonOption = False,
    run_id: RunIdOption = None,
    catalog: CatalogOption = None,
) -> None:
    """Delete files no version inside the safe retention needs (VACUUM)."""
    from conveyor.maintenance import VacuumOptions, maintain, print_runs, select_tables
    from conveyor.spark.session import spark_session
    from conveyor.units import parse_duration

    settings, spec = settings_and_catalog(catalog)
    refs = select_tables(spec, table, every, run_id)
    try:
        retention = parse_duration(retain) if retain is not None else None
    except ValueError as exc:
        raise ConveyorError(f"--retain {retain!r}: {exc}") from None
    options = VacuumOptions(
        retention=retention, dry_run=dry_run, allow_test_floor=test_only, run_id=run_id
    )
    options.refuse_unsafe(settings, refs)
    with (
        spark_session(settings, "conveyor-vacuum") as spark,
        console.status(f"vacuuming {len(refs)} table(s)"),
    ):
        runs = maintain(spark, settings, spec, refs, options)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in runs], indent=2))
        return
    print_runs(out, runs, "Vacuum (dry run)" if dry_run else "Vacuum")
    for run in runs:
        if run.paths:
            out.print(f"[bold]{run.table}[/]: would delete {len(run.paths)} file(s)")
            for path in run.paths[:SHOWN_PATHS]:
                out.print(f"  {escape(path)}", highlight=False)
            if len(run.paths) > SHOWN_PATHS:
                out.print(f"  ... and {len(run.paths) - SHOWN_PATHS} more (--json lists all)")


@friendly
def tables(as_json: JsonOption = False, catalog: CatalogOption = None) -> None:
    """Per table: Delta version, files, average size, small files, last compaction and vacuum."""
    from conveyor.maintenance import reports_table, table_reports

    settings, spec = settings_and_catalog(catalog)
    with console.status("reading table statistics"):
        reports = table_reports(settings, spec, spec.tables())
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in reports], indent=2))
        return
    out.print(reports_table(reports))
