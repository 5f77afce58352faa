"""Wait until a stream's watermark has passed a moment, so no event before it can still arrive.

The watermark (newest event time in the ingest ledger minus the stream's late-data tolerance)
is read from the ledger with delta-rs, without Spark. The sensor checks once when it starts; if
the watermark is not there yet it defers to `StreamWatermarkTrigger` (`deferrable=True`, the
default), which polls from the triggerer and holds no worker slot. With `deferrable=False` it
pokes like any sensor (reschedule mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.bases.sensor import BaseSensorOperator

from conveyor import connections
from conveyor.provider.triggers.watermark import StreamWatermarkTrigger, watermark_of
from conveyor.units import as_utc

if TYPE_CHECKING:
    from datetime import datetime

    from airflow.sdk import Context


class StreamWatermarkSensor(BaseSensorOperator):
    """Succeeds once `stream`'s watermark is at or after `passed` + `margin`.

    `passed` is an ISO-8601 time (templated, e.g. "{{ data_interval_end }}"); naive means UTC.
    Without `stream`, the catalog's analytics stream (the one with an `analytics:` section), and
    without `margin` its session gap: both read from the catalog when the task runs, never when
    the DAG is parsed. The ledger is read in the lake of `lake_conn_id`.
    """

    template_fields: Sequence[str] = ("stream", "passed", "catalog_path")

    def __init__(
        self,
        *,
        passed: str,
        stream: str | None = None,
        margin: timedelta | None = None,
        catalog_path: str | None = None,
        lake_conn_id: str = connections.LAKE,
        deferrable: bool = True,
        mode: str = "reschedule",
        **kwargs: Any,
    ) -> None:
        super().__init__(mode=mode, **kwargs)
        self.stream = stream
        self.passed = passed
        self.margin = margin
        self.catalog_path = catalog_path
        self.lake_conn_id = lake_conn_id
        self.deferrable = deferrable

    def _resolve(self) -> None:
        """The analytics stream and its session gap from the catalog, where not given."""
        if self.stream is not None and self.margin is not None:
            return
        from conveyor.analytics.gold import AnalyticsStreams
        from conveyor.catalog import resolve_catalog
        from conveyor.settings import get_settings

        streams = AnalyticsStreams.from_catalog(resolve_catalog(get_settings(), self.catalog_path))
        if self.stream is None:
            self.stream = streams.clicks.name
            self.margin = streams.session_gap if self.margin is None else self.margin
        self.margin = timedelta(0) if self.margin is None else self.margin

    def target(self) -> datetime:
        from datetime import datetime

        self._resolve()
        assert self.margin is not None
        return as_utc(datetime.fromisoformat(str(self.passed))) + self.margin

    def poke(self, context: Context) -> bool:
        from conveyor.provider.hooks.lake import ConveyorLakeHook

        settings = ConveyorLakeHook(self.lake_conn_id).settings
        self._resolve()
        assert self.stream is not None
        watermark = watermark_of(self.stream, settings, self.catalog_path)
        target = self.target()
        self.log.info("stream %s: watermark %s, waiting for %s", self.stream, watermark, target)
        return watermark is not None and watermark >= target

    def execute(self, context: Context) -> Any:
        if not self.deferrable or self.poke(context):
            return super().execute(context) if not self.deferrable else None
        assert self.stream is not None  # poke resolved it
        self.defer(
            trigger=StreamWatermarkTrigger(
                stream=self.stream,
                target=self.target().isoformat(),
                poll_interval=float(self.poke_interval),
                catalog_path=self.catalog_path,
                lake_conn_id=self.lake_conn_id,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)) if self.timeout else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        self.log.info("stream %s: watermark passed: %s", self.stream, event)
