"""The tables `conveyor analytics` and the demo print: days computed, the funnel, top pages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from conveyor.analytics.run import AnalyticsSummary


def days_table(summary: AnalyticsSummary) -> Table:
    """One row per day computed: why, click events (or 'empty'), sessions, log lines."""
    table = Table(title=f"analytics run {summary.run_id}")
    for column in ("day", "why", "click events", "sessions", "log lines"):
        table.add_column(column, justify="right")
    for day in summary.days:
        events = f"{day.click_events} (empty)" if day.empty else str(day.click_events)
        table.add_row(str(day.date), day.reason, events, str(day.sessions), str(day.log_lines))
    return table


def funnel_table(rows: Sequence[dict[str, Any]]) -> Table:
    """Users at each funnel step per day, the step-to-step conversion, and revenue."""
    table = Table(title="funnel (users)")
    for column in ("day", "page_view", "add_to_cart", "purchase", "view->cart", "cart->buy"):
        table.add_column(column, justify="right")
    table.add_column("revenue", justify="right")
    for row in rows:
        table.add_row(
            str(row["event_date"]),
            str(row["page_view_users"]),
            str(row["add_to_cart_users"]),
            str(row["purchase_users"]),
            _share(row["view_to_cart_rate"]),
            _share(row["cart_to_purchase_rate"]),
            f"{row['revenue']:.2f}",
        )
    return table


def top_pages_table(rows: Sequence[dict[str, Any]]) -> Table:
    """The most viewed pages over the days: views, clicks, entries, exits."""
    table = Table(title="top pages")
    table.add_column("url")
    for column in ("views", "clicks", "entries", "exits"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(row["url"], *(str(row[c]) for c in ("views", "clicks", "entries", "exits")))
    return table


def _share(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"
