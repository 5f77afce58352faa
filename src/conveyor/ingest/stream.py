"""Wire the streaming I/O: read a Kafka topic, land it in Delta on the lake, with a checkpoint.

Transforms live in their own modules as DataFrame -> DataFrame functions; this module is where
triggers, checkpoints and table locations meet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from conveyor.ingest.bronze import read_kafka, to_bronze
from conveyor.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class LandingResult:
    """What one available-now landing run did."""

    topic: str
    table_uri: str
    rows_in_table: int
    batches: int


def land_topic(
    spark: SparkSession,
    settings: Settings,
    topic: str,
    *,
    table: str | None = None,
    available_now: bool = True,
) -> LandingResult:
    """Land every record of topic in the bronze Delta table `<lake>/<table>/bronze`.

    Checkpoints live under the checkpoint root, never inside the table folder. With
    available_now the call returns when the backlog is written; otherwise it blocks.
    """
    name = table or topic
    table_uri = f"{settings.lake_uri}/{name}/bronze"
    checkpoint = f"{settings.checkpoint_uri}/{name}/bronze"
    rows = to_bronze(read_kafka(spark, settings.kafka_servers, topic))
    writer = (
        rows.writeStream.format("delta")
        .option("checkpointLocation", checkpoint)
        .partitionBy("ingest_date")
        .queryName(f"land_{name}")
    )
    writer = (
        writer.trigger(availableNow=True)
        if available_now
        else writer.trigger(processingTime=settings.trigger_interval)
    )
    query = writer.start(table_uri)
    query.awaitTermination()
    batches = len(query.recentProgress)
    count = spark.read.format("delta").load(table_uri).count()
    return LandingResult(topic=topic, table_uri=table_uri, rows_in_table=count, batches=batches)
