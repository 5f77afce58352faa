"""The rules of maintenance, without Spark: which partitions are compacted, how much history
VACUUM keeps, which errors are retried, and how table selections are checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from conveyor.catalog import MaintenancePolicy
from conveyor.maintenance import (
    PartitionStats,
    RetentionRule,
    TableStats,
    UnknownTable,
    VacuumRefused,
    find_table,
    plan_compaction,
    select_tables,
)
from conveyor.maintenance.retention import span, whole_hours
from conveyor.maintenance.vacuum import VacuumOptions
from conveyor.settings import Settings
from conveyor.spark.conflicts import is_conflict
from tests.catalogs import catalog_variant, stream_named

MB = 1024 * 1024
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
POLICY = MaintenancePolicy(small_file_threshold=32 * MB, target_file_size=128 * MB)


def _partition(day: str, files: int, small: int) -> PartitionStats:
    return PartitionStats(
        values=(("event_date", day),), files=files, bytes=files * MB, small_files=small
    )


def _stats(*partitions: PartitionStats) -> TableStats:
    return TableStats("clicks_silver", "hdfs://nn/lake/clicks/silver", 7, 32 * MB, partitions)


def test_only_closed_partitions_over_the_small_file_count_are_compacted() -> None:
    stats = _stats(
        _partition("2026-11-20", files=40, small=30),  # closed, crowded
        _partition("2026-11-21", files=9, small=9),  # closed, under min_small_files (10)
        _partition("2026-11-23", files=12, small=10),  # closed: ended 24h ago, tolerance 2h
        _partition("2026-11-24", files=50, small=50),  # today: still open
    )
    plan = plan_compaction(stats, POLICY, timedelta(hours=2), NOW)
    assert plan.labels == ["event_date=2026-11-20", "event_date=2026-11-23"]
    assert [p.label for p in plan.still_open] == ["event_date=2026-11-24"]
    assert plan.describe() == "2 partition(s) with 40 small file(s) to compact"

    # a day closes only once the late-data tolerance has passed after midnight
    assert not _partition("2026-11-23", 1, 1).is_closed(timedelta(hours=13), NOW)
    assert _partition("2026-11-23", 1, 1).is_closed(timedelta(hours=12), NOW)

    with_open = plan_compaction(stats, POLICY, timedelta(hours=2), NOW, include_open=True)
    assert "event_date=2026-11-24" in with_open.labels
    forced = plan_compaction(stats, POLICY, timedelta(hours=2), NOW, force=True)
    assert "event_date=2026-11-21" in forced.labels


def test_nothing_to_compact_says_why() -> None:
    stats = _stats(_partition("2026-11-24", files=50, small=50))
    plan = plan_compaction(stats, POLICY, timedelta(hours=2), NOW)
    assert plan.partitions == ()
    assert plan.describe() == (
        "no closed partition has 10 or more files below 32 MB; "
        "1 open partition(s) wait until they close"
    )


def test_partitions_without_a_date_never_close_and_predicates_quote_values() -> None:
    odd = PartitionStats(values=(("region", "it's"),), files=20, bytes=1, small_files=20)
    assert odd.day() is None
    assert not odd.is_closed(timedelta(0), NOW)
    assert odd.predicate() == "`region` = 'it\\'s'"
    null = PartitionStats(values=(("event_date", None),), files=1, bytes=1, small_files=1)
    assert null.predicate() == "`event_date` IS NULL"
    assert null.label == "event_date=__HIVE_DEFAULT_PARTITION__"


def test_safe_retention_is_the_largest_term() -> None:
    quiet = RetentionRule(
        "t", timedelta(days=7), timedelta(days=7), timedelta(minutes=5), timedelta(seconds=30)
    )
    assert quiet.safe == timedelta(days=7)
    stalled = RetentionRule(
        "t", timedelta(days=7), timedelta(days=7), timedelta(days=6, hours=20), timedelta(hours=1)
    )
    assert stalled.stream_lag == timedelta(days=6, hours=21)
    assert stalled.safe == timedelta(days=7, hours=21)
    assert "longest stream lag seen in the ledger (6d 21h" in stalled.explain()
    longer = RetentionRule("t", timedelta(days=10), timedelta(days=7), timedelta(0), timedelta(0))
    assert longer.safe == timedelta(days=10)
    # Delta counts whole hours: never round below what is needed
    assert whole_hours(timedelta(days=7, minutes=1)) == 169
    assert whole_hours(timedelta(0)) == 0
    assert span(timedelta(days=8, hours=2, minutes=3)) == "8d 2h"


def test_only_delta_commit_conflicts_are_retried() -> None:
    from delta.exceptions import ConcurrentDeleteDeleteException

    assert is_conflict(ConcurrentDeleteDeleteException("another OPTIMIZE removed the files"))
    assert is_conflict(RuntimeError("[DELTA_CONCURRENT_DELETE_DELETE] This transaction ..."))
    assert not is_conflict(RuntimeError("Connection refused"))


def test_table_selection_and_retention_mistakes_are_refused_with_reasons(tmp_path: Path) -> None:
    catalog = catalog_variant(tmp_path)
    silver = f"{stream_named(catalog, 'clicks')}_silver"
    with pytest.raises(UnknownTable, match=r"no table named 'nope' \(tables: clicks_"):
        find_table(catalog, "nope")
    with pytest.raises(UnknownTable, match="not both"):
        select_tables(catalog, silver, True)
    with pytest.raises(UnknownTable, match="name a table"):
        select_tables(catalog, None, False)
    assert len(select_tables(catalog, None, True)) == 6
    with pytest.raises(UnknownTable, match="--run-id names the run of one table"):
        select_tables(catalog, None, True, "run-1")
    assert select_tables(catalog, silver, False, "run-1")[0].name == silver

    ref = find_table(catalog, silver)
    settings = Settings()
    with pytest.raises(VacuumRefused) as refused:
        VacuumOptions(retention=timedelta(hours=1)).refuse_unsafe(settings, [ref])
    message = str(refused.value)
    assert message.startswith(f"refused to vacuum {silver} keeping only 1h of history")
    assert "catalog's vacuum_retention (7d) and Delta's minimum (7d)" in message
    assert "Keep at least 168h" in message
    VacuumOptions(retention=timedelta(days=8)).refuse_unsafe(settings, [ref])
    to_zero = VacuumOptions(retention=timedelta(0), allow_test_floor=True)
    with pytest.raises(VacuumRefused, match="CONVEYOR_TEST_ONLY_MIN_VACUUM_RETENTION"):
        to_zero.refuse_unsafe(settings, [ref])
    testing = Settings(test_only_min_vacuum_retention="0s")
    to_zero.refuse_unsafe(testing, [ref])
    VacuumOptions().refuse_unsafe(settings, [ref])  # the safe retention is never refused


def test_vacuum_runs_daily_in_the_chosen_hour_now_or_never() -> None:
    from conveyor.provider.operators.maintenance import vacuum_due

    midnight, noon = NOW.replace(hour=0, minute=5), NOW
    assert vacuum_due("daily", midnight) and not vacuum_due("daily", noon)
    assert vacuum_due("daily", noon, daily_at_hour=12)
    assert vacuum_due(" Now ", noon) and not vacuum_due("never", midnight)
    with pytest.raises(ValueError, match="when must be one of daily, now, never, got 'weekly'"):
        vacuum_due("weekly", noon)
