"""`conveyor stack up|down|kill|start|status`: the embedded Kafka/HDFS/Airflow stack."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from conveyor.commands import console, friendly, out
from conveyor.settings import get_settings

stack_app = typer.Typer(no_args_is_help=True, help="The embedded Kafka/HDFS/Airflow stack.")


def register(app: typer.Typer) -> None:
    """Mount `conveyor stack ...`."""
    app.add_typer(stack_app, name="stack")


@stack_app.command("up")
@friendly
def stack_up(
    fresh: Annotated[
        bool, typer.Option(help="Delete all stack data first and start empty.")
    ] = False,
    brokers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=5,
            help="Kafka nodes (each broker and controller); default: as the stack was made, "
            "else 1. A change needs --fresh.",
        ),
    ] = None,
    datanodes: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=5,
            help="HDFS DataNodes (replication follows, up to 3); default: as the stack was "
            "made, else 1. A change needs --fresh.",
        ),
    ] = None,
    secure: Annotated[
        bool | None,
        typer.Option(
            "--secure/--plaintext",
            help="Kafka on SASL_SSL (SCRAM-SHA-512, a local CA) with ACLs, HDFS permissions "
            "on; default: as the stack was made, else plaintext. A change needs --fresh.",
        ),
    ] = None,
    with_sets: Annotated[
        list[str] | None,
        typer.Option(
            "--with",
            help="Optional components too: `cdc` (Postgres with logical decoding and a Kafka "
            "Connect worker with Debezium). Recorded: a later plain `stack up` keeps them; on a "
            "running stack only the missing ones start.",
        ),
    ] = None,
) -> None:
    """Start Kafka, HDFS and Airflow on loopback (free ports); harmless when already up."""
    from conveyor.stack.local import LocalStack

    overrides: dict[str, object] = {
        "stack_brokers": brokers,
        "stack_datanodes": datanodes,
        "stack_secure": secure,
        "stack_with": ",".join(with_sets) if with_sets else None,
    }
    stack = LocalStack(get_settings(**{k: v for k, v in overrides.items() if v is not None}))
    with console.status("starting the embedded stack") as status:

        def progress(message: str) -> None:
            status.update(message)
            console.log(message)

        result = stack.up(fresh=fresh, progress=progress)
    _print_status(result)


@stack_app.command("down")
@friendly
def stack_down() -> None:
    """Stop everything `stack up` started (by process group) and wait until it is gone."""
    from conveyor.stack.local import LocalStack

    stopped = LocalStack(get_settings()).down(progress=console.log)
    console.print(f"stopped {len(stopped)} component(s)" if stopped else "nothing was running")


@stack_app.command("kill")
@friendly
def stack_kill(
    name: Annotated[str, typer.Argument(help="A component, e.g. kafka-1, datanode-0, namenode.")],
) -> None:
    """`kill -9` one component's process group, to rehearse a failure; `stack start NAME`
    (or `stack up`) brings it back with its ports and data."""
    from conveyor.stack.local import LocalStack

    LocalStack(get_settings()).kill_component(name)
    console.print(f"{name}: killed")


@stack_app.command("start")
@friendly
def stack_start(
    name: Annotated[str, typer.Argument(help="A component, e.g. kafka-1, datanode-0, namenode.")],
) -> None:
    """Start one stopped component again and wait until it is healthy."""
    from conveyor.stack.local import LocalStack

    LocalStack(get_settings()).start_component(name, progress=console.log)


@stack_app.command("status")
@friendly
def stack_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Each component's state and the stack's endpoints."""
    from conveyor.stack.local import LocalStack

    result = LocalStack(get_settings()).status()
    if as_json:
        out.print_json(json.dumps(result))
    else:
        _print_status(result)
    if not result["running"]:
        raise typer.Exit(3)


def _print_status(result: dict[str, Any]) -> None:
    table = Table(title="Conveyor embedded stack", show_header=True)
    table.add_column("component")
    table.add_column("state")
    table.add_column("log")
    for comp in result["components"]:
        colour = "green" if comp["state"] == "running" else "red"
        table.add_row(comp["name"], f"[{colour}]{comp['state']}[/]", comp["log"])
    out.print(table)
    keys = ("kafka_bootstrap", "kafka_security_protocol", "kafka_credentials_file")
    for key in (*keys, "hdfs_uri", "lake_uri", "airflow_url", "connect_url"):
        if result.get(key):
            out.print(f"{key:24} {result[key]}")
    if result.get("postgres_host"):
        out.print(
            f"{'postgres':24} {result['postgres_user']}@{result['postgres_host']}:"
            f"{result['postgres_port']}/{result['postgres_database']} / password in "
            f"{result['postgres_password_file']}"
        )
    if result.get("airflow_url"):
        out.print(
            f"{'airflow login':24} {result['airflow_user']} / password in "
            f"{result['airflow_password_file']}"
        )
