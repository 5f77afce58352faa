"""A stream's watermark, from the ingest ledger: the newest event time landed minus the
stream's late-data tolerance. Events older than the watermark are quarantined as `too_late`, so
once it has passed a moment, no event before that moment can still arrive. Read without Spark
(`conveyor.lakeview`), so sensors and triggers can ask cheaply and often."""

from __future__ import annotations

from datetime import datetime

from conveyor.catalog import StreamSpec, ledger_uri
from conveyor.lakeview import read_rows
from conveyor.settings import Settings


def stream_watermark(settings: Settings, stream: StreamSpec) -> datetime | None:
    """The stream's watermark (aware UTC), or None when nothing was landed yet."""
    rows = read_rows(
        ledger_uri(settings),
        ["kind", "max_event_time"],
        partitions=[("stream", "=", stream.name)],
    )
    newest = max(
        (r["max_event_time"] for r in rows if r["kind"] == "batch" and r["max_event_time"]),
        default=None,
    )
    return newest - stream.event_schema.late_tolerance if newest else None
