"""`conveyor`: the command line over the same library functions the DAGs and jobs call.

User mistakes (ConveyorError) print one red line and exit non-zero; no tracebacks.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Sequence
from pathlib import Path

import typer

from conveyor.commands import (
    analytics,
    catalog,
    cdc,
    config,
    ingest,
    maintenance,
    rework,
    schema,
    stack,
    tools,
    topics,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
for commands in (ingest, config, analytics, maintenance, rework, tools):
    commands.register(app)  # top-level commands, in the order `conveyor --help` lists them
for group in (stack, catalog, topics, cdc, schema):
    group.register(app)  # command groups: `conveyor stack ...`


def _reflow(text: str) -> str:
    """A docstring's paragraphs as single lines, so a terminal wraps them at its own width
    (help boxes otherwise keep the source's line breaks mid-sentence)."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _reflow_help(typer_app: typer.Typer) -> None:
    for command in typer_app.registered_commands:
        doc = command.help or (command.callback.__doc__ if command.callback else None)
        if doc:
            command.help = _reflow(doc)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _reflow_help(group.typer_instance)


_reflow_help(app)


def run_job(command: Sequence[str], argv: Sequence[str] | None = None) -> None:
    """What a file in `jobs/` runs under spark-submit: the CLI's `command` (e.g. `["ingest"]`)
    with the job's own arguments (default: sys.argv's), so a job and the CLI read arguments
    one way and answer mistakes the same. Log lines at INFO go to stderr (Airflow's task log).
    Exits with the command's exit code."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = list(sys.argv[1:] if argv is None else argv)
    app([*command, *args], prog_name=Path(sys.argv[0]).name)


def main() -> None:  # pragma: no cover - console script entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
