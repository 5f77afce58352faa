"""`StreamWatermarkTrigger`: fires once a stream's watermark has reached a moment.

It runs in the triggerer and reads the ledger with delta-rs (no Spark) in a worker thread every
`poll_interval` seconds, so waiting a whole day for a watermark costs no worker slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class StreamWatermarkTrigger(BaseTrigger):
    """Yields `{"status": "passed", "watermark": iso}` once the watermark of `stream` (from the
    catalog at `catalog_path`, default the settings' one) is at or after `target`."""

    def __init__(
        self,
        stream: str,
        target: str,
        poll_interval: float = 300.0,
        catalog_path: str | None = None,
    ) -> None:
        super().__init__()
        self.stream = stream
        self.target = target
        self.poll_interval = poll_interval
        self.catalog_path = catalog_path

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "conveyor_plugin.triggers.watermark.StreamWatermarkTrigger",
            {
                "stream": self.stream,
                "target": self.target,
                "poll_interval": self.poll_interval,
                "catalog_path": self.catalog_path,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        target = datetime.fromisoformat(self.target)
        while True:
            watermark = await asyncio.to_thread(watermark_of, self.stream, self.catalog_path)
            self.log.info("stream %s: watermark %s, waiting for %s", self.stream, watermark, target)
            if watermark is not None and watermark >= target:
                yield TriggerEvent({"status": "passed", "watermark": watermark.isoformat()})
                return
            await asyncio.sleep(self.poll_interval)


def watermark_of(stream: str, catalog_path: str | None = None) -> datetime | None:
    """The stream's watermark (aware UTC) from the ledger, None before its first batch."""

    from conveyor.analytics.watermark import stream_watermark
    from conveyor.catalog import resolve_catalog
    from conveyor.settings import get_settings

    settings = get_settings()
    catalog = resolve_catalog(settings, catalog_path)
    return stream_watermark(settings, catalog.stream(stream))
