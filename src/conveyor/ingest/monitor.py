"""How a stream is doing: lag from the monitoring consumer group, pace and quality from the ledger
and the quarantine table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from conveyor.catalog import Layer, StreamSpec, ledger_uri, table_uri
from conveyor.ingest.ledger import table_exists
from conveyor.ingest.offsets import kafka_bounds
from conveyor.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass
class StreamStatus:
    """One stream's health at a glance."""

    stream: str
    lag: dict[int, int] = field(default_factory=dict)
    last_batch_at: datetime | None = None
    rows_per_second: float = 0.0
    quarantined_last_hour: int = 0
    top_reasons: list[tuple[str, int]] = field(default_factory=list)

    @property
    def total_lag(self) -> int:
        return sum(self.lag.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_lag": self.total_lag}


def partition_lag(settings: Settings, stream: StreamSpec) -> dict[int, int]:
    """Records in Kafka not yet landed, per partition (from the `conveyor.<stream>` group)."""
    from kafka import KafkaAdminClient

    group = f"conveyor.{stream.name}"
    admin = KafkaAdminClient(**settings.kafka_client_options())
    try:
        committed = admin.list_group_offsets({group: None}).get(group, {})
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
    spark: SparkSession, settings: Settings, stream: StreamSpec, now: datetime | None = None
) -> StreamStatus:
    from pyspark.sql import functions as F

    now = now or datetime.now(UTC)
    report = StreamStatus(stream=stream.name, lag=partition_lag(settings, stream))
    ledger = ledger_uri(settings)
    if table_exists(spark, ledger):
        batches = (
            spark.read.format("delta")
            .load(ledger)
            .where((F.col("stream") == stream.name) & (F.col("kind") == "batch"))
        )
        recent = batches.where(F.col("ended_at") >= F.lit(now - timedelta(hours=1)))
        row = batches.agg(F.max("ended_at").alias("last")).first()
        pace = recent.agg(
            F.sum("rows_read").alias("rows"),
            F.sum(F.unix_millis("ended_at") - F.unix_millis("started_at")).alias("ms"),
        ).first()
        report.last_batch_at = row["last"] if row else None
        if pace and pace["ms"]:
            report.rows_per_second = 1000.0 * pace["rows"] / pace["ms"]
    quarantine = table_uri(settings, stream.table(Layer.QUARANTINE))
    if table_exists(spark, quarantine):
        reasons = (
            spark.read.format("delta")
            .load(quarantine)
            .where(F.col("ingest_time") >= F.lit(now - timedelta(hours=1)))
            .groupBy("reason_code")
            .count()
            .orderBy(F.desc("count"))
            .collect()
        )
        report.top_reasons = [(r["reason_code"], r["count"]) for r in reasons]
        report.quarantined_last_hour = sum(n for _, n in report.top_reasons)
    return report
