"""Batch analytics over silver: gold tables (sessions, daily page stats, daily users, daily
funnel, hourly service errors) that are idempotent per day and recomputed when late data lands.

`run_analytics` is the entry point; `sessions` and `daily` hold the pure transforms; `gold`
where tables live and how a day is written; `runs` the run log and which days went stale.
"""

from __future__ import annotations

from conveyor.analytics.gold import GOLD_TABLES, AnalyticsNotConfigured, GoldTable
from conveyor.analytics.run import (
    AnalyticsSummary,
    BadDays,
    day_range,
    funnel_and_top_pages,
    requested_days,
    run_analytics,
)

__all__ = [
    "GOLD_TABLES",
    "AnalyticsNotConfigured",
    "AnalyticsSummary",
    "BadDays",
    "GoldTable",
    "day_range",
    "funnel_and_top_pages",
    "requested_days",
    "run_analytics",
]
