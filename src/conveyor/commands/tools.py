"""The commands around the pipeline: `conveyor jars`, `spark-args`, `spark-submit`, `demo` and
`bench`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from conveyor.commands import console, friendly, out
from conveyor.settings import get_settings

tools_app = typer.Typer()
"""Top-level commands: `register` mounts each on the CLI's own app."""


def register(app: typer.Typer) -> None:
    """Mount the commands on `app` (top level: `conveyor jars`, ...)."""
    for command in tools_app.registered_commands:
        app.registered_commands.append(command)


@tools_app.command()
@friendly
def jars() -> None:
    """Resolve the JVM jars (Kafka broker, HDFS, Spark's Kafka source, Delta) with Maven, once,
    build Conveyor's own JVM module (jvm/decode) and the Spark driver's class archive (faster
    driver starts)."""
    from conveyor.jars import MODULE, build_module, module_source, resolve_all
    from conveyor.spark import class_archive

    settings = get_settings()
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


@tools_app.command("spark-args")
@friendly
def spark_args() -> None:
    """Print the spark-submit arguments (master, jars, conf) Conveyor's jobs need."""
    import shlex

    from conveyor.spark.session import spark_submit_args

    out.print(shlex.join(spark_submit_args(get_settings())), soft_wrap=True, highlight=False)


@tools_app.command(
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

    command, env = spark_submit_command(get_settings(), ctx.args)
    os.execve(command[0], command, env)


@tools_app.command()
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

    run_demo(get_settings(), events=events, console=out)


@tools_app.command(
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
