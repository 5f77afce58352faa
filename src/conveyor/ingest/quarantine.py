"""Quarantine's rows: a record that failed a check, with its coordinates and reasons, and the
marks `conveyor replay` leaves on it. Shared by both landings and by rework."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.ingest import quality

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


REPLAY_COLUMNS = (
    ("replayed_at", "timestamp"),
    ("replay_run", "string"),
    ("replay_outcome", "string"),
)
"""Quarantine's marks of `conveyor replay` (null until a replay moves the record): when, which
run, and the outcome (`silver`, or `duplicate` of a record silver already held)."""


def no_problems() -> Column:
    """True for a record without problems: bound for silver (or dropped as a repeat)."""
    from pyspark.sql import functions as F

    return F.size(F.col(quality.PROBLEMS)) == 0


def quarantine_rows(classified: DataFrame) -> DataFrame:
    """Quarantine's rows of invalid records: the raw record, its coordinates, the first
    problem's code, every problem's message, the ingest time, replay marks (null)."""
    from pyspark.sql import functions as F

    problems = F.col(quality.PROBLEMS)
    return classified.select(
        "value",
        "key",
        "topic",
        "partition",
        "offset",
        "kafka_timestamp",
        F.get(problems, 0)["code"].alias("reason_code"),
        F.array_join(F.transform(problems, lambda p: p["message"]), "; ").alias("reason"),
        "ingest_time",
        "ingest_date",
        *(F.lit(None).cast(kind).alias(name) for name, kind in REPLAY_COLUMNS),
    )
