"""The one polling helper everything waits with: it hands back what it waited for, and a
timeout names what never came."""

from __future__ import annotations

import itertools

import pytest

from conveyor.airflow_api import AirflowApiError, _parse, _wait_for
from conveyor.stack.process import wait_for, wait_until


def test_wait_for_returns_the_first_truthy_value() -> None:
    answers = iter([None, {}, {"state": "success"}])
    assert wait_for(lambda: next(answers), 5, interval_s=0) == {"state": "success"}


def test_a_timeout_names_what_never_came() -> None:
    with pytest.raises(TimeoutError, match="waiting for the broker"):
        wait_for(lambda: None, 0, what="the broker", interval_s=0)
    assert wait_until(lambda: False, 0, raise_on_timeout=False, interval_s=0) is False


def test_airflow_waits_say_so_in_airflow_terms() -> None:
    calls = itertools.count()
    with pytest.raises(AirflowApiError, match="waiting for run r1 of d"):
        _wait_for(lambda: next(calls) > 10**6, 0, "run r1 of d")


@pytest.mark.parametrize(
    "moment", ["2026-12-05T05:00:00Z", "2026-12-05T06:00:00+01:00", "2026-12-05T05:00:00"]
)
def test_airflow_times_are_read_as_utc(moment: str) -> None:
    assert _parse(moment).isoformat() == "2026-12-05T05:00:00+00:00"
