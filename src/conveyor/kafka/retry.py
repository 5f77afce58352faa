"""Retry a Kafka call while the broker answers with a passing (retriable) error."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def while_retriable(call: Callable[[], T], attempts: int = 20, wait_s: float = 0.5) -> T:
    """call(), again while it raises a retriable KafkaError (e.g. the first use of any group
    makes the broker create __consumer_offsets: until then it answers "coordinator not
    available" or "coordinator loading"); the last error is raised."""
    from kafka.errors import KafkaError
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_fixed

    for attempt in Retrying(
        stop=stop_after_attempt(attempts),
        retry=retry_if_exception(lambda e: isinstance(e, KafkaError) and e.retriable),
        wait=wait_fixed(wait_s),
        reraise=True,
    ):
        with attempt:
            return call()
    raise AssertionError("unreachable: tenacity reraises the last error")
