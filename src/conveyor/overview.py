"""The state of the whole pipeline in one JSON-friendly dict: what the Conveyor page in the
Airflow UI shows (and `conveyor overview --json` prints).

Per stream: lag per partition (Kafka), last batch and its age, rows/s and quarantined records of
the last hour with their top reasons (ledger, quarantine). Per table: Delta version, files,
size, share of small files, last compaction and vacuum. A 24-hour series per stream from the
ledger: rows ingested per second and the backlog Kafka held after each batch, in fixed buckets.
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


def _floor(moment: datetime) -> datetime:
    seconds = int(SERIES_BUCKET.total_seconds())
    return datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, UTC)
