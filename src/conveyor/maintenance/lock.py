"""A lease per table and operation, so two compactions of one table never run at once.

The lease is a small JSON file created exclusively (atomic on HDFS) at
`<checkpoint_uri>/_maintenance/<table>.<operation>.lock`: outside every table folder, so VACUUM
never sees it. It names its owner (host and process id) and expires after a TTL. A lease whose
owner is gone is taken over at once: expired, or held by a process of this host that no longer
runs (killed, crashed). A holder on another host that died blocks only until the TTL. A lease
is taken over by renaming it first (of two takers, only one rename succeeds). The TTL must be
longer than the longest run; a lease is not renewed.

`stream_lock` is the same lease per stream: every micro-batch of the stream holds it while it
writes, and so do `conveyor replay` and `conveyor rebuild` for their whole run, so neither can
let a dedup key into silver twice while the other runs.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
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
_FOLDERS_MADE: set[str] = set()
POLL_INTERVAL_S = 5.0


@dataclass(frozen=True)
class Lease:
    """Who holds (or held) a table's lock, and until when."""

    path: str
    owner: str
    token: str
    acquired_at: datetime
    expires_at: datetime
    host: str | None = None
    pid: int | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "owner": self.owner,
                "token": self.token,
                "acquired_at": self.acquired_at.isoformat(),
                "expires_at": self.expires_at.isoformat(),
                "host": self.host,
                "pid": self.pid,
            }
        )

    def owner_gone(self, now: datetime) -> bool:
        """Expired, or its owner was a process of this host that no longer runs."""
        if self.expires_at <= now:
            return True
        if self.host != socket.gethostname() or self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # runs, as another user
        return False

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
            "nothing was done. It ends on its own; an owner that died on this host is noticed "
            "at once, one on another host when the lock expires."
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
    poll: float = POLL_INTERVAL_S,
    queue: bool = False,
    defer: bool = False,
) -> Iterator[Lease]:
    """Hold the lock for the block; waits up to `wait` for another holder (looking every
    `poll` seconds), then raises LockHeld. Released on exit (only if still ours).

    A holder that takes the lock again and again (a stream's batches) could starve a waiter
    that only looks now and then: with `queue` the waiter announces itself next
    (`<lock>.next`), and a taker with `defer` does not take the lock while a live waiter is
    announced."""
    files = LakeFiles(spark)
    path = lock_uri(settings, table, operation)
    deadline = time.monotonic() + wait.total_seconds()
    announced: Lease | None = None
    lease: Lease | None = None
    holder: Lease | None = None
    try:
        while True:
            announced_next = defer and files.exists(f"{path}.next")
            waiter = _read(files, f"{path}.next", ttl) if announced_next else None
            if waiter is not None and not waiter.owner_gone(datetime.now(UTC)):
                lease, holder = None, waiter
            else:
                lease, holder = _try_acquire(files, path, ttl)
            if lease is not None:
                break
            if holder is None:
                raise RuntimeError(f"the {operation} lock of {table} is neither ours nor held")
            if time.monotonic() >= deadline:
                raise LockHeld(table, operation, holder)
            if queue and announced is None:
                announced = _announce(files, f"{path}.next", ttl)
            log.info("waiting for the %s lock of %s: %s", operation, table, holder.describe())
            time.sleep(poll)  # polling the lock until the deadline
    finally:
        if announced is not None:
            _release(files, announced)
    assert lease is not None
    try:
        yield lease
    finally:
        _release(files, lease)


def stream_lock(
    spark: SparkSession, settings: Settings, stream: str, *, batch: bool
) -> AbstractContextManager[Lease]:
    """The stream's write lease: a micro-batch (`batch`) holds it while it writes and yields
    to an announced replay or rebuild; a replay or rebuild holds it for its run and queues
    for it. Either waits as long as the holder lives."""
    return table_lock(
        spark,
        settings,
        stream,
        "write",
        wait=DEFAULT_TTL,
        poll=0.5 if batch else 1.0,
        queue=not batch,
        defer=batch,
    )


def _announce(files: LakeFiles, path: str, ttl: timedelta) -> Lease | None:
    """Announce ourselves as the next taker; None when another live waiter already is."""
    lease, _ = _try_acquire(files, path, ttl)
    return lease


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
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        folder = path.rsplit("/", 1)[0]
        if folder not in _FOLDERS_MADE:  # once per process: a stream takes its lease per batch
            files.mkdirs(folder)
            _FOLDERS_MADE.add(folder)
        if files.create_new(path, lease.to_json()):
            return lease, None
        holder = _read(files, path, ttl)
        if holder is None:
            continue  # released meanwhile
        if not holder.owner_gone(now):
            return None, holder
        stale = f"{path}.expired-{uuid.uuid4().hex[:8]}"
        if files.rename(path, stale):
            log.warning("took over the lock of an owner that is gone: %s", holder.describe())
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
            host=data.get("host"),
            pid=int(data["pid"]) if data.get("pid") is not None else None,
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
