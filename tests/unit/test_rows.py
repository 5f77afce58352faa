"""The schemas of Conveyor's own tables, derived from their row dataclasses, are exactly the
columns and types the tables were created with (written out by hand below, as they were before
they were derived), so existing ledgers and logs keep accepting appends."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

import pytest

from conveyor.analytics.runs import RUNS_SCHEMA
from conveyor.ledger import LEDGER_SCHEMA, LedgerEntry, arrow_schema
from conveyor.maintenance.log import LOG_SCHEMA
from conveyor.rows import ddl, spark_fields, sql_type

LEDGER_BEFORE = """
    stream STRING, kind STRING, app_id STRING, batch_id BIGINT,
    offsets ARRAY<STRUCT<topic: STRING, partition: INT, start_offset: BIGINT, end_offset: BIGINT>>,
    gaps ARRAY<STRUCT<topic: STRING, partition: INT, from_offset: BIGINT, to_offset: BIGINT>>,
    rows_read BIGINT, bronze_rows BIGINT, silver_rows BIGINT, quarantined BIGINT,
    duplicates_dropped BIGINT, bronze_version BIGINT, silver_version BIGINT,
    quarantine_version BIGINT, event_dates ARRAY<DATE>, late_dates ARRAY<DATE>,
    max_event_time TIMESTAMP, started_at TIMESTAMP, ended_at TIMESTAMP, backlog BIGINT,
    parse_ms BIGINT, dedup_ms BIGINT, bronze_ms BIGINT, silver_ms BIGINT, quarantine_ms BIGINT,
    monitor_ms BIGINT, lock_ms BIGINT,
    partition_event_times ARRAY<STRUCT<topic: STRING, partition: INT, max_event_time: TIMESTAMP>>,
    schema_change STRUCT<table: STRING, field: STRING, change: STRING, old_type: STRING,
        new_type: STRING>,
    rework STRUCT<run: STRING, reasons: ARRAY<STRING>, since: TIMESTAMP, until: TIMESTAMP,
        from_date: DATE, to_date: DATE, still_failing: BIGINT, already_landed: BIGINT,
        silver_before: BIGINT, quarantined_before: BIGINT>,
    markers_ms BIGINT, history_ms BIGINT,
    cdc STRUCT<inserts: BIGINT, updates: BIGINT, noops: BIGINT, deletes: BIGINT,
        tombstones: BIGINT, keys_changed: BIGINT, history_rows: BIGINT>
"""  # the last ones (from lock_ms on) added since: appends merge them into an existing ledger
LOG_BEFORE = """
    run_id STRING, table STRING, stream STRING, layer STRING, operation STRING, status STRING,
    partitions ARRAY<STRING>, files_before BIGINT, files_after BIGINT, bytes_before BIGINT,
    bytes_after BIGINT, table_files_before BIGINT, table_files_after BIGINT,
    version_before BIGINT, version_after BIGINT, retention_hours DOUBLE, attempts INT,
    started_at TIMESTAMP, ended_at TIMESTAMP, duration_s DOUBLE, message STRING
"""
RUNS_BEFORE = """
    run_id STRING, clicks_stream STRING, logs_stream STRING, date DATE, reason STRING,
    read_at TIMESTAMP, finished_at TIMESTAMP, click_events BIGINT, sessions BIGINT,
    log_lines BIGINT, empty BOOLEAN,
    status STRING, written ARRAY<STRING>, error STRING
"""  # the last three added since: record_run merges them into an existing log


def columns(schema: str) -> dict[str, str]:
    """name -> type of a DDL string (top-level commas only)."""
    parts, depth, current = [], 0, ""
    for char in schema.strip():
        depth += {"<": 1, ">": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return {
        name: re.sub(r"\s+", " ", kind.strip())
        for name, kind in (p.strip().split(" ", 1) for p in parts)
    }


@pytest.mark.parametrize(
    ("derived", "before"),
    [(LEDGER_SCHEMA, LEDGER_BEFORE), (LOG_SCHEMA, LOG_BEFORE), (RUNS_SCHEMA, RUNS_BEFORE)],
    ids=["ledger", "maintenance log", "analytics runs"],
)
def test_derived_schema_is_the_tables_schema(derived: str, before: str) -> None:
    assert columns(derived) == columns(before)


def test_every_ledger_row_field_is_a_column() -> None:
    row = LedgerEntry(
        stream="s",
        kind="batch",
        app_id="a",
        batch_id=0,
        started_at=datetime(2026, 1, 1),
        ended_at=datetime(2026, 1, 1),
    ).as_row()
    assert set(row) == set(columns(LEDGER_SCHEMA)) == set(arrow_schema().names)


@dataclass
class Inner:
    day: date


@dataclass
class Row:
    names: list[str]
    inner: Inner | None
    ratio: float
    flag: bool


def test_types_map_and_unknown_ones_are_refused() -> None:
    assert ddl(spark_fields(Row)) == (
        "names ARRAY<STRING>, inner STRUCT<day: DATE>, ratio DOUBLE, flag BOOLEAN"
    )
    with pytest.raises(TypeError, match="no Spark type"):
        sql_type(dict[str, int])
    with pytest.raises(TypeError, match="union"):
        sql_type(int | str)
