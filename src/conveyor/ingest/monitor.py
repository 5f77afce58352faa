"""How a stream is doing: lag from the monitoring consumer group, pace and quality from the ledger
and the quarantine table."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.catalog import Layer, StreamSpec, ledger_uri, table_uri
from conveyor.delta_rs import read_rows
from conveyor.kafka.clients import open_admin
from conveyor.kafka.offsets import kafka_bounds
from conveyor.kafka.retry import while_retriable
from conveyor.settings import Settings

CHANGE_KINDS = ("inserts", "updates", "deletes", "noops")
"""The change counts status and the Conveyor page show for a cdc stream."""


@dataclass
class StreamStatus:
    """One stream's health at a glance."""

    stream: str
    lag: dict[int, int] = field(default_factory=dict)
    last_batch_at: datetime | None = None
    rows_per_second: float = 0.0
    quarantined_last_hour: int = 0
    top_reasons: list[tuple[str, int]] = field(default_factory=list)
    changes_last_hour: dict[str, int] | None = None
    """cdc streams: change records of the last hour by kind (inserts, updates, deletes, noops
    from the ledger's `cdc` counts); None for append streams."""

    @property
    def total_lag(self) -> int:
        return sum(self.lag.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_lag": self.total_lag}


def partition_lag(settings: Settings, stream: StreamSpec) -> dict[int, int]:
    """Records in Kafka not yet landed, per partition (from the `conveyor.<stream>` group)."""
    group = stream.monitoring_group
    admin = open_admin(settings, "ingest", check=False)
    try:
        committed = while_retriable(lambda: admin.list_group_offsets({group: None})).get(group, {})
    finally:
        admin.close()
    done = {
        tp.partition: meta.offset for tp, meta in committed.items() if tp.topic == stream.topic.name
    }
    return {
        p: max(0, end - done.get(p, start))
        for p, (start, end) in kafka_bounds(settings, stream.topic.name).items()
    }


def stream_status(
    settings: Settings, stream: StreamSpec, now: datetime | None = None
) -> StreamStatus:
    """Lag from Kafka, last batch and rows/s over the last hour from the ledger, quarantined
    records of the last hour by reason. Reads the tables without Spark."""
    now = now or datetime.now(UTC)
    hour_ago = now - timedelta(hours=1)
    report = StreamStatus(stream=stream.name, lag=partition_lag(settings, stream))
    batches = [
        b
        for b in read_rows(
            ledger_uri(settings),
            ["kind", "rows_read", "started_at", "ended_at", "cdc"],
            partitions=[("stream", "=", stream.name)],
        )
        if b["kind"] == "batch"
    ]
    report.last_batch_at = max((b["ended_at"] for b in batches), default=None)
    recent = [b for b in batches if b["ended_at"] >= hour_ago]
    busy_s = sum((b["ended_at"] - b["started_at"]).total_seconds() for b in recent)
    if busy_s > 0:
        report.rows_per_second = sum(b["rows_read"] for b in recent) / busy_s
    reasons = Counter(
        r["reason_code"]
        for r in read_rows(
            table_uri(settings, stream.table(Layer.QUARANTINE)),
            ["reason_code", "ingest_time"],
            partitions=[("ingest_date", ">=", hour_ago.date())],
        )
        if r["ingest_time"] >= hour_ago
    )
    if stream.cdc is not None:
        report.changes_last_hour = {
            kind: sum(int((b.get("cdc") or {}).get(kind) or 0) for b in recent)
            for kind in CHANGE_KINDS
        }
    report.top_reasons = reasons.most_common()
    report.quarantined_last_hour = sum(reasons.values())
    return report
