"""Durations and sizes as the catalog spells them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conveyor.units import duration_ms, format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("7d", timedelta(days=7)),
        ("36h", timedelta(hours=36)),
        ("30m", timedelta(minutes=30)),
        ("10s", timedelta(seconds=10)),
        ("500ms", timedelta(milliseconds=500)),
        ("2w", timedelta(weeks=2)),
        (" 0s ", timedelta(0)),
    ],
)
def test_durations_parse(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value


@pytest.mark.parametrize("text", ["7", "2 hours", "-1d", "1.5h", "1h30m", "", "7D"])
def test_bad_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"^must be a duration like 7d, 36h, 30m, 10s or 500ms$"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=7), "7d"),
        (timedelta(hours=36), "36h"),
        (timedelta(minutes=90), "90m"),
        (timedelta(milliseconds=1500), "1500ms"),
        (timedelta(0), "0s"),
    ],
)
def test_durations_format_in_the_largest_exact_unit(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


def test_duration_ms() -> None:
    assert duration_ms(timedelta(days=7)) == 604_800_000


@pytest.mark.parametrize(
    ("value", "size"),
    [("128MB", 128 << 20), ("512KB", 512 << 10), ("1GiB", 1 << 30), (1048588, 1048588), ("10", 10)],
)
def test_sizes_parse_with_binary_multiples(value: str | int, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["big", "1.5MB", "-1", -1, "12 parsecs"])
def test_bad_sizes(value: str | int) -> None:
    with pytest.raises(ValueError, match="must be a size like 128MB"):
        parse_size(value)


def test_sizes_format() -> None:
    assert [format_size(n) for n in (128 << 20, 1048588, 0, 3 << 10)] == [
        "128MB",
        "1048588B",
        "0B",
        "3KB",
    ]
