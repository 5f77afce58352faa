"""Daily gold tables from one day's events: pure `DataFrame -> DataFrame` functions, no I/O.

Every daily function returns exactly one row per day for tables whose grain is the day
(`daily_users`, `daily_funnel`), zeros included, so a day without events is visibly "computed,
empty" rather than missing.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from conveyor.analytics.sessions import exact_sum

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

LOG_LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")


def daily_page_stats(day_events: DataFrame, day_sessions: DataFrame, day: date) -> DataFrame:
    """Per url: views (page_view events), unique users (any event), clicks (click events), and
    entries / exits (sessions starting on `day` that entered / left on that url)."""
    from pyspark.sql import functions as F

    by_url = day_events.groupBy("url").agg(
        F.sum(F.when(F.col("event_type") == "page_view", 1).otherwise(0)).alias("views"),
        F.count_distinct("user_id").alias("unique_users"),
        F.sum(F.when(F.col("event_type") == "click", 1).otherwise(0)).alias("clicks"),
    )
    entries = day_sessions.groupBy(F.col("entry_url").alias("url")).agg(
        F.count(F.lit(1)).alias("entries")
    )
    exits = day_sessions.groupBy(F.col("exit_url").alias("url")).agg(
        F.count(F.lit(1)).alias("exits")
    )
    joined = by_url.join(entries, "url", "full_outer").join(exits, "url", "full_outer")
    return joined.select(
        F.lit(day).alias("event_date"),
        "url",
        *(
            F.coalesce(F.col(c), F.lit(0)).cast("bigint").alias(c)
            for c in ("views", "unique_users", "clicks", "entries", "exits")
        ),
    )


def daily_users(day_events: DataFrame, earlier_users: DataFrame, day: date) -> DataFrame:
    """Active users on `day`, new ones (no event on any earlier day) and returning ones.
    `earlier_users` holds the user_id of every event before `day` (duplicates allowed)."""
    from pyspark.sql import functions as F

    active = day_events.select("user_id").distinct()
    seen = earlier_users.select("user_id").distinct().withColumn("seen_before", F.lit(True))
    flagged = active.join(seen, "user_id", "left")
    counts = flagged.agg(
        F.count(F.lit(1)).alias("active_users"),
        F.count(F.when(F.col("seen_before").isNull(), 1)).alias("new_users"),
        F.count(F.when(F.col("seen_before"), 1)).alias("returning_users"),
    )
    return counts.select(F.lit(day).alias("event_date"), "*")


def daily_funnel(day_events: DataFrame, day: date) -> DataFrame:
    """A closed, same-day funnel: users who viewed a page; of those, who added to cart; of
    those, who purchased. Rates are step / previous step (null when the previous step is 0).
    `purchasers` and `revenue` count every purchase, with or without the earlier steps."""
    from pyspark.sql import functions as F

    per_user = day_events.groupBy("user_id").agg(
        *(
            F.max(F.col("event_type") == step).alias(step)
            for step in ("page_view", "add_to_cart", "purchase")
        ),
        exact_sum(F.when(F.col("event_type") == "purchase", F.col("revenue"))).alias("revenue"),
    )
    viewed = F.col("page_view")
    carted = viewed & F.col("add_to_cart")
    bought = carted & F.col("purchase")
    totals = per_user.agg(
        _count_true(viewed).alias("page_view_users"),
        _count_true(carted).alias("add_to_cart_users"),
        _count_true(bought).alias("purchase_users"),
        _count_true(F.col("purchase")).alias("purchasers"),
        F.coalesce(exact_sum(F.col("revenue")), F.lit(0.0)).alias("revenue"),
    )
    return totals.select(
        F.lit(day).alias("event_date"),
        "page_view_users",
        "add_to_cart_users",
        "purchase_users",
        _rate("add_to_cart_users", "page_view_users").alias("view_to_cart_rate"),
        _rate("purchase_users", "add_to_cart_users").alias("cart_to_purchase_rate"),
        _rate("purchase_users", "page_view_users").alias("view_to_purchase_rate"),
        "purchasers",
        "revenue",
    )


def service_errors_hourly(day_lines: DataFrame, day: date) -> DataFrame:
    """Per hour (UTC, start of the hour) and service: lines per level, all lines, and the error
    rate (ERROR lines / all lines)."""
    from pyspark.sql import functions as F

    counts = day_lines.groupBy(F.date_trunc("hour", "ts").alias("hour"), "service").agg(
        *(
            F.count(F.when(F.col("level") == level, 1)).alias(f"{level.lower()}_lines")
            for level in LOG_LEVELS
        ),
        F.count(F.lit(1)).alias("lines"),
    )
    return counts.select(
        F.lit(day).alias("event_date"),
        "hour",
        "service",
        *(f"{level.lower()}_lines" for level in LOG_LEVELS),
        "lines",
        (F.col("error_lines") / F.col("lines")).alias("error_rate"),
    )


def _count_true(condition: Column) -> Column:
    from pyspark.sql import functions as F

    return F.count(F.when(condition, 1))


def _rate(numerator: str, denominator: str) -> Column:
    from pyspark.sql import functions as F

    return F.when(F.col(denominator) > 0, F.col(numerator) / F.col(denominator))
