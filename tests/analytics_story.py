"""A hand-made clickstream and application log with the gold tables' answers worked out by
hand (below, per user), and the helpers that write them straight into silver-shaped Delta
tables: shared by the pure-Spark analytics tests (tests/spark) and the DAG test
(tests/integration).

The story, UTC, session gap 30m (a pause of exactly 30m starts a new session):
  D0 = 2026-02-28, D1 = 2026-03-01, D2 = 2026-03-02, D3 = 2026-03-03 (no events at all)
  u1  D1 23:50 view /home, D2 00:10 click /home, D2 00:25 view /product  (crosses midnight: D1)
      D2 10:00 view /home                                                  (a second session, D2)
  u2  D1 09:00 view /home                                                  (a single event)
  u3  D1 12:00 view /product, 12:05 purchase /checkout 50.00               (no add_to_cart)
  u4  D1 14:00 view /home | 14:30 view /product, 14:59:59 click /product   (split by exactly 30m)
  u5  D1 16:00 view /product, 16:02 add_to_cart /product, 16:05 purchase /checkout 19.99
  u6  D2 08:00 view /home, 08:01 add_to_cart /product                      (new on D2)
  u8  D0 23:45 view /home, D1 00:05 click /home                   (a D0 session: not on D1)
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from conveyor.analytics import GOLD_TABLES
from conveyor.analytics.runs import runs_uri
from conveyor.catalog import Catalog, Layer, ledger_uri, table_uri
from conveyor.ledger import LedgerEntry, append_entry
from conveyor.settings import Settings
from tests.catalogs import catalog_variant, stream_named

D0, D1, D2, D3 = date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
CLICK_SCHEMA = """
    event_id STRING, user_id STRING, event_type STRING, url STRING, ts TIMESTAMP,
    session_id STRING, referrer STRING, country STRING, device STRING, revenue DOUBLE,
    event_date DATE, topic STRING, partition INT, offset BIGINT, kafka_timestamp TIMESTAMP,
    ingest_time TIMESTAMP
"""
LOG_SCHEMA = """
    ts TIMESTAMP, level STRING, service STRING, message STRING, trace_id STRING,
    event_date DATE, topic STRING, partition INT, offset BIGINT, kafka_timestamp TIMESTAMP,
    ingest_time TIMESTAMP
"""


def at(day: date, hhmmss: str) -> datetime:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return datetime(day.year, day.month, day.day, h, m, s)


CLICKS: list[tuple[str, date, str, str, str, float | None]] = [
    # user, day, time, event_type, url, revenue
    ("u1", D1, "23:50:00", "page_view", "/home", None),
    ("u1", D2, "00:10:00", "click", "/home", None),
    ("u1", D2, "00:25:00", "page_view", "/product", None),
    ("u1", D2, "10:00:00", "page_view", "/home", None),
    ("u2", D1, "09:00:00", "page_view", "/home", None),
    ("u3", D1, "12:00:00", "page_view", "/product", None),
    ("u3", D1, "12:05:00", "purchase", "/checkout", 50.0),
    ("u4", D1, "14:00:00", "page_view", "/home", None),
    ("u4", D1, "14:30:00", "page_view", "/product", None),
    ("u4", D1, "14:59:59", "click", "/product", None),
    ("u5", D1, "16:00:00", "page_view", "/product", None),
    ("u5", D1, "16:02:00", "add_to_cart", "/product", None),
    ("u5", D1, "16:05:00", "purchase", "/checkout", 19.99),
    ("u6", D2, "08:00:00", "page_view", "/home", None),
    ("u6", D2, "08:01:00", "add_to_cart", "/product", None),
    ("u8", D0, "23:45:00", "page_view", "/home", None),
    ("u8", D1, "00:05:00", "click", "/home", None),
]
LOGS = [  # day, time, level, service
    (D1, "10:15:00", "INFO", "api"),
    (D1, "10:20:00", "ERROR", "api"),
    (D1, "10:59:00", "WARN", "api"),
    (D1, "11:00:00", "ERROR", "api"),
    (D1, "10:30:00", "INFO", "web"),
]

# --- answers worked out by hand from the story above ------------------------------------------

# (user, start, end, duration_s, events, page_views, distinct_pages, entry, exit, converted, revenue)
SESSIONS = {
    D1: {
        (
            "u1",
            at(D1, "23:50:00"),
            at(D2, "00:25:00"),
            2100.0,
            3,
            2,
            2,
            "/home",
            "/product",
            False,
            0.0,
        ),
        ("u2", at(D1, "09:00:00"), at(D1, "09:00:00"), 0.0, 1, 1, 1, "/home", "/home", False, 0.0),
        (
            "u3",
            at(D1, "12:00:00"),
            at(D1, "12:05:00"),
            300.0,
            2,
            1,
            2,
            "/product",
            "/checkout",
            True,
            50.0,
        ),
        ("u4", at(D1, "14:00:00"), at(D1, "14:00:00"), 0.0, 1, 1, 1, "/home", "/home", False, 0.0),
        (
            "u4",
            at(D1, "14:30:00"),
            at(D1, "14:59:59"),
            1799.0,
            2,
            1,
            1,
            "/product",
            "/product",
            False,
            0.0,
        ),
        (
            "u5",
            at(D1, "16:00:00"),
            at(D1, "16:05:00"),
            300.0,
            3,
            1,
            2,
            "/product",
            "/checkout",
            True,
            19.99,
        ),
    },
    D2: {
        ("u1", at(D2, "10:00:00"), at(D2, "10:00:00"), 0.0, 1, 1, 1, "/home", "/home", False, 0.0),
        (
            "u6",
            at(D2, "08:00:00"),
            at(D2, "08:01:00"),
            60.0,
            2,
            1,
            2,
            "/home",
            "/product",
            False,
            0.0,
        ),
    },
    D3: set(),
}
# url -> (views, unique_users, clicks, entries, exits)
PAGE_STATS = {
    D1: {
        "/home": (3, 4, 1, 3, 2),
        "/product": (3, 3, 1, 3, 2),
        "/checkout": (0, 2, 0, 0, 2),
    },
    D2: {"/home": (2, 2, 1, 2, 1), "/product": (1, 2, 0, 0, 1)},
    D3: {},
}
# (active, new, returning)
USERS = {D1: (6, 5, 1), D2: (2, 1, 1), D3: (0, 0, 0)}
# (page_view, add_to_cart, purchase users, view->cart, cart->purchase, view->purchase, purchasers, revenue)
FUNNEL = {
    D1: (5, 1, 1, 0.2, 1.0, 0.2, 2, 69.99),
    D2: (2, 1, 0, 0.5, 0.0, 0.0, 0, 0.0),
    D3: (0, 0, 0, None, None, None, 0, 0.0),
}
# (hour, service) -> (debug, info, warn, error, lines, error_rate)
SERVICE_ERRORS = {
    D1: {
        (at(D1, "10:00:00"), "api"): (0, 1, 1, 1, 3, 1 / 3),
        (at(D1, "11:00:00"), "api"): (0, 0, 0, 1, 1, 1.0),
        (at(D1, "10:00:00"), "web"): (0, 1, 0, 0, 1, 0.0),
    },
    D2: {},
    D3: {},
}


def write_story(spark: Any, lake: Settings, folder: Any) -> Catalog:
    """A catalog variant in `folder` whose click and log silver tables hold the story."""
    catalog = catalog_variant(folder)
    write_clicks(spark, lake, catalog, CLICKS, ingested=datetime(2026, 3, 4))
    write_logs(spark, lake, catalog, LOGS)
    return catalog


def click_rows(
    events: list[tuple[str, date, str, str, str, float | None]], ingested: datetime
) -> list[tuple[Any, ...]]:
    rows = []
    for n, (user, day, hhmmss, kind, url, revenue) in enumerate(events):
        ts = at(day, hhmmss)
        event_id = f"{user}-{day}-{hhmmss}-{kind}"
        fields = (event_id, user, kind, url, ts, None, None, "NL", "desktop", revenue, day)
        rows.append((*fields, "clicks", 0, n, ts, ingested))
    return rows


def write_clicks(
    spark: Any,
    settings: Settings,
    catalog: Catalog,
    events: list[tuple[str, date, str, str, str, float | None]],
    *,
    ingested: datetime,
) -> None:
    stream = catalog.stream(stream_named(catalog, "clicks"))
    frame = spark.createDataFrame(click_rows(events, ingested), CLICK_SCHEMA)
    frame.write.format("delta").mode("append").partitionBy("event_date").save(
        table_uri(settings, stream.table(Layer.SILVER))
    )


def write_logs(
    spark: Any, settings: Settings, catalog: Catalog, lines: list[tuple[date, str, str, str]]
) -> None:
    stream = catalog.stream(stream_named(catalog, "app_logs"))
    rows = [
        (at(day, t), level, service, "msg", None, day, "logs", 0, n, at(day, t), at(D3, "06:00:00"))
        for n, (day, t, level, service) in enumerate(lines)
    ]
    frame = spark.createDataFrame(rows, LOG_SCHEMA)
    frame.write.format("delta").mode("append").partitionBy("event_date").save(
        table_uri(settings, stream.table(Layer.SILVER))
    )


def gold(spark: Any, settings: Settings, name: str) -> Any:
    return spark.read.format("delta").load(table_uri(settings, f"gold/{name}"))


def answers(spark: Any, settings: Settings, day: date) -> dict[str, Any]:
    """What the gold tables hold for `day`, in the shapes of the expected values above."""
    from pyspark.sql import functions as F

    def rows(name: str) -> list[Any]:
        frame = gold(spark, settings, name)
        column = "session_date" if name == "sessions" else "event_date"
        return frame.where(F.col(column) == F.lit(day)).collect()

    return {
        "sessions": {
            (
                r.user_id,
                r.session_start,
                r.session_end,
                r.duration_s,
                r.events,
                r.page_views,
                r.distinct_pages,
                r.entry_url,
                r.exit_url,
                r.converted,
                r.revenue,
            )
            for r in rows("sessions")
        },
        "page_stats": {
            r.url: (r.views, r.unique_users, r.clicks, r.entries, r.exits)
            for r in rows("daily_page_stats")
        },
        "users": [(r.active_users, r.new_users, r.returning_users) for r in rows("daily_users")],
        "funnel": [
            (
                r.page_view_users,
                r.add_to_cart_users,
                r.purchase_users,
                r.view_to_cart_rate,
                r.cart_to_purchase_rate,
                r.view_to_purchase_rate,
                r.purchasers,
                r.revenue,
            )
            for r in rows("daily_funnel")
        ],
        "service_errors": {
            (r.hour, r.service): (
                r.debug_lines,
                r.info_lines,
                r.warn_lines,
                r.error_lines,
                r.lines,
                r.error_rate,
            )
            for r in rows("service_errors_hourly")
        },
    }


def expected(day: date) -> dict[str, Any]:
    return {
        "sessions": SESSIONS[day],
        "page_stats": PAGE_STATS[day],
        "users": [USERS[day]],
        "funnel": [FUNNEL[day]],
        "service_errors": SERVICE_ERRORS[day],
    }


def snapshot(spark: Any, settings: Settings) -> dict[str, list[Any]]:
    """Every gold table's full contents, sorted."""
    return {
        t.name: sorted(tuple(r) for r in gold(spark, settings, t.name).collect())
        for t in GOLD_TABLES
    }


def run_log(spark: Any, settings: Settings) -> list[Any]:
    return spark.read.format("delta").load(runs_uri(settings)).collect()


D3_NOON = at(D3, "12:00:00")


def ledger_row(
    spark: Any,
    settings: Settings,
    catalog: Catalog,
    days: list[date],
    *,
    started: datetime,
    newest: datetime = D3_NOON,
    batch_id: int = 0,
) -> None:
    """The ledger row the ingest job writes for a batch that landed events of `days`."""
    name = stream_named(catalog, "clicks")
    entry = LedgerEntry(
        stream=name,
        kind="batch",
        app_id=f"test-{uuid.uuid4().hex[:6]}",
        batch_id=batch_id,
        started_at=started,
        ended_at=started + timedelta(seconds=1),
        event_dates=days,
        late_dates=days,
        max_event_time=newest,
    )
    append_entry(ledger_uri(settings), entry)
