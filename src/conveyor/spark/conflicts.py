"""Delta's commit conflicts, and the one way Conveyor retries a write that met one.

Delta commits optimistically: when another writer's commit lands between a transaction's read
and its commit and touches what it read (a compaction rewriting the files a MERGE read, two
runs creating the same table), the commit fails with a conflict and nothing is written. Every
Delta write in Conveyor that can meet one goes through `retry_conflicts`, which runs the work
again against the new version after a jittered, growing pause.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from conveyor.errors import first_line

T = TypeVar("T")
log = logging.getLogger(__name__)

# error classes Delta gives its conflicts (in messages when the Python class is not mapped)
_CONFLICT_MARKERS = (
    "DELTA_CONCURRENT_",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "ConcurrentWriteException",
    "MetadataChangedException",
    "ProtocolChangedException",
)


def is_conflict(exc: BaseException) -> bool:
    """True for Delta's optimistic-concurrency conflicts (another commit won the race)."""
    from delta import exceptions as delta_errors

    conflict_types = (
        delta_errors.DeltaConcurrentModificationException,
        delta_errors.ConcurrentWriteException,
        delta_errors.MetadataChangedException,
        delta_errors.ProtocolChangedException,
        delta_errors.ConcurrentAppendException,
        delta_errors.ConcurrentDeleteReadException,
        delta_errors.ConcurrentDeleteDeleteException,
        delta_errors.ConcurrentTransactionException,
    )
    if isinstance(exc, conflict_types):
        return True
    text = str(exc)
    return any(marker in text for marker in _CONFLICT_MARKERS)


def retry_conflicts(
    work: Callable[[], T],
    what: str,
    *,
    attempts: int = 5,
    backoff_s: float = 0.5,
    max_pause_s: float = 20.0,
) -> T:
    """`work()`, run again while it fails with a Delta commit conflict, at most `attempts`
    times in all, pausing a random time up to `backoff_s` * 2^attempt (at most `max_pause_s`)
    between tries and logging each conflict with `what` (e.g. "MERGE into <uri>"). Any other
    error, and the last conflict, is raised as it came. `work` must read the table afresh on
    each call: a retry is a new transaction against the version that won."""
    from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt
    from tenacity import wait_random_exponential as jittered

    def conflicted(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        pause = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s met a concurrent commit (%s); try %d of %d in %.1fs",
            what,
            first_line(failure) if failure else "?",
            state.attempt_number + 1,
            attempts,
            pause,
        )

    retrying = Retrying(
        retry=retry_if_exception(is_conflict),
        stop=stop_after_attempt(attempts),
        wait=jittered(multiplier=backoff_s, max=max_pause_s),
        before_sleep=conflicted,
        reraise=True,
    )
    return retrying(work)
