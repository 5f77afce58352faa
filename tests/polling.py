"""`eventually`: poll a probe until its result is right, on `conveyor.stack.process.wait_until`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from conveyor.stack.process import wait_until

T = TypeVar("T")


def eventually(
    probe: Callable[[], T], done: Callable[[T], bool], what: str, timeout: float = 20
) -> T:
    """Polls `probe` until `done(result)` and returns that result; fails naming what was awaited
    and the last result seen."""
    seen: list[T] = []

    def ready() -> bool:
        seen[:] = [probe()]
        return done(seen[0])

    if not wait_until(ready, timeout, what=what, interval_s=0.2, raise_on_timeout=False):
        pytest.fail(f"timed out after {timeout}s waiting for {what}; last saw {seen[0]!r}")
    return seen[0]
