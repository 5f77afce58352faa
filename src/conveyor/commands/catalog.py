"""`conveyor catalog check|show`: the catalog file on its own, without touching any service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.markup import escape

from conveyor.catalog import CatalogError, load_catalog
from conveyor.catalog.models import shown_path
from conveyor.commands import CatalogOption, friendly, out
from conveyor.settings import get_settings

INVALID_EXIT_CODE = 2

catalog_app = typer.Typer(
    no_args_is_help=True, help="The catalog file: check it, show a stream as resolved."
)


def register(app: typer.Typer) -> None:
    """Mount `conveyor catalog ...`."""
    app.add_typer(catalog_app, name="catalog")


def _path(catalog: Path | None) -> Path:
    return catalog or get_settings().catalog


@catalog_app.command("check")
@friendly
def check(catalog: CatalogOption = None) -> None:
    """Validate the catalog (YAML, keys, types, values, references between streams) without
    touching Kafka, HDFS or Spark. Lists every problem with its line in the file and exits 2;
    prints a summary and exits 0 when there is none."""
    path = _path(catalog)
    try:
        spec = load_catalog(path)
    except CatalogError as exc:
        shown = shown_path(path)
        if not exc.places:  # the file could not be read or parsed at all
            for problem in exc.problems:
                out.print(escape(problem), highlight=False)
        for line, where, what in exc.places:
            place = f"{shown}:{line}" if line is not None else shown
            out.print(f"{escape(place)}: {escape(where)}: {escape(what)}", highlight=False)
        count = max(len(exc.places), len(exc.problems))
        out.print(f"[bold red]{count} problem(s)[/] in {escape(shown)}", highlight=False)
        raise typer.Exit(INVALID_EXIT_CODE) from None
    kinds = [spec.streams[name].kind for name in spec.stream_names]
    out.print(
        f"{escape(shown_path(path))}: {len(kinds)} stream(s) "
        f"({kinds.count('append')} append, {kinds.count('cdc')} cdc), "
        f"{len(spec.tables())} table(s): no problems",
        highlight=False,
    )


@catalog_app.command("show")
@friendly
def show(
    stream: Annotated[str, typer.Argument(help="Stream name from the catalog.")],
    catalog: CatalogOption = None,
) -> None:
    """Print one stream as Conveyor resolves it: every default filled in, its derived names
    and paths, and each table with its Delta properties (YAML)."""
    spec = load_catalog(_path(catalog)).stream(stream)
    resolved = spec.model_dump(mode="json", by_alias=True, exclude={"name"})
    resolved["tables"]["resolved"] = {
        ref.name: {
            "path": ref.path,
            "partition_by": list(ref.partition_by),
            "zorder_by": list(ref.zorder_by),
            "properties": dict(ref.properties),
        }
        for ref in spec.all_tables()
    }
    typer.echo(yaml.safe_dump({stream: resolved}, sort_keys=False), nl=False)
