"""Gold tables from a hand-made clickstream with answers worked out by hand (below, per user),
written straight into silver-shaped Delta tables on the test stack's HDFS.

Each test gets its own lake folder (CONVEYOR_LAKE_PATH), so gold tables, the ledger and the
analytics run log are never shared between tests.

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

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor import connections
from conveyor.analytics import GOLD_TABLES, day_range, funnel_and_top_pages, run_analytics
from conveyor.analytics.runs import runs_uri
from conveyor.catalog import Catalog, Layer, ledger_uri, table_uri
from conveyor.ingest.batch import silver_schema
from conveyor.ingest.ledger import LedgerEntry, append_entry
from conveyor.settings import Settings
from conveyor.stack.process import wait_until
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


@pytest.fixture
def lake(stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose lake is a fresh folder of the test stack's HDFS."""
    path = f"/lake-tests/analytics-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("CONVEYOR_LAKE_PATH", path)
    return Settings()


@pytest.fixture
def story(spark: Any, lake: Settings, tmp_path: Path) -> Iterator[Catalog]:
    catalog = catalog_variant(tmp_path)
    write_clicks(spark, lake, catalog, CLICKS, ingested=datetime(2026, 3, 4))
    write_logs(spark, lake, catalog, LOGS)
    yield catalog


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


# --- tests -------------------------------------------------------------------------------------


def test_hand_made_days_give_the_hand_worked_answers(
    spark: Any, lake: Settings, story: Catalog
) -> None:
    summary = run_analytics(spark, lake, story, day_range(D1, D3))

    assert summary.dates() == [D1, D2, D3]
    for day in (D1, D2, D3):
        assert answers(spark, lake, day) == expected(day), day
    log = {r.date: r for r in run_log(spark, lake)}
    assert {d: (r.click_events, r.sessions, r.empty) for d, r in log.items()} == {
        D1: (11, 6, False),
        D2: (5, 2, False),
        D3: (0, 0, True),  # computed, empty: distinguishable from a day never computed
    }
    printed = funnel_and_top_pages(spark, lake, [D1, D2], top=2)
    assert [r["event_date"] for r in printed["funnel"]] == [D1, D2]
    assert [(r["url"], r["views"]) for r in printed["top_pages"]] == [("/home", 5), ("/product", 4)]


def test_a_stream_never_ingested_reads_as_empty_and_is_named(
    spark: Any, lake: Settings, tmp_path: Path
) -> None:
    """A declared stream with no data yet (its silver table was never written) is an empty
    input: the day is computed from the others and the run says which input was empty."""
    catalog = catalog_variant(tmp_path)
    write_clicks(spark, lake, catalog, CLICKS, ingested=datetime(2026, 3, 4))  # no logs at all
    logs = stream_named(catalog, "app_logs")

    summary = run_analytics(spark, lake, catalog, [D1])

    assert summary.empty_inputs == [logs]
    assert f"never ingested, read as empty): {logs}" in summary.describe()
    got, want = answers(spark, lake, D1), expected(D1)
    assert got["service_errors"] == {}
    assert {k: v for k, v in got.items() if k != "service_errors"} == {
        k: v for k, v in want.items() if k != "service_errors"
    }
    (row,) = run_log(spark, lake)
    assert (row.click_events, row.sessions, row.log_lines) == (11, 6, 0)
    # the empty stand-in has the shape silver would have
    shape = spark.createDataFrame([], silver_schema(catalog.stream(logs))).schema
    assert shape == spark.createDataFrame([], LOG_SCHEMA).schema


def test_rerun_and_backfill_give_identical_tables(
    spark: Any, lake: Settings, story: Catalog
) -> None:
    run_analytics(spark, lake, story, day_range(D1, D3))
    once = snapshot(spark, lake)

    run_analytics(spark, lake, story, [D2])
    assert snapshot(spark, lake) == once
    for day in (D3, D1, D2):  # a backfill, one day at a time, in any order
        run_analytics(spark, lake, story, [day])
    assert snapshot(spark, lake) == once
    assert sum(len(rows) for rows in once.values()) > 0


def test_late_event_recomputes_only_its_day(spark: Any, lake: Settings, story: Catalog) -> None:
    run_analytics(spark, lake, story, day_range(D1, D3))
    before = {day: answers(spark, lake, day) for day in (D1, D2, D3)}

    # u2 comes back ten minutes later, on D1: it lands after D1 was computed, with a ledger row
    landed = datetime.now(UTC).replace(tzinfo=None)
    late = [("u2", D1, "09:10:00", "add_to_cart", "/product", None)]
    write_clicks(spark, lake, story, late, ingested=landed)
    ledger_row(spark, lake, story, [D1], started=landed)

    summary = run_analytics(spark, lake, story, [], include_stale=True)

    assert [(d.date, d.reason) for d in summary.days] == [(D1, "late_data")]
    latest = [r for r in run_log(spark, lake) if r.run_id == summary.run_id]
    assert [(r.date, r.reason) for r in latest] == [(D1, "late_data")]
    now = answers(spark, lake, D1)
    want = expected(D1)
    want["sessions"] = (SESSIONS[D1] - {s for s in SESSIONS[D1] if s[0] == "u2"}) | {
        (
            "u2",
            at(D1, "09:00:00"),
            at(D1, "09:10:00"),
            600.0,
            2,
            1,
            2,
            "/home",
            "/product",
            False,
            0.0,
        )
    }
    want["page_stats"] = {**PAGE_STATS[D1], "/home": (3, 4, 1, 3, 1), "/product": (3, 4, 1, 3, 3)}
    want["funnel"] = [(5, 2, 1, 0.4, 0.5, 0.2, 2, 69.99)]
    assert now == want
    assert {day: answers(spark, lake, day) for day in (D2, D3)} == {
        D2: before[D2],
        D3: before[D3],
    }
    # nothing new since: the next run recomputes nothing but what it is asked for
    again = run_analytics(spark, lake, story, [D3], include_stale=True)
    assert [(d.date, d.reason) for d in again.days] == [(D3, "requested")]


def test_late_event_after_midnight_also_recomputes_the_session_day_before(
    spark: Any, lake: Settings, story: Catalog
) -> None:
    run_analytics(spark, lake, story, day_range(D1, D3))

    # u1's D1 session ended D2 00:25; an event at 00:50 (< 30m later) extends it
    landed = datetime.now(UTC).replace(tzinfo=None)
    late = [("u1", D2, "00:50:00", "page_view", "/checkout", None)]
    write_clicks(spark, lake, story, late, ingested=landed)
    ledger_row(spark, lake, story, [D2], started=landed)

    summary = run_analytics(spark, lake, story, [], include_stale=True)

    assert sorted((d.date, d.reason) for d in summary.days) == [
        (D1, "late_data"),
        (D2, "late_data"),
    ]
    u1 = {s for s in answers(spark, lake, D1)["sessions"] if s[0] == "u1"}
    assert u1 == {
        (
            "u1",
            at(D1, "23:50:00"),
            at(D2, "00:50:00"),
            3600.0,
            4,
            3,
            3,
            "/home",
            "/checkout",
            False,
            0.0,
        )
    }


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


def test_dag_waits_for_the_watermark_and_computes_the_day(
    spark: Any, lake: Settings, story: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    import conveyor_plugin.triggers.watermark as triggers
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import REPO

    # at first the click stream has landed events up to D2 01:00 only: its watermark (minus the
    # 2h tolerance) is short of the end of D1 plus the session gap, so the sensor defers
    ledger_row(spark, lake, story, [D1], started=datetime(2026, 3, 2), newest=at(D2, "01:00:00"))
    monkeypatch.setenv("CONVEYOR_CATALOG", str(story.source))
    monkeypatch.setenv("CONVEYOR_SENSOR_POKE_INTERVAL_S", "1")
    # the sensor, its trigger and the Spark job find this test's lake through the connection
    lake_connection = {
        "conn_type": "hdfs",
        "host": lake.fs_uri,
        "extra": {"lake_path": lake.lake_path, "checkpoint_path": lake.checkpoint_path},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{connections.LAKE.upper()}", json.dumps(lake_connection))
    monkeypatch.delenv("CONVEYOR_LAKE_PATH")  # so only the connection can say where it is
    looks: list[datetime | None] = []
    real = triggers.watermark_of

    def counted(
        stream: str, settings: Settings, catalog_path: str | None = None
    ) -> datetime | None:
        looks.append(real(stream, settings, catalog_path))
        return looks[-1]

    monkeypatch.setattr(triggers, "watermark_of", counted)
    monkeypatch.setattr("conveyor_plugin.sensors.watermark.watermark_of", counted)

    def stream_moves_on() -> None:
        # after the sensor looked and its trigger looked again, events up to D3 12:00 land
        wait_until(lambda: len(looks) >= 2, 120, what="the sensor and its trigger to look")
        ledger_row(spark, lake, story, [D1, D2], started=datetime(2026, 3, 4), batch_id=1)

    helper = threading.Thread(target=stream_moves_on)
    helper.start()

    bag = DagBag(dag_folder=str(REPO / "dags" / "conveyor_clickstream_analytics.py"))
    assert bag.import_errors == {}
    dag = bag.get_dag("conveyor_clickstream_analytics")
    (compute,) = [t for t in dag.tasks if t.task_id == "compute_gold_tables"]
    assert {a.uri.rsplit("/", 1)[-1] for a in compute.outlets} == {t.name for t in GOLD_TABLES}

    # a run at D2 00:00 covers the interval that just ended: D1
    run = dag.test(logical_date=datetime(2026, 3, 2, tzinfo=UTC))
    helper.join(timeout=130)
    assert looks[0] is not None and looks[0] < datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    assert looks[-1] is not None and looks[-1] >= datetime(2026, 3, 2, 0, 30, tzinfo=UTC)

    assert run.state == "success"
    assert {ti.task_id: ti.state for ti in run.get_task_instances()} == {
        "wait_for_watermark": "success",
        "compute_gold_tables": "success",
    }
    assert [(r.date, r.reason) for r in run_log(spark, lake)] == [(D1, "requested")]
    assert answers(spark, lake, D1) == expected(D1)
