"""Recognising Delta's commit conflicts, which maintenance retries instead of failing."""

from __future__ import annotations

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
