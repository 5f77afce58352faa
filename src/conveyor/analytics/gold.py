"""Gold tables: where they live, how a day is read from silver, and how it is written.

Every gold table lives at `<lake>/gold/<name>` and is partitioned by its date column. Writing a
day is `overwrite` with `replaceWhere <date column> = D`: a rerun or a backfill replaces exactly
that day's partition and nothing else, so it is idempotent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from conveyor.catalog import Catalog, Layer, StreamSpec, table_uri
from conveyor.errors import ConveyorError
from conveyor.settings import Settings
from conveyor.spark.frames import local_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

CLICK_FIELDS = frozenset({"event_id", "user_id", "event_type", "url", "ts", "revenue"})
LOG_FIELDS = frozenset({"ts", "level", "service"})


@dataclass(frozen=True)
class GoldTable:
    name: str
    date_column: str

    def uri(self, settings: Settings) -> str:
        return table_uri(settings, f"gold/{self.name}")


SESSIONS = GoldTable("sessions", "session_date")
DAILY_PAGE_STATS = GoldTable("daily_page_stats", "event_date")
DAILY_USERS = GoldTable("daily_users", "event_date")
DAILY_FUNNEL = GoldTable("daily_funnel", "event_date")
SERVICE_ERRORS_HOURLY = GoldTable("service_errors_hourly", "event_date")
GOLD_TABLES = (SESSIONS, DAILY_PAGE_STATS, DAILY_USERS, DAILY_FUNNEL, SERVICE_ERRORS_HOURLY)


class AnalyticsNotConfigured(ConveyorError):
    """The catalog has no stream analytics can read, or its silver table does not exist."""


@dataclass(frozen=True)
class AnalyticsStreams:
    """The click stream (the one with an `analytics:` section) and the optional log stream."""

    clicks: StreamSpec
    logs: StreamSpec | None

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> AnalyticsStreams:
        clicks = [s for s in catalog.streams.values() if s.analytics is not None]
        if len(clicks) != 1 or not set(clicks[0].event_schema.fields) >= CLICK_FIELDS:
            raise AnalyticsNotConfigured(
                f"{catalog.source}: analytics needs exactly one stream with an `analytics:` "
                f"section and the fields {', '.join(sorted(CLICK_FIELDS))}; found "
                f"{[s.name for s in clicks] or 'none'}"
            )
        logs = [s for s in catalog.streams.values() if set(s.event_schema.fields) >= LOG_FIELDS]
        return cls(clicks=clicks[0], logs=logs[0] if logs else None)

    @property
    def session_gap(self) -> timedelta:
        if self.clicks.analytics is None:
            raise AnalyticsNotConfigured(f"stream {self.clicks.name!r} has no `analytics:` section")
        return self.clicks.analytics.session_gap


def has_silver(spark: SparkSession, settings: Settings, stream: StreamSpec) -> bool:
    """Whether the stream's silver table exists (a stream never ingested has none)."""
    from delta.tables import DeltaTable

    return bool(DeltaTable.isDeltaTable(spark, table_uri(settings, stream.table(Layer.SILVER))))


def silver(
    spark: SparkSession, settings: Settings, stream: StreamSpec, *, exists: bool | None = None
) -> DataFrame:
    """The stream's silver table; a stream with no silver table yet (declared, never ingested)
    reads as an empty one of the same shape. `exists`: whether the table exists, when the
    caller already looked (`has_silver`); looked up otherwise."""
    from conveyor.ingest.silver import silver_schema

    if exists is None:
        exists = has_silver(spark, settings, stream)
    if not exists:
        return local_frame(spark, [], silver_schema(stream))
    return spark.read.format("delta").load(table_uri(settings, stream.table(Layer.SILVER)))


def between_days(frame: DataFrame, first: date, last: date) -> DataFrame:
    """Rows whose event_date is in [first, last] (partition pruning on silver)."""
    from pyspark.sql import functions as F

    return frame.where(F.col("event_date").between(F.lit(first), F.lit(last)))


def write_day(
    spark: SparkSession, settings: Settings, table: GoldTable, day: date, rows: DataFrame
) -> None:
    """Replace `day`'s partition of `table` with `rows` (all of which must be of `day`)."""
    (
        rows.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"{table.date_column} = DATE'{day.isoformat()}'")
        .partitionBy(table.date_column)
        .save(table.uri(settings))
    )
