"""`local_frame`: the rows `spark.createDataFrame` would give, without a Python RDD (whose rows
Python worker processes unpickle)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from conveyor.kafka.offsets import PartitionRange
from conveyor.ledger import LEDGER_SCHEMA, LedgerEntry
from conveyor.spark.frames import local_frame

MIXED = (
    "s string, i int, n bigint, x double, b boolean, t timestamp, d date, "
    "a array<struct<k: string, v: bigint>>"
)
ROWS: list[tuple[Any, ...]] = [
    (
        'quote " backslash \\ newline \n ü 🙂',
        -(2**31),
        2**63 - 1,
        0.1,
        True,
        datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        date(1970, 1, 1),
        [{"k": "a", "v": -(2**63)}],
    ),
    (
        "",
        0,
        0,
        -1e300,
        False,
        datetime(2026, 6, 1, 12, tzinfo=timezone(timedelta(hours=5))),
        None,
        [],
    ),
    (None, None, None, None, None, datetime(2026, 6, 1, 12, 30), date(2026, 12, 7), None),
]


def _plan(frame: Any) -> str:
    return str(frame._jdf.queryExecution().executedPlan().toString())


def test_local_frame_equals_create_data_frame(spark: Any) -> None:
    mine, theirs = local_frame(spark, ROWS, MIXED), spark.createDataFrame(ROWS, MIXED)
    assert mine.schema == theirs.schema
    assert mine.collect() == theirs.collect()
    assert "ExistingRDD" in _plan(theirs)
    assert "ExistingRDD" not in _plan(mine)


def test_a_ledger_row_and_no_rows(spark: Any) -> None:
    entry = LedgerEntry(
        stream="clicks",
        kind="batch",
        app_id="app",
        batch_id=7,
        started_at=datetime(2026, 12, 7, 9, 0, 0, 1, tzinfo=UTC),
        ended_at=datetime(2026, 12, 7, 9, 0, 1, tzinfo=UTC),
        offsets=[PartitionRange("clicks", 3, 10, 20)],
        rows_read=10,
        event_dates=[date(2026, 12, 6), date(2026, 12, 7)],
        step_ms={"parse": 12, "ledger": 3},
    )
    row = local_frame(spark, [entry.as_row()], LEDGER_SCHEMA).collect()
    assert row == spark.createDataFrame([entry.as_row()], LEDGER_SCHEMA).collect()
    empty = local_frame(spark, [], "topic string, partition int")
    assert empty.count() == 0
    assert empty.schema.simpleString() == "struct<topic:string,partition:int>"
