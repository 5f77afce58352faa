"""Small DataFrames from the driver's own values, built in the JVM.

`spark.createDataFrame(rows)` ships local rows to Spark pickled, and Spark unpickles them in
Python worker processes: the first call starts them (a daemon and a worker per core, about 150
MiB resident together, left running) and every call runs a job through them. `local_frame`
sends the rows as one JSON text instead, which Spark parses itself (`from_json`), so a job that
needs a row or a few thousand (a ledger row, a batch's repeats) starts no Python process.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


def _plain(value: Any) -> Any:
    """A value JSON can carry as Spark's `from_json` reads it back into its column type."""
    if isinstance(value, datetime):
        # a naive datetime is local time, as `spark.createDataFrame` and `collect` take it
        return (value if value.tzinfo else value.astimezone()).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    raise TypeError(f"no JSON form for {value!r}")


def local_frame(
    spark: SparkSession,
    rows: Sequence[Mapping[str, Any] | Sequence[Any]],
    schema: str | StructType,
) -> DataFrame:
    """`rows` (mappings by column name, or sequences in column order) as a DataFrame of
    `schema` (DDL or a StructType), without Python workers (see the module). Values are what
    `spark.createDataFrame` takes for those types: str, int, float, bool, datetime (naive ones
    as local time), date, lists, mappings for structs, None."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    struct = StructType.fromDDL(schema) if isinstance(schema, str) else schema
    assert isinstance(struct, StructType), schema
    names = struct.fieldNames()
    objects = [
        dict(row) if isinstance(row, Mapping) else dict(zip(names, row, strict=True))
        for row in rows
    ]
    text = json.dumps(objects, default=_plain, allow_nan=False)
    parsed = F.from_json(F.lit(text), f"ARRAY<STRUCT<{_members(struct)}>>", {"mode": "FAILFAST"})
    return spark.range(1).select(F.explode(parsed).alias("_row")).select("_row.*")


def _members(struct: StructType) -> str:
    """A StructType's fields as `STRUCT<...>` members: `name: TYPE, ...` (names quoted)."""
    return ", ".join(
        f"`{f.name.replace('`', '``')}`: {f.dataType.simpleString()}" for f in struct.fields
    )
