"""The state of the whole pipeline in one JSON-friendly dict: what the Conveyor page in the
Airflow UI shows (and `conveyor overview --json` prints).

Per stream: lag per partition (Kafka), last batch and its age, rows/s and quarantined records of
the last hour with their top reasons (ledger, quarantine). Per table: Delta version, files,
size, share of small files, last compaction and vacuum. A 24-hour series per stream from the
ledger: rows ingested per second and the backlog Kafka held after each batch, in fixed buckets.
The newest schema changes applied to silver tables (ledger rows of kind `schema_change`).
Everything is read without Spark (`conveyor.lakeview`), so a request costs well under a second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.catalog import Catalog, ledger_uri
from conveyor.ingest.monitor import stream_status
from conveyor.lakeview import read_rows
from conveyor.maintenance.report import table_reports
from conveyor.settings import Settings

SERIES_WINDOW = timedelta(hours=24)
SERIES_BUCKET = timedelta(minutes=15)
CONVEYOR_DAGS = (
    "conveyor_provision_topics",
    "conveyor_ingest",
    "conveyor_maintain_tables",
    "conveyor_clickstream_analytics",
    "conveyor_health",
)


def pipeline_overview(
    settings: Settings, catalog: Catalog, now: datetime | None = None
) -> dict[str, Any]:
    """Streams, tables, 24-hour series and the Conveyor DAG ids, as plain JSON types."""
    now = now or datetime.now(UTC)
    streams = []
    for name in catalog.stream_names:
        status = stream_status(settings, catalog.stream(name), now=now)
        last = status.last_batch_at
        streams.append(
            {
                "stream": name,
                "topic": catalog.stream(name).topic.name,
                "lag": {str(p): n for p, n in sorted(status.lag.items())},
                "total_lag": status.total_lag,
                "last_batch_at": last.isoformat() if last else None,
                "last_batch_age_s": round((now - last).total_seconds(), 1) if last else None,
                "rows_per_second": round(status.rows_per_second, 1),
                "quarantined_last_hour": status.quarantined_last_hour,
                "top_reasons": [{"reason": r, "count": n} for r, n in status.top_reasons[:5]],
            }
        )
    return {
        "generated_at": now.isoformat(),
        "streams": streams,
        "tables": [r.to_dict() for r in table_reports(settings, catalog, catalog.tables())],
        "series": ingest_series(settings, catalog.stream_names, now),
        "schema_changes": schema_changes(settings, catalog.stream_names),
        "bucket_s": int(SERIES_BUCKET.total_seconds()),
        "dags": list(CONVEYOR_DAGS),
    }


def ingest_series(
    settings: Settings, streams: tuple[str, ...], now: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Per stream, SERIES_WINDOW / SERIES_BUCKET buckets (oldest first): `rows_per_s` landed in
    the bucket (by batch end) and `backlog`, the largest lag after a batch in it (null when no
    batch ended there)."""
    start = _floor(now - SERIES_WINDOW)
    count = int((now - start) / SERIES_BUCKET) + 1
    rows = read_rows(ledger_uri(settings), ["stream", "kind", "rows_read", "ended_at", "backlog"])
    series: dict[str, list[dict[str, Any]]] = {}
    bucket_s = SERIES_BUCKET.total_seconds()
    for name in streams:
        landed = [0] * count
        backlog: list[int | None] = [None] * count
        for row in rows:
            if row["stream"] != name or row["kind"] != "batch" or row["ended_at"] < start:
                continue
            slot = min(count - 1, int((row["ended_at"] - start) / SERIES_BUCKET))
            landed[slot] += int(row["rows_read"] or 0)
            if row.get("backlog") is not None:
                backlog[slot] = max(backlog[slot] or 0, int(row["backlog"]))
        series[name] = [
            {
                "start": (start + i * SERIES_BUCKET).isoformat(),
                "rows_per_s": round(landed[i] / bucket_s, 3),
                "backlog": backlog[i],
            }
            for i in range(count)
        ]
    return series


SCHEMA_CHANGES_SHOWN = 20


def schema_changes(settings: Settings, streams: tuple[str, ...]) -> list[dict[str, Any]]:
    """The newest schema changes applied to the streams' tables (ledger rows of kind
    `schema_change`), newest first, at most SCHEMA_CHANGES_SHOWN."""
    rows = read_rows(
        ledger_uri(settings), ["stream", "kind", "ended_at", "silver_version", "schema_change"]
    )
    changes = [
        r
        for r in rows
        if r["kind"] == "schema_change" and r["stream"] in streams and r.get("schema_change")
    ]
    changes.sort(key=lambda r: r["ended_at"], reverse=True)
    return [
        {
            "stream": r["stream"],
            **r["schema_change"],
            "version": r["silver_version"],
            "at": r["ended_at"].isoformat(),
        }
        for r in changes[:SCHEMA_CHANGES_SHOWN]
    ]


def _floor(moment: datetime) -> datetime:
    seconds = int(SERIES_BUCKET.total_seconds())
    return datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, UTC)
