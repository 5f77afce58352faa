"""`conveyor`: the command line over the same library functions the DAGs and jobs call.

User mistakes (ConveyorError) print one red line and exit non-zero; no tracebacks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from conveyor.commands import (
    analytics,
    config,
    console,
    friendly,
    ingest,
    maintenance,
    out,
    rework,
)
from conveyor.commands.catalog import catalog_app
from conveyor.commands.cdc import cdc_app
from conveyor.commands.schema import schema_app
from conveyor.commands.topics import topics_app
from conveyor.settings import Settings, get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
stack_app = typer.Typer(no_args_is_help=True, help="The embedded Kafka/HDFS/Airflow stack.")
app.add_typer(stack_app, name="stack")
app.add_typer(catalog_app, name="catalog")
app.add_typer(topics_app, name="topics")
app.add_typer(cdc_app, name="cdc")
app.add_typer(schema_app, name="schema")
ingest.register(app)
config.register(app)
analytics.register(app)
maintenance.register(app)
rework.register(app)


def _settings(**overrides: Any) -> Settings:
    return get_settings(**overrides)


def run_job(command: Sequence[str], argv: Sequence[str] | None = None) -> None:
    """What a file in `jobs/` runs under spark-submit: the CLI's `command` (e.g. `["ingest"]`)
    with the job's own arguments (default: sys.argv's), so a job and the CLI read arguments
    one way and answer mistakes the same. Log lines at INFO go to stderr (Airflow's task log).
    Exits with the command's exit code."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    app([*command, *args], prog_name=Path(sys.argv[0]).name)


@app.command()
@friendly
def jars() -> None:
    """Resolve the JVM jars (Kafka broker, HDFS, Spark's Kafka source, Delta) with Maven, once,
    build Conveyor's own JVM module (jvm/decode) and the Spark driver's class archive (faster
    driver starts)."""
    from conveyor.jars import MODULE, build_module, module_source, resolve_all
    from conveyor.spark import class_archive

    settings = _settings()
    with console.status("resolving JVM artifacts with mvn"):
        outcome = resolve_all(settings.jvm_artifacts_file, settings.jars_dir)
    with console.status("building Conveyor's JVM module with mvn"):
        outcome[MODULE] = build_module(
            module_source(settings.jvm_artifacts_file), settings.jars_dir
        )
    for name, what in outcome.items():
        console.print(f"jars [bold]{name}[/]: {what} in {settings.jars_dir / name}")
    with console.status("building the Spark driver's class archive (once, about a minute)"):
        archived = class_archive.build(settings)
    console.print(f"spark class archive: {archived}")


@app.command("spark-args")
@friendly
def spark_args() -> None:
    """Print the spark-submit arguments (master, jars, conf) Conveyor's jobs need."""
    import shlex

    from conveyor.spark.session import spark_submit_args

    out.print(shlex.join(spark_submit_args(_settings())), soft_wrap=True, highlight=False)


@app.command(
    "spark-submit",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
@friendly
def spark_submit(ctx: typer.Context) -> None:
    """Run `spark-submit` with Conveyor's arguments on this installation's Spark and Python
    (no venv to activate): `conveyor spark-submit jobs/stream_ingest.py clicks`.
    Every argument goes to spark-submit; its exit code is this command's."""
    import os

    from conveyor.spark.session import spark_submit_command

    command, env = spark_submit_command(_settings(), ctx.args)
    os.execve(command[0], command, env)


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
    stack = LocalStack(_settings(**{k: v for k, v in overrides.items() if v is not None}))
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

    stopped = LocalStack(_settings()).down(progress=console.log)
    console.print(f"stopped {len(stopped)} component(s)" if stopped else "nothing was running")


@stack_app.command("kill")
@friendly
def stack_kill(
    name: Annotated[str, typer.Argument(help="A component, e.g. kafka-1, datanode-0, namenode.")],
) -> None:
    """`kill -9` one component's process group, to rehearse a failure; `stack start NAME`
    (or `stack up`) brings it back with its ports and data."""
    from conveyor.stack.local import LocalStack

    LocalStack(_settings()).kill_component(name)
    console.print(f"{name}: killed")


@stack_app.command("start")
@friendly
def stack_start(
    name: Annotated[str, typer.Argument(help="A component, e.g. kafka-1, datanode-0, namenode.")],
) -> None:
    """Start one stopped component again and wait until it is healthy."""
    from conveyor.stack.local import LocalStack

    LocalStack(_settings()).start_component(name, progress=console.log)


@stack_app.command("status")
@friendly
def stack_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Each component's state and the stack's endpoints."""
    from conveyor.stack.local import LocalStack

    result = LocalStack(_settings()).status()
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


@app.command()
@friendly
def demo(
    events: Annotated[
        int,
        typer.Option(
            help="Sample events for the catalog's first stream (a quarter of that for each other)."
        ),
    ] = 2000,
) -> None:
    """Run the pipeline end to end on the embedded stack and print a summary."""
    from conveyor.demo import run_demo

    run_demo(_settings(), events=events, console=out)


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
@friendly
def bench(ctx: typer.Context) -> None:
    """Run the ingest benchmark (benchmarks/ingest.py; its options pass through, e.g. --quick).
    `conveyor bench --security` runs benchmarks/security.py instead: the same drain on a
    plaintext and on a secured stack, one after the other (it starts both itself);
    `conveyor bench --cdc` runs benchmarks/cdc.py: a database mirrored by MERGE against the
    append path over the same change records, and the lag from a Postgres commit to silver."""
    import subprocess

    from conveyor.errors import ConveyorError
    from conveyor.settings import project_root

    args = list(ctx.args)
    name = next((f"{flag[2:]}.py" for flag in ("--security", "--cdc") if flag in args), "ingest.py")
    args = [a for a in args if a not in ("--security", "--cdc")]
    script = project_root() / "benchmarks" / name
    if not script.is_file():
        raise ConveyorError(f"{script} is missing: the benchmark runs from a Conveyor checkout")
    raise typer.Exit(subprocess.run([sys.executable, str(script), *args], check=False).returncode)


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
