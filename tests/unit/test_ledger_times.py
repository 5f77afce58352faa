"""The newest event time per partition that a batch's lateness is judged against, read from a
real ledger (delta-rs on a local folder): per-partition rows, rows written before the ledger
kept times per partition, and the batches a replay must not count."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
from deltalake import write_deltalake

from conveyor.ledger import (
    LedgerEntry,
    PartitionRange,
    PartitionTime,
    append_entry,
    arrow_schema,
    previous_event_times,
)

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _batch(batch_id: int, app_id: str = "app", **fields: object) -> LedgerEntry:
    return LedgerEntry(
        stream="clicks",
        kind="batch",
        app_id=app_id,
        batch_id=batch_id,
        started_at=T0,
        ended_at=T0,
        **fields,  # type: ignore[arg-type]
    )


def test_each_partition_keeps_its_own_newest_event_time(tmp_path: Path) -> None:
    uri = str(tmp_path / "ledger")
    append_entry(
        uri,
        _batch(
            0,
            offsets=[PartitionRange("t", 0, 0, 5), PartitionRange("t", 1, 0, 5)],
            max_event_time=T0.replace(hour=12),
            partition_event_times=[
                PartitionTime("t", 0, T0.replace(hour=12)),
                PartitionTime("t", 1, T0.replace(hour=6)),
            ],
        ),
    )
    append_entry(
        uri,
        _batch(
            1,
            offsets=[PartitionRange("t", 1, 5, 9)],
            max_event_time=T0.replace(hour=12),
            partition_event_times=[PartitionTime("t", 1, T0.replace(hour=7))],
        ),
    )

    assert previous_event_times(uri, "clicks", "app", 2) == {
        ("t", 0): T0.replace(hour=12),
        ("t", 1): T0.replace(hour=7),
    }
    # a replay of batch 1 is judged as batch 1 was: without what batch 1 itself landed
    assert previous_event_times(uri, "clicks", "app", 1) == {
        ("t", 0): T0.replace(hour=12),
        ("t", 1): T0.replace(hour=6),
    }
    assert previous_event_times(uri, "other", "app", 2) == {}


def test_a_row_from_before_per_partition_times_counts_for_every_partition_it_read(
    tmp_path: Path,
) -> None:
    uri = str(tmp_path / "ledger")
    legacy = _batch(
        0,
        app_id="old",
        offsets=[PartitionRange("t", 0, 0, 5), PartitionRange("t", 2, 0, 5)],
        max_event_time=T0,
    ).as_row()
    legacy["partition_event_times"] = None
    write_deltalake(
        uri, pa.Table.from_pylist([legacy], schema=arrow_schema()), partition_by=["stream"]
    )

    assert previous_event_times(uri, "clicks", "new", 0) == {("t", 0): T0, ("t", 2): T0}
