"""`conveyor analytics`: compute the gold tables for a day or a range of days."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from conveyor.commands import console, friendly, out


def register(app: typer.Typer) -> None:
    """Mount `conveyor analytics` on the top-level CLI."""
    app.command("analytics")(analytics)


@friendly
def analytics(
    date: Annotated[
        datetime | None, typer.Option("--date", formats=["%Y-%m-%d"], help="One day (UTC).")
    ] = None,
    first: Annotated[
        datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="First day.")
    ] = None,
    last: Annotated[
        datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="Last day (included).")
    ] = None,
    with_late: Annotated[
        bool, typer.Option("--with-late", help="Also recompute days late events changed.")
    ] = False,
    catalog: Annotated[
        Path | None, typer.Option("--catalog", dir_okay=False, help="Catalog file.")
    ] = None,
) -> None:
    """Compute sessions, daily page stats, users, funnel and hourly service errors; each day's
    partitions are replaced, so reruns and backfills give identical tables."""
    from conveyor.analytics import funnel_and_top_pages, requested_days, run_analytics
    from conveyor.analytics.report import days_table, funnel_table, top_pages_table
    from conveyor.catalog import resolve_catalog
    from conveyor.settings import get_settings
    from conveyor.spark.session import spark_session

    days = requested_days(*(d.date() if d else None for d in (date, first, last)))
    settings = get_settings()
    spec = resolve_catalog(settings, catalog)
    with (
        spark_session(settings, "conveyor-analytics") as spark,
        console.status(f"computing {len(days)} day(s) of gold tables"),
    ):
        summary = run_analytics(spark, settings, spec, days, include_stale=with_late)
        report = funnel_and_top_pages(spark, settings, summary.dates())
    out.print(days_table(summary))
    if summary.empty_inputs:
        out.print(summary.empty_note())
    out.print(funnel_table(report["funnel"]))
    out.print(top_pages_table(report["top_pages"]))
