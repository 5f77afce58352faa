"""Text for Spark SQL statements Conveyor writes itself."""

from __future__ import annotations


def identifier(name: str) -> str:
    """`name` as a back-quoted Spark SQL identifier (a column, or a path in `delta.<path>`)."""
    return "`" + name.replace("`", "``") + "`"
