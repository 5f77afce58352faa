"""Durations (`7d`, `36h`, `30m`, `10s`, `500ms`) and sizes (`128MB`) as people write them,
and moments in UTC.

Sizes use binary multiples (1 KB = 1024 bytes), as Kafka and Delta count them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)\s*$")
_DURATION_UNITS: dict[str, timedelta] = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
}
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$")
_SIZE_UNITS: dict[str, int] = {"B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}

DURATION_HINT = "a duration like 7d, 36h, 30m, 10s or 500ms"
SIZE_HINT = "a size like 128MB, 512KB or a number of bytes"


def parse_duration(text: str) -> timedelta:
    """`'36h'` -> `timedelta(hours=36)`; raises ValueError naming the accepted forms."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"must be {DURATION_HINT}")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def format_duration(value: timedelta) -> str:
    """The shortest exact form: `timedelta(hours=48)` -> `'2d'`."""
    millis = round(value.total_seconds() * 1000)
    if millis == 0:
        return "0s"
    for unit in ("d", "h", "m", "s"):
        unit_ms = duration_ms(_DURATION_UNITS[unit])
        if millis % unit_ms == 0:
            return f"{millis // unit_ms}{unit}"
    return f"{millis}ms"


def duration_ms(value: timedelta) -> int:
    """Whole milliseconds, as Kafka's `*.ms` settings want them."""
    return round(value.total_seconds() * 1000)


def parse_size(value: str | int) -> int:
    """`'128MB'` -> 134217728 bytes; a bare integer is bytes. Raises ValueError."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"must be {SIZE_HINT}")
        return value
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"must be {SIZE_HINT}")
    unit = match.group(2) or "B"
    return int(match.group(1)) * _SIZE_UNITS[unit[0]]


def format_size(value: int) -> str:
    """The shortest exact form: 134217728 -> `'128MB'`."""
    for unit, size in reversed(_SIZE_UNITS.items()):
        if value and value % size == 0:
            return f"{value // size}{unit}B" if unit != "B" else f"{value}B"
    return f"{value}B"


def mib(size: int) -> float:
    """Bytes as mebibytes (what reports show as MB)."""
    return size / 1024 / 1024


def as_utc(moment: datetime) -> datetime:
    """The moment as an aware UTC datetime; naive means UTC (as the lake's timestamps are)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
