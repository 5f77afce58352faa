"""Bronze: every Kafka record as received, with its Kafka coordinates and the ingest time."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


BRONZE_COLUMNS = (
    "key",
    "value",
    "headers",
    "topic",
    "partition",
    "offset",
    "kafka_timestamp",
    "ingest_time",
    "ingest_date",
)


def to_bronze(kafka_rows: DataFrame) -> DataFrame:
    """Kafka source rows -> bronze rows (partitioned by ingest_date). Pure: no I/O."""
    from pyspark.sql import functions as F

    return kafka_rows.select(
        "key",
        "value",
        "headers",
        "topic",
        "partition",
        "offset",
        F.col("timestamp").alias("kafka_timestamp"),
        F.current_timestamp().alias("ingest_time"),
        F.current_date().alias("ingest_date"),
    )


def read_kafka(
    spark: object,
    bootstrap: str,
    topic: str,
    *,
    starting_offsets: str = "earliest",
    options: dict[str, str] | None = None,
    kafka_options: dict[str, str] | None = None,
) -> DataFrame:
    """A streaming DataFrame over topic from the explicit starting offsets, with headers.

    kafka_options are `kafka.*` client settings (security); options are source options and win.
    """
    reader = (
        spark.readStream.format("kafka")  # type: ignore[attr-defined]
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", starting_offsets)
        .option("includeHeaders", "true")
        .option("failOnDataLoss", "true")
    )
    for key, value in {**(kafka_options or {}), **(options or {})}.items():
        reader = reader.option(key, value)
    frame: DataFrame = reader.load()
    return frame
