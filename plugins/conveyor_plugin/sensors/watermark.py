"""Wait until a stream's watermark has passed a moment, so no event before it can still arrive.

The watermark (newest event time in the ingest ledger minus the stream's late-data tolerance)
lives in a Delta table, which only Spark reads here, so this sensor is not deferrable: a trigger
cannot run Spark in the triggerer. It pokes in `reschedule` mode instead, releasing its worker
slot between pokes; each poke starts a small local Spark session (or reuses the active one).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.sensor import BaseSensorOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class StreamWatermarkSensor(BaseSensorOperator):
    """Succeeds once `stream`'s watermark is at or after `passed` + `margin`.

    `passed` is an ISO-8601 time (templated, e.g. "{{ data_interval_end }}"); naive means UTC.
    """

    template_fields: Sequence[str] = ("stream", "passed")

    def __init__(
        self,
        *,
        stream: str,
        passed: str,
        margin: timedelta = timedelta(0),
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, **kwargs)
        self.stream = stream
        self.passed = passed
        self.margin = margin

    def target(self) -> datetime:
        moment = datetime.fromisoformat(self.passed)
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment + self.margin

    def poke(self, context: Context) -> bool:
        from pyspark.sql import SparkSession

        from conveyor.analytics.watermark import stream_watermark
        from conveyor.catalog import load_catalog
        from conveyor.settings import get_settings
        from conveyor.spark.session import build_session

        settings = get_settings()
        spec = load_catalog(settings.catalog).stream(self.stream)
        ours = SparkSession.getActiveSession() is None
        spark = build_session(settings, "conveyor-watermark")
        try:
            watermark = stream_watermark(spark, settings, spec)
        finally:
            if ours:
                spark.stop()
        target = self.target()
        self.log.info(
            "stream %s: watermark %s, waiting for %s (UTC)", self.stream, watermark, target
        )
        return watermark is not None and watermark >= target
