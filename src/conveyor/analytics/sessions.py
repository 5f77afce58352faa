"""Sessionization of click events: pure `DataFrame -> DataFrame` functions, no I/O.

A session is a user's run of events in which no two consecutive events are `gap` or more apart:
a pause of exactly `gap` ends the session (the user was inactive for the whole timeout), a
pause of `gap` minus a microsecond does not. A session belongs to the UTC day its first event
happened on, even when it runs past midnight.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

SESSION_COLUMNS = (
    "session_id",
    "user_id",
    "session_start",
    "session_end",
    "duration_s",
    "events",
    "page_views",
    "distinct_pages",
    "entry_url",
    "exit_url",
    "converted",
    "revenue",
    "session_date",
)


def day_start(day: date) -> datetime:
    """Midnight UTC opening `day` (naive, as Spark's UTC session time zone reads it)."""
    return datetime.combine(day, time())


def session_window(day: date, gap: timedelta) -> tuple[datetime, datetime]:
    """Event times [start, end) that decide every session starting on `day`.

    `gap` before midnight is enough to tell whether an event on `day` opens a session; sessions
    started on `day` are followed through the whole next day (longer ones are cut there).
    """
    return day_start(day) - gap, day_start(day) + timedelta(days=2)


def sessionize(events: DataFrame, gap: timedelta) -> DataFrame:
    """One row per session (SESSION_COLUMNS) from events with user_id, ts, event_id, event_type,
    url and revenue. Ties in time are ordered by event_id, so the result is deterministic."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    by_user = Window.partitionBy("user_id").orderBy("ts", "event_id")
    gap_s = gap.total_seconds()
    previous = F.lag("ts").over(by_user)
    pause_s = F.unix_micros(F.col("ts")) - F.unix_micros(previous)
    marked = events.withColumn(
        "opens", F.when(previous.isNull() | (pause_s >= F.lit(int(gap_s * 1_000_000))), 1)
    ).withColumn(
        "session_no",
        F.sum(F.coalesce("opens", F.lit(0))).over(
            by_user.rowsBetween(Window.unboundedPreceding, Window.currentRow)
        ),
    )
    order = F.struct("ts", "event_id")
    sessions = marked.groupBy("user_id", "session_no").agg(
        F.min("ts").alias("session_start"),
        F.max("ts").alias("session_end"),
        F.count(F.lit(1)).alias("events"),
        F.sum(F.when(F.col("event_type") == "page_view", 1).otherwise(0)).alias("page_views"),
        F.count_distinct("url").alias("distinct_pages"),
        F.min_by("url", order).alias("entry_url"),
        F.max_by("url", order).alias("exit_url"),
        F.max(F.col("event_type") == "purchase").alias("converted"),
        exact_sum(F.when(F.col("event_type") == "purchase", F.col("revenue"))).alias("revenue"),
    )
    return sessions.select(
        F.substring(
            F.sha2(F.concat_ws("|", "user_id", F.col("session_start").cast("string")), 256), 1, 16
        ).alias("session_id"),
        "user_id",
        "session_start",
        "session_end",
        (
            (F.unix_micros(F.col("session_end")) - F.unix_micros(F.col("session_start")))
            / F.lit(1_000_000.0)
        ).alias("duration_s"),
        "events",
        F.col("page_views").cast("bigint").alias("page_views"),
        "distinct_pages",
        "entry_url",
        "exit_url",
        "converted",
        "revenue",
        F.to_date("session_start").alias("session_date"),
    )


def sessions_on(events: DataFrame, day: date, gap: timedelta) -> DataFrame:
    """Sessions that start on `day`; `events` must cover `session_window(day, gap)`."""
    from pyspark.sql import functions as F

    start, end = session_window(day, gap)
    window = events.where((F.col("ts") >= F.lit(start)) & (F.col("ts") < F.lit(end)))
    return sessionize(window, gap).where(F.col("session_date") == F.lit(day))


def exact_sum(column: Column) -> Column:
    """Sum of money without float rounding noise: the same rows give the same bits in any order
    (0.0 when there is nothing to add)."""
    from pyspark.sql import functions as F

    return F.sum(F.coalesce(column.cast("decimal(38,6)"), F.lit(0))).cast("double")
