"""`StreamWatermarkTrigger`: fires once a stream's watermark has reached a moment.

It runs in the triggerer and reads the ledger with delta-rs (no Spark) in a worker thread every
`poll_interval` seconds, so waiting a whole day for a watermark costs no worker slot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from conveyor import connections

if TYPE_CHECKING:
    from conveyor.settings import Settings


class StreamWatermarkTrigger(BaseTrigger):
    """Yields `{"status": "passed", "watermark": iso}` once the watermark of `stream` (from the
    catalog at `catalog_path`, default the settings' one; the ledger in the lake of
    `lake_conn_id`) is at or after `target`."""

    def __init__(
        self,
        stream: str,
        target: str,
        poll_interval: float = 300.0,
        catalog_path: str | None = None,
        lake_conn_id: str = connections.LAKE,
    ) -> None:
        super().__init__()
        self.stream = stream
        self.target = target
        self.poll_interval = poll_interval
        self.catalog_path = catalog_path
        self.lake_conn_id = lake_conn_id

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "conveyor.provider.triggers.watermark.StreamWatermarkTrigger",
            {
                "stream": self.stream,
                "target": self.target,
                "poll_interval": self.poll_interval,
                "catalog_path": self.catalog_path,
                "lake_conn_id": self.lake_conn_id,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.sdk import BaseHook

        from conveyor.provider.hooks.lake import settings_from_connection

        target = datetime.fromisoformat(self.target)
        # the async lookup: a synchronous one from the triggerer's event loop is refused
        settings = settings_from_connection(await BaseHook.aget_connection(self.lake_conn_id))
        while True:
            watermark = await asyncio.to_thread(
                watermark_of, self.stream, settings, self.catalog_path
            )
            self.log.info("stream %s: watermark %s, waiting for %s", self.stream, watermark, target)
            if watermark is not None and watermark >= target:
                yield TriggerEvent({"status": "passed", "watermark": watermark.isoformat()})
                return
            await asyncio.sleep(self.poll_interval)


def watermark_of(
    stream: str, settings: Settings, catalog_path: str | None = None
) -> datetime | None:
    """The stream's watermark (aware UTC) from the ledger in the settings' lake, None before
    its first batch."""
    from conveyor.analytics.watermark import stream_watermark
    from conveyor.catalog import resolve_catalog

    catalog = resolve_catalog(settings, catalog_path)
    return stream_watermark(settings, catalog.stream(stream))
