"""Delta table properties from the catalog: each table carries its layer's defaults and the
catalog's overrides (`conveyor.catalog.table_properties`), the ledger `LEDGER_PROPERTIES`.

A new table is created with them (the first batch's writer). A table that differs is drift:
`conveyor schema plan` lists it and `conveyor schema apply` sets it, and the ingest sets its own
stream's before its first batch, holding the stream's write lease. A property change is a
metadata commit, which fails an append committed at the same moment: it is never made from
inside a batch, and a change that meets a concurrent commit is made again. Properties the
catalog does not name are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from conveyor.catalog import LEDGER_PROPERTIES, Catalog, Layer, ledger_uri, table_uri
from conveyor.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

LEDGER = "_conveyor_ledger"
"""How plans name the ledger (shared by every stream)."""


@dataclass(frozen=True)
class PropertyChange:
    """One property a table carries otherwise than the catalog says (`old` None: unset)."""

    table: str
    uri: str
    key: str
    old: str | None
    new: str

    def describe(self) -> str:
        return f"table {self.table!r}: {self.key} {self.old or '(unset)'} -> {self.new}"


def _live(uri: str) -> Mapping[str, str] | None:
    """The table's properties from its Delta log (delta-rs, no JVM); None when no table."""
    from conveyor.delta_rs import open_table

    table = open_table(uri)
    return None if table is None else dict(table.metadata().configuration)


def _drift(name: str, uri: str, wanted: Mapping[str, str]) -> list[PropertyChange]:
    live = _live(uri)
    if live is None:  # created with them by its first write
        return []
    return [
        PropertyChange(name, uri, key, live.get(key), value)
        for key, value in sorted(wanted.items())
        if live.get(key) != value
    ]


def plan_properties(
    settings: Settings, catalog: Catalog, streams: Iterable[str] | None = None
) -> list[PropertyChange]:
    """Every property of the streams' tables (all streams by default) and the ledger that
    differs from the catalog."""
    changes: list[PropertyChange] = []
    for name in streams if streams is not None else catalog.stream_names:
        for layer in Layer:
            ref = catalog.stream(name).table(layer)
            changes += _drift(ref.name, table_uri(settings, ref), dict(ref.properties))
    return changes + _drift(LEDGER, ledger_uri(settings), LEDGER_PROPERTIES)


def apply_properties(spark: SparkSession, changes: Iterable[PropertyChange]) -> None:
    """Set the properties, one commit per table; a commit that meets a concurrent one is made
    again against the new version."""
    from conveyor.spark.conflicts import retry_conflicts
    from conveyor.spark.sql import identifier

    by_table: dict[str, list[PropertyChange]] = {}
    for change in changes:
        by_table.setdefault(change.uri, []).append(change)
    for uri, todo in by_table.items():
        values = ", ".join(f"'{c.key}' = '{_literal(c.new)}'" for c in todo)
        statement = f"ALTER TABLE delta.{identifier(uri)} SET TBLPROPERTIES ({values})"
        retry_conflicts(partial(spark.sql, statement), statement, max_pause_s=20.0)


def _literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")
