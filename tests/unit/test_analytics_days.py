"""Which days an analytics request names: the CLI and the Spark job read them the same way."""

from __future__ import annotations

import subprocess
import sys
from datetime import date

import pytest

from conveyor.analytics import BadDays, requested_days
from tests.conftest import REPO

D1, D3 = date(2026, 3, 1), date(2026, 3, 3)


def test_one_day_or_a_range() -> None:
    assert requested_days(D1, None, None) == [D1]
    assert requested_days(None, D1, D3) == [D1, date(2026, 3, 2), D3]
    assert requested_days(None, D1, D1) == [D1]


@pytest.mark.parametrize(
    ("day", "first", "last", "message"),
    [
        (None, D3, D1, "--to 2026-03-01 is before --from 2026-03-03"),
        (None, None, None, "give either --date"),
        (D1, D1, D3, "give either --date"),
        (None, D1, None, "give either --date"),
        (None, None, D3, "give either --date"),
    ],
)
def test_anything_else_is_refused_with_the_reason(
    day: date | None, first: date | None, last: date | None, message: str
) -> None:
    with pytest.raises(BadDays, match=message):
        requested_days(day, first, last)


def test_the_job_refuses_a_range_that_ends_before_it_starts() -> None:
    """It used to exit 0 having computed nothing; it fails before starting Spark."""
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "jobs/analytics.py"),
            "--from",
            "2026-03-03",
            "--to",
            "2026-03-01",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result
    assert "--to 2026-03-01 is before --from 2026-03-03" in result.stderr
