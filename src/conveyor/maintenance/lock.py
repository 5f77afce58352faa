"""A lease per table and operation, so two compactions of one table never run at once.

The lease is a small JSON file created exclusively (atomic on HDFS) at
`<checkpoint_uri>/_maintenance/<table>.<operation>.lock`: outside every table folder, so VACUUM
never sees it. It names its owner (host and process id) and expires after a TTL. A lease whose
owner is gone is taken over at once: expired, or held by a process of this host that no longer
runs (killed, crashed); a lease file left empty by a writer killed while creating it is taken
over after a few seconds. Compaction and VACUUM renew their lease by a heartbeat (the file's
modification time), so one that died on another host is taken over after three missed beats;
a lease without a heartbeat blocks until its TTL. A lease is taken over by renaming it first (of
two takers, only one rename succeeds).

`stream_lock` is the same lease per stream: every micro-batch of the stream holds it while it
writes, and so do `conveyor replay` and `conveyor rebuild` for their whole run, so neither can
let a dedup key into silver twice while the other runs.

`checkpoint_lease` keeps a second ingest off a stream's checkpoint: the running ingest holds it
for its whole life and renews it by a heartbeat (the file's modification time), so a holder that
stopped beating (a driver on another host that died, a hung process) is taken over after three
missed beats, and a dead one on this host at once.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConveyorError, first_line
from conveyor.settings import Settings
from conveyor.spark.jvm import HadoopFiles
from conveyor.stack.process import process_state

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
    heartbeat_s: float | None = None
    beat_at: datetime | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "owner": self.owner,
                "token": self.token,
                "acquired_at": self.acquired_at.isoformat(),
                "expires_at": self.expires_at.isoformat(),
                "host": self.host,
                "pid": self.pid,
                "heartbeat_s": self.heartbeat_s,
            }
        )

    def owner_gone(self, now: datetime) -> bool:
        """Expired, three heartbeats missed, or its owner was a process of this host that no
        longer runs."""
        if self.expires_at <= now:
            return True
        missed = timedelta(seconds=3 * (self.heartbeat_s or 0))
        if self.heartbeat_s and self.beat_at and now - self.beat_at > missed:
            return True
        if self.host != socket.gethostname() or self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # runs, as another user
        return process_state(self.pid) == "Z"  # killed, its parent too: not reaped yet

    def describe(self) -> str:
        until = (
            f"last heartbeat {self.beat_at:%H:%M:%S} UTC"
            if self.heartbeat_s and self.beat_at
            else f"expires {self.expires_at:%Y-%m-%d %H:%M:%S} UTC"
        )
        return (
            f"held by {self.owner} since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"{until} (lock file {self.path})"
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


class CheckpointHeld(ConveyorError):
    """Another ingest of the stream runs on its checkpoint; this one did not start."""

    def __init__(self, stream: str, holder: Lease) -> None:
        self.holder = holder
        super().__init__(
            f"stream '{stream}' is already being ingested ({holder.describe()}); this run "
            "stopped before reading anything. One ingest per checkpoint: stop the other, or "
            "wait; a holder that died is taken over (at once on this host, after three missed "
            "heartbeats elsewhere)."
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
    heartbeat_s: float | None = None,
) -> Iterator[Lease]:
    """Hold the lock for the block; waits up to `wait` for another holder (looking every
    `poll` seconds), then raises LockHeld. Released on exit (only if still ours). With
    `heartbeat_s` the lease is renewed that often while held, so a holder that died on another
    host is taken over after three missed beats rather than at its TTL (long runs: compaction).

    A holder that takes the lock again and again (a stream's batches) could starve a waiter
    that only looks now and then: with `queue` the waiter announces itself next
    (`<lock>.next`), and a taker with `defer` does not take the lock while a live waiter is
    announced."""
    files = HadoopFiles(spark)
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
                lease, holder = _try_acquire(files, path, ttl, heartbeat_s=heartbeat_s)
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
    if heartbeat_s:
        with _beating(files, lease, f"the {operation} lock of {table}", None, heartbeat_s):
            yield lease
        return
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


HEARTBEAT_S = 10.0


@contextmanager
def checkpoint_lease(
    spark: SparkSession,
    settings: Settings,
    stream: str,
    *,
    on_lost: Callable[[], None] | None = None,
    heartbeat_s: float = HEARTBEAT_S,
) -> Iterator[Lease]:
    """Hold the stream's checkpoint lease for the block, renewing it every `heartbeat_s`;
    raises CheckpointHeld at once when a live holder has it. Should the lease be lost (taken
    over after missed beats), `on_lost` is called (the ingest stops its query)."""
    files = HadoopFiles(spark)
    path = lock_uri(settings, stream, "checkpoint")
    lease, holder = _try_acquire(files, path, DEFAULT_TTL, heartbeat_s=heartbeat_s)
    if lease is None:
        assert holder is not None
        raise CheckpointHeld(stream, holder)
    with _beating(files, lease, f"the checkpoint lease of {stream}", on_lost, heartbeat_s):
        yield lease


@contextmanager
def _beating(
    files: HadoopFiles,
    lease: Lease,
    what: str,
    on_lost: Callable[[], None] | None,
    heartbeat_s: float,
) -> Iterator[None]:
    """Renew `lease` (its file's modification time) every `heartbeat_s` during the block and
    release it after; `on_lost` is called should it be taken over meanwhile."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(heartbeat_s):
            try:
                text = files.read_text(lease.path)
                if text is None or lease.token not in text:
                    log.error("%s was taken over by another run", what)
                    if on_lost is not None:
                        on_lost()
                    return
                files.set_modified_at(lease.path, datetime.now(UTC))
            except Exception as exc:  # HDFS away: the work fails on its own; keep beating
                log.warning("heartbeat of %s failed: %s", what, exc)

    thread = threading.Thread(target=beat, name=f"lease-heartbeat-{lease.token[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=60)
        try:
            _release(files, lease)
        except Exception as exc:  # HDFS away: keep the error that ended the run, not this one
            log.warning(
                "could not release %s (%s); the next run takes it over, its holder being gone",
                what,
                first_line(exc),
            )


def _announce(files: HadoopFiles, path: str, ttl: timedelta) -> Lease | None:
    """Announce ourselves as the next taker; None when another live waiter already is."""
    lease, _ = _try_acquire(files, path, ttl)
    return lease


def _try_acquire(
    files: HadoopFiles, path: str, ttl: timedelta, *, heartbeat_s: float | None = None
) -> tuple[Lease | None, Lease | None]:
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
            heartbeat_s=heartbeat_s,
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


# Creating a lease file and writing its text take milliseconds; a lease file still empty or
# unreadable after this long was left by a writer killed in between (its owner is unknown).
HALF_WRITTEN_GRACE = timedelta(seconds=15)


def _read(files: HadoopFiles, path: str, ttl: timedelta) -> Lease | None:
    try:
        text = files.read_text(path)
    except Exception:  # HDFS cannot tell the length of a file whose writer was killed
        text = ""
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
            heartbeat_s=float(data["heartbeat_s"]) if data.get("heartbeat_s") else None,
            beat_at=files.modified_at(path) if data.get("heartbeat_s") else None,
        )
    except (ValueError, KeyError, TypeError):
        # being written right now, or left half-written by a killed writer: judge by its age
        modified = files.modified_at(path) or datetime.now(UTC)
        return Lease(path, "an unknown owner", "", modified, modified + HALF_WRITTEN_GRACE)


def _release(files: HadoopFiles, lease: Lease) -> None:
    text = files.read_text(lease.path)
    if text is not None and lease.token in text:
        files.delete(lease.path)
    else:
        log.warning("lock %s was no longer ours at release (it had expired)", lease.path)
