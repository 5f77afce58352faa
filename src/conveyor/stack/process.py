"""Start, watch and stop local server processes, each in its own process group.

Processes are stopped by process group id (recorded at start), never by name. Liveness ignores
zombies, so a parent that has not reaped its child still sees it as gone.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from conveyor.errors import ConveyorError

T = TypeVar("T")


class ComponentStartError(ConveyorError):
    """A stack component did not come up; the message carries the tail of its log."""


# Below this are the well-known and registered ports other software expects to own.
LOWEST_CHOSEN_PORT = 10000
_EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


@functools.cache
def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections (Linux's default when
    the setting cannot be read)."""
    try:
        low, high = (int(part) for part in _EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on host right now and lies outside the ephemeral range.

    A port the OS hands out for listening (bind to 0) comes from the ephemeral range, so once
    its server stops, any outgoing connection may take it as its local port and the server
    cannot start there again. Ports outside that range are never given to clients."""
    low, high = ephemeral_port_range()
    outside = [*range(LOWEST_CHOSEN_PORT, low), *range(high + 1, 65536)]
    for port in random.sample(outside, min(500, len(outside))):
        if port_is_free(port, host):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # no room outside it
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # servers set SO_REUSEADDR, so a port with only TIME_WAIT leftovers is free for them
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def spawn(
    command: Sequence[str], log_file: Path, env: Mapping[str, str], cwd: Path | None = None
) -> int:
    """Start command in a new session (its own process group); returns the group id."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    return proc.pid


def _stat_fields(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat after the command name (state ppid pgrp ...); None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def process_state(pid: int) -> str | None:
    """The process's state letter (`Z`: dead, not yet reaped by its parent); None when no such
    process exists (or this system has no /proc)."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) process ids in a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(entry.name)
        if fields and int(fields[2]) == pgid and (fields[0] != "Z" or _threads_alive(entry)):
            members.append(int(entry.name))
    _reap(pgid)
    return members


def _threads_alive(proc: Path) -> bool:
    """Whether a process whose main thread is a zombie still has threads exiting.

    A killed JVM's main thread turns `Z` first; the others still hold the process's open
    files (its listening sockets) until the last of them is gone."""
    with contextlib.suppress(OSError):
        for task in (proc / "task").iterdir():
            fields = _stat_fields(f"{proc.name}/task/{task.name}")
            if fields and fields[0] != "Z":
                return True
    return False


def is_running(pgid: int) -> bool:
    return bool(group_members(pgid))


def stop_group(pgid: int, timeout_s: float = 30.0) -> None:
    """SIGTERM the group, wait for it to exit, SIGKILL what is left after timeout_s."""
    stop_groups([pgid], timeout_s)


def stop_groups(pgids: Sequence[int], timeout_s: float = 30.0) -> None:
    """SIGTERM every group at once, wait for all to exit, SIGKILL what is left after timeout_s.

    For the nodes of one quorum: stopped one by one, the last would wait for a quorum that is
    already gone until its SIGKILL."""
    running = [pgid for pgid in pgids if is_running(pgid)]
    for pgid in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)

    def all_gone() -> bool:
        return not any(is_running(pgid) for pgid in running)

    if wait_until(all_gone, timeout_s, raise_on_timeout=False):
        return
    for pgid in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    wait_until(all_gone, 15.0, what=f"process groups {running} to exit")


def wait_for(
    probe: Callable[[], T | None],
    timeout_s: float,
    *,
    what: str = "condition",
    interval_s: float = 0.25,
) -> T:
    """Poll probe until it returns a truthy value, and return that value; TimeoutError (naming
    `what`) when timeout_s passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def wait_until(
    condition: Callable[[], bool],
    timeout_s: float,
    *,
    what: str = "condition",
    interval_s: float = 0.25,
    raise_on_timeout: bool = True,
) -> bool:
    """Poll condition until it is true or timeout_s passes (then raise TimeoutError or False)."""
    try:
        return wait_for(condition, timeout_s, what=what, interval_s=interval_s)
    except TimeoutError:
        if raise_on_timeout:
            raise
        return False


def log_tail(log_file: Path, lines: int = 25) -> str:
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return "(no log written)"
    return "\n".join(text.strip().splitlines()[-lines:])


def _reap(pgid: int) -> None:
    """Collect exited children of this process (they would otherwise linger as zombies)."""
    with contextlib.suppress(ChildProcessError, OSError):
        while True:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
            if pid == 0:
                return
