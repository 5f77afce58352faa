"""Value types of the catalog: durations, sizes, counts and names, with messages a YAML author
understands (pydantic errors are translated into catalog problems by `loading`)."""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WrapSerializer
from pydantic_core import PydanticCustomError

from conveyor.catalog.types import TYPE_HINT, parse_type
from conveyor.units import DURATION_HINT, format_duration, format_size, parse_duration, parse_size


def problem(reason: str, *, show_input: bool = True) -> PydanticCustomError:
    # The reason travels in the context so braces in it (regexes) are not format fields.
    kind = "conveyor" if show_input else "conveyor_plain"
    return PydanticCustomError(kind, "{reason}", {"reason": reason})


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise problem(str(exc)) from None


def _size(value: Any) -> int:
    try:
        return parse_size(value)
    except ValueError as exc:
        raise problem(str(exc)) from None


def _retention(value: Any) -> timedelta | None:
    """`7d`, a number of milliseconds, or -1 (unlimited, returned as None)."""
    if isinstance(value, timedelta) or (value is None):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value >= -1:
        return None if value == -1 else timedelta(milliseconds=value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return _retention(int(value))
    if isinstance(value, str):
        return _duration(value)
    raise problem(f"must be {DURATION_HINT}, a number of milliseconds, or -1 for unlimited")


def _field_type(value: Any) -> str:
    if not isinstance(value, str):
        raise problem(f"must be one of {TYPE_HINT}")
    try:
        return parse_type(value)
    except ValueError as exc:
        raise problem(str(exc), show_input=False) from None


def _at_least(minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise problem(f"must be an integer >= {minimum}")
        return value

    return check


def _matching(pattern: str, what: str) -> Callable[[str], str]:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise problem(what)
        return value

    return check


def _topic_name(value: str) -> str:
    if value in {".", ".."} or not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", value):
        raise problem(
            "is not a valid Kafka topic name: use 1 to 249 of the characters a-z A-Z 0-9 . _ - "
            "(and not '.' or '..')"
        )
    return value


def freeze(value: Mapping[Any, Any]) -> Mapping[Any, Any]:
    return types.MappingProxyType(dict(value))


def _as_tuple(value: Any) -> Any:
    """A single name or null where a list of names is expected."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else value


Duration = Annotated[timedelta, BeforeValidator(_duration), PlainSerializer(format_duration)]
Retention = Annotated[
    timedelta | None,
    BeforeValidator(_retention),
    PlainSerializer(lambda v: "-1" if v is None else format_duration(v)),
]
Size = Annotated[int, BeforeValidator(_size), PlainSerializer(format_size)]
Count = Annotated[int, BeforeValidator(_at_least(1))]
FieldType = Annotated[str, BeforeValidator(_field_type)]
"""A catalog field type, canonical (`integer` reads as `long`; see `conveyor.catalog.types`)."""
Names = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]


def _principal(value: str) -> str:
    name = value.removeprefix("User:")
    if not name or any(ch.isspace() for ch in name) or name == "*":
        raise ValueError(f"a Kafka principal name without spaces (and not '*'), got {value!r}")
    return name


Principals = Annotated[
    tuple[Annotated[str, AfterValidator(_principal)], ...], BeforeValidator(_as_tuple)
]
"""Kafka principal names (`User:` prefix optional)."""
AS_DICT = WrapSerializer(lambda value, handler: handler(dict(value)))
_LOWER_NAME = r"[a-z][a-z0-9_]{0,63}"
StreamName = Annotated[
    str,
    AfterValidator(
        _matching(
            _LOWER_NAME, "stream name must be 1-64 of a-z, 0-9 and '_', starting with a letter"
        )
    ),
]
FieldName = Annotated[
    str,
    AfterValidator(
        _matching(r"[A-Za-z_][A-Za-z0-9_]*", "field name must be letters, digits and '_'")
    ),
]
TableName = Annotated[
    str,
    AfterValidator(
        _matching(_LOWER_NAME, "must be 1-64 of a-z, 0-9 and '_', starting with a letter")
    ),
]
TablePath = Annotated[
    str,
    AfterValidator(
        _matching(
            r"[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_-]*)*",
            "must be a relative path of segments of a-z, 0-9, '_' and '-' joined by '/', "
            "e.g. clicks/silver",
        )
    ),
]
TopicName = Annotated[str, AfterValidator(_topic_name)]
