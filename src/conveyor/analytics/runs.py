"""The analytics run log (`<lake>/_conveyor/analytics_runs`) and which computed days went stale.

One row per day computed: which click and log streams it read, why it ran (`requested` or
`late_data`), `read_at` (taken *before* silver was read, so anything committed later counts as
new), when it finished, and how much it found. A day that failed part way gets a row too:
`status = failed`, the gold tables it had already replaced (`written`) and the error. `empty = true` is a day that was computed and had
no click events: "computed, empty" is distinguishable from "never computed" (no row).

A computed day is stale when the ingest ledger shows a batch that landed events of that day
after the day was last read. Two ripples reach other days, and both are checked against silver:
a late event shortly after midnight can extend a session that started the day before, and a late
event can move a user's first-seen day earlier, changing "new users" of the later day.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from conveyor.catalog import ledger_uri, table_uri
from conveyor.rows import ddl, spark_fields
from conveyor.settings import Settings
from conveyor.spark.frames import local_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

RUNS_PATH = "_conveyor/analytics_runs"


@dataclass(frozen=True)
class DayRun:
    """What computing one day found; one run-log row."""

    run_id: str
    clicks_stream: str
    logs_stream: str | None
    date: date
    reason: str  # "requested" or "late_data"
    read_at: datetime
    finished_at: datetime
    click_events: int
    sessions: int
    log_lines: int
    status: str = "done"  # "done", or "failed" part way: `written` says what it replaced
    written: list[str] = field(default_factory=list)  # gold tables whose day was replaced
    error: str | None = None  # why it failed

    @property
    def empty(self) -> bool:
        return self.click_events == 0

    def as_row(self) -> dict[str, object]:
        return {**self.__dict__, "empty": self.empty}


RUNS_SCHEMA = ddl([*spark_fields(DayRun), ("empty", "BOOLEAN")])
"""The run log's columns: DayRun's fields and whether the day was empty."""


def runs_uri(settings: Settings) -> str:
    return table_uri(settings, RUNS_PATH)


def record_run(spark: SparkSession, settings: Settings, day: DayRun) -> None:
    """Append one row to the run log (columns added since the log was created are merged)."""
    frame = local_frame(spark, [day.as_row()], RUNS_SCHEMA)
    frame.write.format("delta").mode("append").option("mergeSchema", "true").save(
        runs_uri(settings)
    )


def last_read(spark: SparkSession, settings: Settings, clicks_stream: str) -> dict[date, datetime]:
    """For every day computed for this click stream: when silver was last read for it."""
    from pyspark.sql import functions as F

    if not _exists(spark, runs_uri(settings)):
        return {}
    log_rows = spark.read.format("delta").load(runs_uri(settings))
    if "status" in log_rows.columns:  # a failed day is not computed (rows before it: done)
        log_rows = log_rows.where(F.col("status").isNull() | (F.col("status") == "done"))
    rows = (
        log_rows.where(F.col("clicks_stream") == clicks_stream)
        .groupBy("date")
        .agg(F.max("read_at").alias("read_at"))
        .collect()
    )
    return {r["date"]: r["read_at"] for r in rows}


LEDGER_LOOKBACK = timedelta(days=7)
"""How far before the newest analytics read the ledger is searched for batches. The ingest job
quarantines events older than its watermark, so batches cannot touch days older than this."""
CHANGED_SILVER = ("batch", "replay", "rebuild")
"""Ledger kinds whose `event_dates` are days whose silver rows changed."""


def stale_days(
    spark: SparkSession,
    settings: Settings,
    *,
    clicks_stream: str,
    clicks_silver: str,
    logs_stream: str | None,
    gold_sessions: str,
    session_gap: timedelta,
) -> list[date]:
    """Computed days whose answers late data has changed since they were last computed."""
    computed = last_read(spark, settings, clicks_stream)
    if not computed or not _exists(spark, ledger_uri(settings)):
        return []
    horizon = max(min(computed.values()), max(computed.values()) - LEDGER_LOOKBACK)
    streams = [s for s in (clicks_stream, logs_stream) if s]
    landed = _landed_after(spark, settings, streams, horizon)
    stale = {day for _, _, day, ended, _ in landed if day in computed and ended > computed[day]}
    # a late batch can also change the day before (sessions) and later days (first seen); a
    # replay or rebuild keeps its rows' ingest times, so only the days it names are known
    click_batches = [
        (day, started)
        for s, kind, day, _, started in landed
        if s == clicks_stream and kind == "batch"
    ]
    for day, since in _earliest_start(click_batches).items():
        late = _late_rows(spark, clicks_silver, day, since)
        before = day - timedelta(days=1)
        if before in computed and _extends_sessions(
            spark, late, gold_sessions, before, session_gap
        ):
            stale.add(before)
        stale |= _first_seen_moved(spark, clicks_silver, late, day, since) & set(computed)
    return sorted(stale)


def _landed_after(
    spark: SparkSession, settings: Settings, streams: list[str], since: datetime
) -> list[tuple[str, str, date, datetime, datetime]]:
    """(stream, kind, event date, ended_at, started_at) of ledger rows that changed silver
    (batches, replays, rebuilds) ended after `since`."""
    from pyspark.sql import functions as F

    rows = (
        spark.read.format("delta")
        .load(ledger_uri(settings))
        .where(F.col("stream").isin(*streams) & F.col("kind").isin(*CHANGED_SILVER))
        .where(F.col("ended_at") > F.lit(since))
        .select("stream", "kind", F.explode("event_dates").alias("day"), "ended_at", "started_at")
        .collect()
    )
    return [(r["stream"], r["kind"], r["day"], r["ended_at"], r["started_at"]) for r in rows]


def _earliest_start(batches: list[tuple[date, datetime]]) -> dict[date, datetime]:
    earliest: dict[date, datetime] = {}
    for day, started in batches:
        earliest[day] = min(started, earliest.get(day, started))
    return earliest


def _late_rows(spark: SparkSession, silver: str, day: date, since: datetime) -> DataFrame:
    """Silver rows of `day` that batches started at or after `since` landed."""
    from pyspark.sql import functions as F

    frame = spark.read.format("delta").load(silver)
    return frame.where((F.col("event_date") == F.lit(day)) & (F.col("ingest_time") >= F.lit(since)))


def _extends_sessions(
    spark: SparkSession, late: DataFrame, gold_sessions: str, before: date, gap: timedelta
) -> bool:
    """Whether a late row falls inside, or within `gap` after, its user's session of `before`."""
    from pyspark.sql import functions as F

    if not _exists(spark, gold_sessions):
        return False
    sessions = (
        spark.read.format("delta")
        .load(gold_sessions)
        .where(F.col("session_date") == F.lit(before))
        .select("user_id", "session_start", "session_end")
    )
    reach = F.col("session_end") + F.expr(f"INTERVAL {int(gap.total_seconds())} SECONDS")
    touching = late.select("user_id", "ts").join(sessions, "user_id")
    touching = touching.where((F.col("ts") >= F.col("session_start")) & (F.col("ts") < reach))
    return touching.limit(1).count() > 0


def _first_seen_moved(
    spark: SparkSession, silver: str, late: DataFrame, day: date, since: datetime
) -> set[date]:
    """Later days that counted a late row's user as new: their first-seen day was after `day`."""
    from pyspark.sql import functions as F

    users = late.select("user_id").distinct()
    earlier = (
        spark.read.format("delta")
        .load(silver)
        .where(F.col("ingest_time") < F.lit(since))
        .join(users, "user_id")
        .groupBy("user_id")
        .agg(F.min("event_date").alias("first_seen"))
        .where(F.col("first_seen") > F.lit(day))
        .select("first_seen")
        .distinct()
        .collect()
    )
    return {r["first_seen"] for r in earlier}


def _exists(spark: SparkSession, uri: str) -> bool:
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, uri))
