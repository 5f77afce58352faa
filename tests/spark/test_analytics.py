"""Gold tables from the hand-made story (`tests.analytics_story`), on one local SparkSession over
local files: the hand-worked answers, empty inputs, reruns and backfills, late data. Each test
gets its own lake folder, so gold tables, the ledger and the run log are never shared."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conveyor.analytics import GOLD_TABLES, day_range, funnel_and_top_pages, run_analytics
from conveyor.analytics.runs import last_read
from conveyor.catalog import Catalog, load_catalog
from conveyor.ingest.silver import silver_schema
from conveyor.settings import Settings
from tests.analytics_story import (
    CLICKS,
    D1,
    D2,
    D3,
    LOG_SCHEMA,
    PAGE_STATS,
    SESSIONS,
    answers,
    at,
    expected,
    ledger_row,
    run_log,
    snapshot,
    write_clicks,
    write_story,
)
from tests.catalogs import catalog_variant, stream_named


@pytest.fixture
def story(spark: Any, lake: Settings, tmp_path: Path) -> Catalog:
    return write_story(spark, lake, tmp_path / "catalog")


@pytest.fixture(scope="module")
def computed(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The story with its three days computed, once for the module (a run over three days is
    dozens of Delta commits), and that run's summary."""
    root = tmp_path_factory.mktemp("analytics-computed")
    lake = Settings(hdfs_uri=f"file://{root}")
    catalog = write_story(spark, lake, root / "catalog")
    return root, run_analytics(spark, lake, catalog, day_range(D1, D3))


@pytest.fixture
def computed_story(computed: tuple[Path, Any], tmp_path: Path) -> tuple[Settings, Catalog, Any]:
    """A copy of `computed`'s lake (story, gold tables, run log) in this test's own folder, its
    settings, catalog and the run's summary."""
    root, summary = computed
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    lake = Settings(hdfs_uri=f"file://{tmp_path}")
    return lake, load_catalog(tmp_path / "catalog" / "conveyor.yaml"), summary


def test_hand_made_days_give_the_hand_worked_answers(
    spark: Any, computed_story: tuple[Settings, Catalog, Any]
) -> None:
    lake, _, summary = computed_story  # run_analytics over D1..D3

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
    catalog = catalog_variant(tmp_path / "catalog")
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
    # and silver's kept unknown fields (unknown_fields: keep), last
    assert shape == spark.createDataFrame([], LOG_SCHEMA + ", _unknown STRING").schema


def test_rerun_and_backfill_give_identical_tables(
    spark: Any, computed_story: tuple[Settings, Catalog, Any]
) -> None:
    lake, story, _ = computed_story  # run_analytics over D1..D3
    once = snapshot(spark, lake)

    run_analytics(spark, lake, story, [D2])
    assert snapshot(spark, lake) == once
    for day in (D3, D1, D2):  # a backfill, one day at a time, in any order
        run_analytics(spark, lake, story, [day])
    assert snapshot(spark, lake) == once
    assert sum(len(rows) for rows in once.values()) > 0


def test_late_event_recomputes_only_its_day(
    spark: Any, computed_story: tuple[Settings, Catalog, Any]
) -> None:
    lake, story, _ = computed_story  # run_analytics over D1..D3
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
    spark: Any, computed_story: tuple[Settings, Catalog, Any]
) -> None:
    lake, story, _ = computed_story  # run_analytics over D1..D3

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


def test_a_day_that_fails_part_way_is_logged_with_what_it_wrote(
    spark: Any, lake: Settings, story: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run either completes or leaves the run log saying what it replaced; a failed day does
    not count as computed, so nothing takes it for done."""
    from conveyor.analytics import daily

    def broken(*args: Any) -> Any:
        raise RuntimeError("the funnel broke")

    monkeypatch.setattr(daily, "daily_funnel", broken)
    with pytest.raises(RuntimeError, match="the funnel broke"):
        run_analytics(spark, lake, story, [D1, D2])
    (row,) = run_log(spark, lake)
    assert (row.date, row.status, row.error) == (D1, "failed", "RuntimeError: the funnel broke")
    assert row.written == ["sessions", "daily_page_stats", "daily_users"]
    assert last_read(spark, lake, stream_named(story, "clicks")) == {}

    monkeypatch.undo()
    run_analytics(spark, lake, story, [D1])
    done = [r for r in run_log(spark, lake) if r.status == "done"]
    assert [(r.date, sorted(r.written)) for r in done] == [
        (D1, sorted(t.name for t in GOLD_TABLES))
    ]
    assert answers(spark, lake, D1) == expected(D1)
