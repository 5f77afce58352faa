"""Typer command groups the CLI mounts (`conveyor topics ...`), and what they share.

`friendly` lives here rather than in `conveyor.cli` so command modules need not import the CLI
that imports them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TextIO, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from conveyor.catalog import Catalog, resolve_catalog
from conveyor.errors import ConveyorError
from conveyor.settings import Settings, get_settings

PIPED_WIDTH = 200
"""Columns for output that is not a terminal (a log, a pipe): tables keep their natural width
instead of being cut to 80."""


def _width(stream: TextIO) -> int | None:
    return None if stream.isatty() else PIPED_WIDTH


console = Console(stderr=True, soft_wrap=True, width=_width(sys.stderr))
"""Progress, warnings and errors (stderr)."""
out = Console(soft_wrap=True, width=_width(sys.stdout))
"""Results (stdout)."""

F = TypeVar("F", bound=Callable[..., Any])


def friendly(func: F) -> F:
    """Turn ConveyorError into one clear message and its exit code; no traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConveyorError as exc:
            console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


CatalogOption = Annotated[
    Path | None,
    typer.Option(
        "--catalog",
        help="Catalog file (default: $CONVEYOR_CATALOG, else conveyor.yaml at the repo root).",
        dir_okay=False,
    ),
]
"""The `--catalog` option every catalog-driven command takes."""


def settings_and_catalog(catalog: Path | None) -> tuple[Settings, Catalog]:
    """Settings from the environment and the catalog (`--catalog`, else the settings' one)."""
    settings = get_settings()
    return settings, resolve_catalog(settings, catalog)
