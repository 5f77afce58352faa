"""Catalog variants for tests: the shipped streams under unique names, so tests never share
topics, tables or checkpoints."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from conveyor.catalog import Catalog, load_catalog
from conveyor.settings import Settings, project_root

SHIPPED_CATALOG = project_root() / "conveyor.yaml"


def catalog_variant(
    folder: Path,
    *,
    suffix: str | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
    source: Path = SHIPPED_CATALOG,
) -> Catalog:
    """The shipped catalog (or `source`) with every stream renamed `<name>_<suffix>` (topics and
    tables follow the stream name), optionally edited, written to folder/conveyor.yaml and
    loaded."""
    suffix = suffix or uuid.uuid4().hex[:8]
    data = yaml.safe_load(source.read_text())
    data["streams"] = {
        f"{name}_{suffix}": copy.deepcopy(spec) for name, spec in data["streams"].items()
    }
    if edit:
        edit(data)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "conveyor.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_catalog(path)


def provision(settings: Settings, catalog: Catalog) -> None:
    """Create the catalog's topics on the broker (what `conveyor topics apply` does)."""
    from conveyor.kafka.clients import admin_client
    from conveyor.kafka.topics import apply_plan, plan_topics

    with admin_client(settings) as admin:
        apply_plan(plan_topics(catalog, admin), admin)


def stream_named(catalog: Catalog, prefix: str) -> str:
    """The variant's name of a shipped stream (e.g. 'clicks' -> 'clicks_1a2b3c4d')."""
    return next(n for n in catalog.stream_names if n.startswith(prefix + "_"))
