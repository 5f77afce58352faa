"""`conveyor render-config`: Kafka, Hadoop and Spark files for a target, from the shared templates.

`--target compose` writes what docker-compose.yml mounts (commit the result: `docker/config/`);
`--target local` writes the Spark defaults for the current settings. `--check` changes nothing
and exits 1 when a file is missing or differs from a fresh render.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from conveyor.commands import console, friendly, out
from conveyor.settings import get_settings

STALE_EXIT_CODE = 1


def register(app: typer.Typer) -> None:
    """Mount `render-config` on the top-level CLI."""
    app.command("render-config")(render_config)


@friendly
def render_config(
    out_dir: Annotated[
        Path,
        typer.Option("--out", help="Folder to write into (e.g. docker/config).", file_okay=False),
    ],
    target: Annotated[
        str, typer.Option("--target", help="compose (docker-compose.yml) or local (settings).")
    ] = "compose",
    check: Annotated[
        bool, typer.Option("--check", help="Only compare with a fresh render; write nothing.")
    ] = False,
) -> None:
    """Render the Kafka, Hadoop and Spark configuration templates for a target."""
    from conveyor.config_targets import stale_files, target_files, write_files

    files = target_files(target, get_settings())
    if check:
        stale = stale_files(files, out_dir)
        for name in stale:
            console.print(f"[red]stale:[/] {out_dir / name}", highlight=False)
        if stale:
            console.print(
                f"run `conveyor render-config --target {target} --out {out_dir}` and commit it",
                highlight=False,
            )
            raise typer.Exit(STALE_EXIT_CODE)
        out.print(f"{len(files)} file(s) in {out_dir} match the templates", highlight=False)
        return
    for written in write_files(files, out_dir):
        out.print(f"wrote {written}", highlight=False)
