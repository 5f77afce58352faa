"""A test hook: a process that kills itself with SIGKILL at a named point, to prove that a
rerun after a crash exactly there loses and doubles nothing.

Points: `ingest-after-bronze`, `ingest-after-silver`, `ingest-after-quarantine` (each right
after that table's append of a batch committed, or was found committed),
`ingest-after-ledger` (after the batch's ledger row), `replay-after-silver`,
`rebuild-after-silver`. Nothing happens unless the variable names the point."""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

KILL_POINT_ENV = "CONVEYOR_TEST_KILL_AT"


def kill_point(name: str) -> None:
    """Kill this process with SIGKILL if `CONVEYOR_TEST_KILL_AT` names `name`."""
    if os.environ.get(KILL_POINT_ENV) == name:
        log.warning("test hook: killing this process at %s", name)
        os.kill(os.getpid(), signal.SIGKILL)
