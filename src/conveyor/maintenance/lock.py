"""A lease per table and operation, so two compactions of one table never run at once.

The lease is a small JSON file created exclusively (atomic on HDFS) at
`<checkpoint_uri>/_maintenance/<table>.<operation>.lock`: outside every table folder, so VACUUM
never sees it. It names its owner and expires after a TTL, so a holder that crashed blocks the
table only until then. An expired lease is taken over by renaming it first (of two takers, only
one rename succeeds). The TTL must be longer than the longest run; a lease is not renewed.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConveyorError
from conveyor.settings import Settings
from conveyor.spark.jvm import LakeFiles

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DEFAULT_TTL = timedelta(hours=2)
POLL_INTERVAL_S = 5.0


@dataclass(frozen=True)
class Lease:
    """Who holds (or held) a table's lock, and until when."""

    path: str
    owner: str
    token: str
    acquired_at: datetime
    expires_at: datetime

    def to_json(self) -> str:
        return json.dumps(
            {
                "owner": self.owner,
                "token": self.token,
                "acquired_at": self.acquired_at.isoformat(),
                "expires_at": self.expires_at.isoformat(),
            }
        )

    def describe(self) -> str:
        return (
            f"held by {self.owner} since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"expires {self.expires_at:%Y-%m-%d %H:%M:%S} UTC (lock file {self.path})"
        )


class LockHeld(ConveyorError):
    """Another run holds the table's lock; nothing was done."""

    def __init__(self, table: str, operation: str, holder: Lease) -> None:
        self.holder = holder
        super().__init__(
            f"{operation} of {table} is already running elsewhere ({holder.describe()}); "
            "nothing was done. It ends on its own; if its owner crashed, the lock expires then."
        )


def lock_uri(settings: Settings, table: str, operation: str) -> str:
    return f"{settings.checkpoint_uri.rstrip('/')}/_maintenance/{table}.{operation}.lock"


@contextmanager
def table_lock(
    spark: SparkSession,
    settings: Settings,
    table: str,
    operation: str,
    *,
    ttl: timedelta = DEFAULT_TTL,
    wait: timedelta = timedelta(0),
) -> Iterator[Lease]:
    """Hold the lock for the block; waits up to `wait` for another holder, then raises LockHeld.
    Released on exit (only if still ours)."""
    files = LakeFiles(spark)
    path = lock_uri(settings, table, operation)
    deadline = time.monotonic() + wait.total_seconds()
    while True:
        lease, holder = _try_acquire(files, path, ttl)
        if lease is not None:
            break
        if holder is None:
            raise RuntimeError(f"the {operation} lock of {table} is neither ours nor held")
        if time.monotonic() >= deadline:
            raise LockHeld(table, operation, holder)
        log.info("waiting for the %s lock of %s: %s", operation, table, holder.describe())
        time.sleep(POLL_INTERVAL_S)  # polling the lock until the deadline
    try:
        yield lease
    finally:
        _release(files, lease)


def _try_acquire(files: LakeFiles, path: str, ttl: timedelta) -> tuple[Lease | None, Lease | None]:
    """(our lease, None) or (None, the current holder's lease)."""
    for _ in range(5):  # a holder may vanish or expire between our steps: look again
        now = datetime.now(UTC)
        lease = Lease(
            path=path,
            owner=f"{socket.gethostname()} pid {os.getpid()}",
            token=uuid.uuid4().hex,
            acquired_at=now,
            expires_at=now + ttl,
        )
        files.mkdirs(path.rsplit("/", 1)[0])
        if files.create_new(path, lease.to_json()):
            return lease, None
        holder = _read(files, path, ttl)
        if holder is None:
            continue  # released meanwhile
        if holder.expires_at > now:
            return None, holder
        stale = f"{path}.expired-{uuid.uuid4().hex[:8]}"
        if files.rename(path, stale):
            log.warning("took over an expired lock: %s", holder.describe())
            files.delete(stale)
    raise ConveyorError(f"could not acquire or read the lock {path}: it keeps changing hands")


def _read(files: LakeFiles, path: str, ttl: timedelta) -> Lease | None:
    text = files.read_text(path)
    if text is None:
        return None
    try:
        data: dict[str, Any] = json.loads(text)
        return Lease(
            path=path,
            owner=str(data["owner"]),
            token=str(data["token"]),
            acquired_at=datetime.fromisoformat(data["acquired_at"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
        )
    except (ValueError, KeyError, TypeError):
        # being written right now, or left half-written by a crash: judge by its age
        modified = files.modified_at(path) or datetime.now(UTC)
        return Lease(path, "an unknown owner", "", modified, modified + ttl)


def _release(files: LakeFiles, lease: Lease) -> None:
    text = files.read_text(lease.path)
    if text is not None and lease.token in text:
        files.delete(lease.path)
    else:
        log.warning("lock %s was no longer ours at release (it had expired)", lease.path)
