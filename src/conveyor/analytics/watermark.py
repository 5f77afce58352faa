"""A stream's watermark, from the ingest ledger: the newest event time landed minus the
stream's late-data tolerance. The ingest judges lateness per Kafka partition, so once this has
passed a moment, only a partition behind the others can still land an event before it; such a
batch lists the day in the ledger's `late_dates`, and analytics `--with-late` recomputes it.
Read without Spark (`conveyor.delta_rs`), so sensors and triggers can ask cheaply and often."""

from __future__ import annotations

from datetime import datetime

from conveyor.catalog import StreamSpec, ledger_uri
from conveyor.delta_rs import read_rows
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
