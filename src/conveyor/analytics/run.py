"""Compute gold tables for days: the one entry point jobs, the CLI, the DAG and the demo call.

`run_analytics(spark, settings, catalog, days)` computes each requested day (and, with
`include_stale=True`, every computed day that late data has changed since), replacing exactly
those days' partitions, and records each day in the run log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from conveyor.analytics import daily, gold, runs
from conveyor.analytics.sessions import session_window, sessions_on
from conveyor.catalog import Catalog, Layer, StreamSpec, table_uri
from conveyor.errors import ConveyorError
from conveyor.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

CLICK_COLUMNS = ("event_id", "user_id", "event_type", "url", "ts", "revenue", "event_date")


@dataclass
class AnalyticsSummary:
    """What a run computed, one DayRun per day, in the order computed."""

    run_id: str
    days: list[runs.DayRun] = field(default_factory=list)
    empty_inputs: list[str] = field(default_factory=list)  # streams with no silver table yet

    def dates(self, reason: str | None = None) -> list[date]:
        return [d.date for d in self.days if reason is None or d.reason == reason]

    def describe(self) -> str:
        if not self.days:
            return "analytics: nothing to compute"
        parts = [
            f"{d.date} ({d.reason}): {d.click_events} events, {d.sessions} sessions, "
            f"{d.log_lines} log lines{' - EMPTY' if d.empty else ''}"
            for d in self.days
        ]
        text = f"analytics run {self.run_id}: {len(self.days)} day(s)\n  " + "\n  ".join(parts)
        return text + (f"\n  {self.empty_note()}" if self.empty_inputs else "")

    def empty_note(self) -> str:
        """Which inputs were read as empty because they were never ingested."""
        names = ", ".join(self.empty_inputs)
        return f"no data yet (never ingested, read as empty): {names}"


def day_range(first: date, last: date) -> list[date]:
    """Every day from first to last, both included."""
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


class BadDays(ConveyorError):
    """The days asked for are not one day nor a range."""


def requested_days(day: date | None, first: date | None, last: date | None) -> list[date]:
    """The days a `--date D` or a `--from D1 --to D2` request names (the CLI's and the job's
    one reading of them); raises BadDays for any other combination or a range that ends before
    it starts."""
    if day is not None and first is None and last is None:
        return [day]
    if day is None and first is not None and last is not None:
        if last < first:
            raise BadDays(f"--to {last:%Y-%m-%d} is before --from {first:%Y-%m-%d}")
        return day_range(first, last)
    raise BadDays("give either --date YYYY-MM-DD or both --from and --to")


def run_analytics(
    spark: SparkSession,
    settings: Settings,
    catalog: Catalog,
    days: Iterable[date],
    *,
    include_stale: bool = False,
) -> AnalyticsSummary:
    """Compute every gold table for `days` (and, with include_stale, for computed days that late
    data changed). Idempotent per day. A stream never ingested reads as empty (named in the
    summary's `empty_inputs`); raises AnalyticsNotConfigured when the catalog has no click
    stream."""
    streams = gold.AnalyticsStreams.from_catalog(catalog)
    inputs = [s for s in (streams.clicks, streams.logs) if s is not None]
    # looked at once per run: a table that appears meanwhile is read by the next run
    present = frozenset(s.name for s in inputs if gold.has_silver(spark, settings, s))
    empty = [s.name for s in inputs if s.name not in present]
    for name in empty:
        log.warning("stream %s has no silver table yet (never ingested): read as empty", name)
    requested = sorted(set(days))
    plan = [(d, "requested") for d in requested]
    if include_stale:
        stale = runs.stale_days(
            spark,
            settings,
            clicks_stream=streams.clicks.name,
            clicks_silver=table_uri(settings, streams.clicks.table(Layer.SILVER)),
            logs_stream=streams.logs.name if streams.logs else None,
            gold_sessions=gold.SESSIONS.uri(settings),
            session_gap=streams.session_gap,
        )
        plan += [(d, "late_data") for d in stale if d not in requested]
        log.info("late data changed %d computed day(s): %s", len(stale), stale or "none")
    summary = AnalyticsSummary(run_id=uuid.uuid4().hex[:12], empty_inputs=empty)
    for day, reason in plan:
        written: list[str] = []
        try:
            result = compute_day(
                spark,
                settings,
                streams,
                day,
                run_id=summary.run_id,
                reason=reason,
                present=present,
                written=written,
            )
        except Exception as exc:
            # the run log says what the failed day had already replaced
            runs.record_run(
                spark, settings, _failed(summary.run_id, streams, day, reason, written, exc)
            )
            raise
        runs.record_run(spark, settings, result)
        summary.days.append(result)
    log.info("%s", summary.describe())
    return summary


def compute_day(
    spark: SparkSession,
    settings: Settings,
    streams: gold.AnalyticsStreams,
    day: date,
    *,
    run_id: str,
    reason: str,
    present: frozenset[str] | None = None,
    written: list[str] | None = None,
) -> runs.DayRun:
    """Replace `day` in every gold table; returns the run-log row (not yet recorded).
    `present`: the streams whose silver table exists, when the caller already looked;
    `written` gets the name of each gold table once its day is replaced."""
    replaced = written if written is not None else []

    def write(table: gold.GoldTable, rows: DataFrame) -> None:
        gold.write_day(spark, settings, table, day, rows)
        replaced.append(table.name)

    def exists(stream: StreamSpec) -> bool | None:
        return None if present is None else stream.name in present

    read_at = _now()
    clicks = gold.silver(spark, settings, streams.clicks, exists=exists(streams.clicks))
    click_events, sessions = _click_tables(clicks, streams.session_gap, day, write)
    log_lines = _service_errors(
        spark, settings, streams, day, exists(streams.logs) if streams.logs else None, write
    )
    if click_events == 0:
        log.warning(
            "%s: no click events in %s for %s: sessions and page stats are empty, daily users "
            "and funnel hold a zero row",
            day,
            streams.clicks.name,
            day,
        )
    return runs.DayRun(
        run_id=run_id,
        clicks_stream=streams.clicks.name,
        logs_stream=streams.logs.name if streams.logs else None,
        date=day,
        reason=reason,
        read_at=read_at,
        finished_at=_now(),
        click_events=click_events,
        sessions=sessions,
        log_lines=log_lines,
        written=list(replaced),
    )


def _click_tables(
    silver: DataFrame,
    gap: timedelta,
    day: date,
    write: Callable[[gold.GoldTable, DataFrame], None],
) -> tuple[int, int]:
    """Replace `day` in the gold tables computed from clicks (sessions, page stats, users,
    funnel), reading silver once for the days the day's sessions can span; the day's click
    events and sessions."""
    from pyspark.sql import functions as F

    clicks = silver.select(*CLICK_COLUMNS)
    start, end = session_window(day, gap)
    window = gold.between_days(clicks, start.date(), end.date()).persist()
    try:
        day_events = window.where(F.col("event_date") == F.lit(day))
        click_events = day_events.count()
        day_sessions = sessions_on(window, day, gap).persist()
        sessions = day_sessions.count()
        earlier = clicks.where(F.col("event_date") < F.lit(day)).select("user_id")
        write(gold.SESSIONS, day_sessions)
        write(gold.DAILY_PAGE_STATS, daily.daily_page_stats(day_events, day_sessions, day))
        write(gold.DAILY_USERS, daily.daily_users(day_events, earlier, day))
        write(gold.DAILY_FUNNEL, daily.daily_funnel(day_events, day))
        day_sessions.unpersist()
    finally:
        window.unpersist()
    return click_events, sessions


def _failed(
    run_id: str,
    streams: gold.AnalyticsStreams,
    day: date,
    reason: str,
    written: list[str],
    exc: BaseException,
) -> runs.DayRun:
    """The run-log row of a day that failed after replacing `written`."""
    now = _now()
    text = str(exc).strip()
    return runs.DayRun(
        run_id=run_id,
        clicks_stream=streams.clicks.name,
        logs_stream=streams.logs.name if streams.logs else None,
        date=day,
        reason=reason,
        read_at=now,
        finished_at=now,
        click_events=0,
        sessions=0,
        log_lines=0,
        status="failed",
        written=list(written),
        error=f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}",
    )


def _service_errors(
    spark: SparkSession,
    settings: Settings,
    streams: gold.AnalyticsStreams,
    day: date,
    exists: bool | None,
    write: Callable[[gold.GoldTable, DataFrame], None],
) -> int:
    from pyspark.sql import functions as F

    if streams.logs is None:
        log.warning("no log stream in the catalog: %s is not computed", "service_errors_hourly")
        return 0
    lines = gold.silver(spark, settings, streams.logs, exists=exists)
    lines = lines.where(F.col("event_date") == F.lit(day))
    hourly = daily.service_errors_hourly(lines, day).persist()
    try:
        total = int(hourly.agg(F.coalesce(F.sum("lines"), F.lit(0))).first()[0])  # type: ignore[index]
        write(gold.SERVICE_ERRORS_HOURLY, hourly)
    finally:
        hourly.unpersist()
    if total == 0:
        log.warning("%s: no log lines in %s for this day", day, streams.logs.name)
    return total


def _now() -> datetime:
    # naive UTC: the run log's TIMESTAMP columns and the ledger's compare in the UTC session zone
    return datetime.now(UTC).replace(tzinfo=None)


def funnel_and_top_pages(
    spark: SparkSession, settings: Settings, days: Iterable[date], *, top: int = 10
) -> dict[str, list[dict[str, Any]]]:
    """Rows to print: the funnel of each day, and the most viewed pages over the days."""
    from pyspark.sql import functions as F

    wanted = [F.lit(d) for d in sorted(set(days))]
    funnel = _read(spark, gold.DAILY_FUNNEL.uri(settings)).where(F.col("event_date").isin(*wanted))
    pages = (
        _read(spark, gold.DAILY_PAGE_STATS.uri(settings))
        .where(F.col("event_date").isin(*wanted))
        .groupBy("url")
        .agg(*(F.sum(c).alias(c) for c in ("views", "clicks", "entries", "exits")))
        .orderBy(F.desc("views"), "url")
        .limit(top)
    )
    return {
        "funnel": [r.asDict() for r in funnel.orderBy("event_date").collect()],
        "top_pages": [r.asDict() for r in pages.collect()],
    }


def _read(spark: SparkSession, uri: str) -> DataFrame:
    return spark.read.format("delta").load(uri)
