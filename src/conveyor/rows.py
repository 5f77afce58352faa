"""Spark schemas of Conveyor's own tables (the ledger, the maintenance log, the analytics run
log), derived from the dataclasses of their rows, so a column is declared once.

Python types map to Spark SQL types: str STRING, int BIGINT, float DOUBLE, bool BOOLEAN,
datetime TIMESTAMP, date DATE, an enum STRING, `list[X]` ARRAY<X>, a dataclass STRUCT<...>,
`X | None` as X (every column is nullable). A field's metadata `{"sql": "INT"}` (`SQL_INT`)
overrides the mapping where an existing table already has another type.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

SQL_INT = {"sql": "INT"}
_SIMPLE: dict[Any, str] = {
    bool: "BOOLEAN",
    str: "STRING",
    int: "BIGINT",
    float: "DOUBLE",
    datetime: "TIMESTAMP",
    date: "DATE",
}


def spark_fields(cls: type[Any], *, skip: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(column, Spark SQL type) for each field of the dataclass `cls`, in field order."""
    hints = typing.get_type_hints(cls)
    left_out = set(skip)
    return [
        (f.name, f.metadata.get("sql") or sql_type(hints[f.name]))
        for f in dataclasses.fields(cls)
        if f.name not in left_out
    ]


def sql_type(hint: Any) -> str:
    """The Spark SQL type of one Python type hint (see the module's mapping)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        if len(present) != 1:
            raise TypeError(f"no Spark type for the union {hint!r}")
        return sql_type(present[0])
    if origin is list:
        return f"ARRAY<{sql_type(args[0])}>"
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        members = ", ".join(f"{name}: {kind}" for name, kind in spark_fields(hint))
        return f"STRUCT<{members}>"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "STRING"
    if hint in _SIMPLE:
        return _SIMPLE[hint]
    raise TypeError(f"no Spark type for {hint!r}")


def ddl(fields: Iterable[tuple[str, str]]) -> str:
    """`name TYPE, ...`, as `spark.createDataFrame` takes a schema."""
    return ", ".join(f"{name} {kind}" for name, kind in fields)
