"""The landings: what each kind of stream does with a batch once the core hands it over.

- `append`: events land in silver once each (lateness, repeats, the silver append);
- `changes`: a database table's changes are merged into silver (the Debezium envelope, the
  MERGE, delete markers, history).

`landing_for(stream)` picks a stream's; the core (`conveyor.ingest.core`) knows none of them.
"""

from __future__ import annotations

from conveyor.catalog import StreamSpec
from conveyor.ingest.core import LandingFactory
from conveyor.ingest.landings.append import AppendLanding
from conveyor.ingest.landings.changes import ChangeLanding


def landing_for(stream: StreamSpec) -> LandingFactory:
    """The landing of the stream's kind."""
    return ChangeLanding if stream.kind == "cdc" else AppendLanding
