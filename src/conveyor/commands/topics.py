"""`conveyor topics plan|apply`: Kafka topics provisioned from the catalog.

`apply` exits 4 when the catalog asks for something Kafka cannot do in place (fewer partitions,
another replication factor), 1 when the broker rejected a change.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from conveyor.commands import CatalogOption, console, friendly, out, settings_and_catalog

REFUSED_EXIT_CODE = 4
FAILED_EXIT_CODE = 1

topics_app = typer.Typer(
    no_args_is_help=True, help="Kafka topics, provisioned from the catalog (never deleted)."
)


def register(app: typer.Typer) -> None:
    """Mount `conveyor topics ...`."""
    app.add_typer(topics_app, name="topics")


@topics_app.command("plan")
@friendly
def plan(
    catalog: CatalogOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Show how the cluster differs from the catalog; changes nothing."""
    from conveyor.kafka.clients import admin_client
    from conveyor.kafka.topics import plan_topics

    settings, spec = settings_and_catalog(catalog)
    ingest = settings.kafka_security("ingest").username
    with admin_client(settings) as admin:
        topic_plan = plan_topics(spec, admin, ingest_principal=ingest)
    if as_json:
        typer.echo(json.dumps(topic_plan.to_dict(), indent=2))
        return
    out.print(topic_plan.to_table())
    out.print(topic_plan.summary(), highlight=False)


@topics_app.command("apply")
@friendly
def apply(catalog: CatalogOption = None) -> None:
    """Create missing topics, add partitions, set topic configs; refuses what Kafka cannot do."""
    from conveyor.kafka.clients import admin_client
    from conveyor.kafka.topics import apply_plan, plan_topics

    settings, spec = settings_and_catalog(catalog)
    ingest = settings.kafka_security("ingest").username
    with admin_client(settings) as admin:
        with console.status(f"planning topics on {settings.kafka_servers}"):
            topic_plan = plan_topics(spec, admin, ingest_principal=ingest)
        with console.status("applying"):
            result = apply_plan(topic_plan, admin)
    for line in result.done:
        out.print(f"[green]done:[/] {escape(line)}", highlight=False)
    for label, colour, lines in (
        ("warning", "yellow", result.warnings),
        ("refused", "red", result.refused),
        ("failed", "red", result.failed),
    ):
        for line in lines:
            console.print(f"[{colour}]{label}:[/] {escape(line)}", highlight=False)
    for name in result.unmanaged:
        console.print(
            f"[magenta]drift:[/] topic {escape(repr(name))} is not in the catalog (left alone)",
            highlight=False,
        )
    for acl in result.drift:
        console.print(
            f"[magenta]drift:[/] ACL {escape(acl)} is not in the catalog (left alone)",
            highlight=False,
        )
    out.print(result.summary(), highlight=False)
    if result.failed:
        raise typer.Exit(FAILED_EXIT_CODE)
    if result.refused:
        raise typer.Exit(REFUSED_EXIT_CODE)
