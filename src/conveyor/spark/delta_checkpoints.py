"""Delta checkpoints written beside the stream, not inside its commits.

Delta writes a table's checkpoint inside the commit whose version is a multiple of the table's
`delta.checkpointInterval` (10 by default): 2.5-5 s on each table it falls on, so one batch in
ten took that much longer, on each of Conveyor's four tables. Conveyor's tables carry a long
interval (`conveyor.catalog.CHECKPOINT_INTERVAL`, a table property), and `Checkpointer`
writes the checkpoint on a thread of its own once a table is `EVERY` commits past its last one,
while the next batch runs. It goes through `DeltaLog.checkpoint`, which also removes the log
files past the table's log retention, as Delta's own checkpoints do. A checkpoint that fails is
logged and tried again after the next commit; it never fails a batch.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING

from conveyor.spark import delta_internals

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

EVERY = 10
"""Commits after which the checkpointer writes a table's checkpoint (Delta's own default)."""


def _last_checkpoint(spark: SparkSession, uri: str) -> int:
    """The version of the table's last checkpoint, -1 when it has none."""
    return delta_internals.last_checkpoint(spark, uri)


def checkpoint_now(spark: SparkSession, uri: str) -> int:
    """Write the table's checkpoint at its latest version (and clean up expired log files);
    the version checkpointed."""
    return delta_internals.checkpoint(spark, uri)


class Checkpointer:
    """One thread that checkpoints the tables handed to `committed` when they are due."""

    def __init__(self, spark: SparkSession, every: int = EVERY) -> None:
        self.spark = spark
        self.every = every
        self._last: dict[str, int] = {}
        self._pending: set[str] = set()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="delta-checkpoints", daemon=True)
        self._thread.start()

    def committed(self, uri: str, version: int | None) -> None:
        """The table at `uri` is now at `version`: checkpoint it (in the background) when it
        is `every` commits past its last checkpoint."""
        if version is None:
            return
        with self._lock:
            if uri in self._pending:
                return
            if uri not in self._last:
                try:
                    self._last[uri] = _last_checkpoint(self.spark, uri)
                except Exception:  # monitoring of an optimisation: never fail a batch
                    log.debug("no checkpoint version for %s", uri, exc_info=True)
                    self._last[uri] = -1
            if version - self._last[uri] < self.every:
                return
            self._pending.add(uri)
        self._queue.put(uri)

    def _run(self) -> None:
        while (uri := self._queue.get()) is not None:
            try:
                version = checkpoint_now(self.spark, uri)
                with self._lock:
                    self._last[uri] = version
            except Exception as exc:
                log.warning("could not write the Delta checkpoint of %s: %s", uri, exc)
            finally:
                with self._lock:
                    self._pending.discard(uri)

    def close(self, wait: bool = True) -> None:
        """Stop the thread after the checkpoints already due (`wait`), else at once."""
        if not wait:
            with self._lock:
                while not self._queue.empty():
                    self._queue.get_nowait()
        self._queue.put(None)
        if wait:
            self._thread.join()
