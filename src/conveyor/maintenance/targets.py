"""Which catalog tables a maintenance command works on: one by name, or all of them."""

from __future__ import annotations

from conveyor.catalog import Catalog, TableRef
from conveyor.catalog.models import shown_path
from conveyor.errors import ConveyorError


class UnknownTable(ConveyorError):
    """A table name the catalog does not declare, or a missing/ambiguous table selection."""


def find_table(catalog: Catalog, name: str) -> TableRef:
    """The catalog table called `name` (e.g. `clicks_silver`); raises UnknownTable listing the
    tables that exist."""
    tables = {ref.name: ref for ref in catalog.tables()}
    try:
        return tables[name]
    except KeyError:
        known = ", ".join(tables) or "none"
        raise UnknownTable(
            f"{shown_path(catalog.source)}: no table named {name!r} (tables: {known})"
        ) from None


def select_tables(
    catalog: Catalog, name: str | None, every: bool, run_id: str | None = None
) -> list[TableRef]:
    """`[find_table(name)]`, or every catalog table when `every`; exactly one of the two. A
    `run_id` names one run of one table, so it goes with a name only."""
    if name and every:
        raise UnknownTable(f"give either a table name or --all, not both (got {name!r} and --all)")
    if run_id is not None and every:
        raise UnknownTable("--run-id names the run of one table: give a table name, not --all")
    if every:
        return list(catalog.tables())
    if not name:
        raise UnknownTable("name a table (e.g. clicks_silver) or pass --all")
    return [find_table(catalog, name)]
