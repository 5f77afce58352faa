"""When a lease's owner counts as gone: judged from the lease and this host's processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conveyor.maintenance.lock import Lease
from tests.polling import eventually


def _lease(pid: int, host: str | None = None, **extra: object) -> Lease:
    now = datetime.now(UTC)
    return Lease(
        "hdfs://nn/checkpoints/_maintenance/s.checkpoint.lock",
        f"pid {pid}",
        "t",
        now,
        now + timedelta(hours=2),
        host or socket.gethostname(),
        pid,
        **extra,  # type: ignore[arg-type]
    )


def test_a_live_process_of_this_host_holds() -> None:
    assert not _lease(os.getpid()).owner_gone(datetime.now(UTC))


def test_a_killed_owner_not_yet_reaped_is_gone() -> None:
    # a driver killed with its parent stays a zombie until someone reaps it: it is dead
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        eventually(
            lambda: Path(f"/proc/{child.pid}/stat").read_text().rpartition(")")[2].split()[0],
            lambda state: state == "Z",
            "the child to exit (and stay unreaped)",
        )
        assert _lease(child.pid).owner_gone(datetime.now(UTC))
    finally:
        child.wait()
    assert _lease(child.pid).owner_gone(datetime.now(UTC))


def test_an_owner_on_another_host_is_gone_only_after_three_missed_beats() -> None:
    now = datetime.now(UTC)
    beating = _lease(1, "elsewhere", heartbeat_s=10.0, beat_at=now - timedelta(seconds=25))
    assert not beating.owner_gone(now)
    silent = _lease(1, "elsewhere", heartbeat_s=10.0, beat_at=now - timedelta(seconds=31))
    assert silent.owner_gone(now)
    assert not _lease(1, "elsewhere").owner_gone(now)  # no heartbeat: until the TTL
