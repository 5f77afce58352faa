"""Spark-free, read-only looks at the lake's Delta tables, through delta-rs (`deltalake`).

What the Airflow UI page, `conveyor status`, `conveyor tables` and the sensors need is small:
a table's version and file list (from its Delta log, no data read), and a few columns of the
ledger, the quarantine and the maintenance log. Reading them with delta-rs takes milliseconds
and no JVM, so an API request or a sensor poke never starts Spark. Writers stay Spark's.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConveyorError
from conveyor.units import as_utc

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


class LakeReadFailed(ConveyorError):
    """A Delta table could not be read (the file system did not answer, or the log is bad)."""


@dataclass(frozen=True)
class DataFile:
    """One file a table version references: path relative to the table, size, partition."""

    path: str
    size: int
    partition: tuple[tuple[str, str | None], ...]
    modified_at: datetime | None


def open_table(uri: str, version: int | None = None) -> DeltaTable | None:
    """The Delta table at uri (at `version`, default the latest), or None when there is none.

    Raises LakeReadFailed when the file system or the log cannot be read.
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        return DeltaTable(uri, version=version)
    except TableNotFoundError:
        return None
    except OSError as exc:  # delta-rs reports I/O and protocol problems as OSError subclasses
        raise LakeReadFailed(f"could not read the Delta table at {uri}: {exc}") from exc


def data_files(table: DeltaTable, partition_by: Sequence[str]) -> list[DataFile]:
    """Every file the table's loaded version references, with its partition values in the
    order of `partition_by`."""
    import pyarrow as pa

    actions = pa.table(table.get_add_actions(flatten=True)).to_pylist()
    files = []
    for action in actions:
        values = tuple(
            (column, _partition_value(action.get(f"partition.{column}")))
            for column in partition_by
            if f"partition.{column}" in action
        )
        modified = action.get("modification_time")
        files.append(
            DataFile(
                path=urllib.parse.unquote(str(action["path"])),
                size=int(action["size_bytes"]),
                partition=values,
                modified_at=as_utc(modified) if isinstance(modified, datetime) else None,
            )
        )
    return files


def read_rows(
    uri: str,
    columns: Sequence[str],
    *,
    partitions: list[tuple[str, str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Some columns of a table (latest version) as dicts; [] when the table does not exist.

    `partitions` are delta-rs filters on partition columns, e.g. `[("stream", "=", "clicks")]`,
    each value of the column's type (a `date` for a DATE column): only matching partitions
    are read. Timestamps come back as aware UTC datetimes.
    """
    table = open_table(uri)
    if table is None:
        return []
    names = {f.name for f in table.schema().fields}
    present = [c for c in columns if c in names]
    arrow: pa.Table = table.to_pyarrow_table(filters=partitions or None, columns=present)
    rows = arrow.to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, datetime):
                row[key] = as_utc(value)
    return rows


def _partition_value(value: Any) -> str | None:
    if value is None:
        return None
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return None if text == HIVE_NULL else text
