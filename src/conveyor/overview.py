"""The state of the whole pipeline in one JSON-friendly dict: what the Conveyor page in the
Airflow UI shows (and `conveyor overview --json` prints).

Per stream: lag per partition (Kafka), last batch and its age, rows/s and quarantined records of
the last hour with their top reasons (ledger, quarantine). Per table: Delta version, files,
size, share of small files, last compaction and vacuum. A 24-hour series per stream from the
ledger: rows ingested per second and the backlog Kafka held after each batch, in fixed buckets.
The newest schema changes applied to silver tables (ledger rows of kind `schema_change`). A
quarantine panel per stream: records quarantined in the last 24 hours and not replayed, counted
by reason, with the newest few of each (raw value truncated; the page shows it as text).
Everything is read without Spark (`conveyor.delta_rs`), so a request costs well under a second.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.catalog import Catalog, Layer, ledger_uri, table_uri
from conveyor.delta_rs import read_rows
from conveyor.ingest.monitor import stream_status
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
    "conveyor_replay",
    "conveyor_rebuild",
)
REPLAY_DAG = "conveyor_replay"


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
                "kind": catalog.stream(name).kind,
                "changes_last_hour": status.changes_last_hour,
            }
        )
    return {
        "generated_at": now.isoformat(),
        "streams": streams,
        "tables": [r.to_dict() for r in table_reports(settings, catalog, catalog.tables())],
        "series": ingest_series(settings, catalog.stream_names, now),
        "schema_changes": schema_changes(settings, catalog.stream_names),
        "quarantine": [quarantine_panel(settings, catalog, n, now) for n in catalog.stream_names],
        "replay_dag": REPLAY_DAG,
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


QUARANTINE_WINDOW = timedelta(hours=24)
SAMPLES_PER_REASON = 3
SAMPLE_CHARS = 200


def quarantine_panel(
    settings: Settings, catalog: Catalog, name: str, now: datetime
) -> dict[str, Any]:
    """Stream `name`'s records quarantined in the last QUARANTINE_WINDOW and not replayed:
    per reason (most first) the count and the SAMPLES_PER_REASON newest records (raw value
    decoded as UTF-8, undecodable bytes replaced, cut at SAMPLE_CHARS; Kafka coordinates;
    reason text)."""
    since = now - QUARANTINE_WINDOW
    rows = [
        r
        for r in read_rows(
            table_uri(settings, catalog.stream(name).table(Layer.QUARANTINE)),
            [
                "value",
                "topic",
                "partition",
                "offset",
                "reason_code",
                "reason",
                "ingest_time",
                "replay_outcome",
            ],
            partitions=[("ingest_date", ">=", since.date())],
        )
        if r["ingest_time"] >= since and r.get("replay_outcome") is None
    ]
    by_reason: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_reason.setdefault(row["reason_code"], []).append(row)
    reasons = []
    for code, found in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        found.sort(key=lambda r: (r["ingest_time"], r["partition"], r["offset"]), reverse=True)
        reasons.append(
            {
                "reason": code,
                "count": len(found),
                "samples": [_sample(r) for r in found[:SAMPLES_PER_REASON]],
            }
        )
    return {"stream": name, "since": since.isoformat(), "reasons": reasons}


def _sample(row: dict[str, Any]) -> dict[str, Any]:
    raw: bytes | None = row["value"]
    text = raw.decode("utf-8", errors="replace") if raw is not None else None
    cut = text is not None and len(text) > SAMPLE_CHARS
    return {
        "value": text[:SAMPLE_CHARS] + "…" if cut and text else text,
        "truncated": cut,
        "topic": row["topic"],
        "partition": row["partition"],
        "offset": row["offset"],
        "reason": row["reason"],
        "at": row["ingest_time"].isoformat(),
    }


def _floor(moment: datetime) -> datetime:
    seconds = int(SERIES_BUCKET.total_seconds())
    return datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, UTC)
