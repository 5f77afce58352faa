"""The catalog's field types, how each lands in Delta, and which changes of type Delta can make
in place.

A field type is written in the catalog as one of `string`, `int`, `long`, `float`, `double`,
`decimal(p,s)`, `date`, `timestamp`, `boolean`, `bytes`; the first round's names stay valid as
aliases (`integer` = long, `number` = double). `parse_type` returns the canonical name, so two
spellings of one type compare equal everywhere (plans, messages, the Spark schema).

`widening(old, new)` says whether a column may go from `old` to `new`: the lossless widenings
of Delta's type-widening table feature (Delta 4.x), and why not when it is not one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ALIASES = {"integer": "long", "number": "double"}
SIMPLE = ("string", "int", "long", "float", "double", "date", "timestamp", "boolean", "bytes")
_DECIMAL = re.compile(r"decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)")
MAX_PRECISION = 38
TYPE_HINT = (
    "string, int, long, float, double, decimal(p,s), date, timestamp, boolean or bytes "
    "(integer and number are aliases of long and double)"
)

NUMERIC = frozenset({"int", "long", "float", "double"})
"""Canonical numeric types other than decimals (see `is_numeric`)."""

_SPARK = {
    "string": "string",
    "int": "int",
    "long": "bigint",
    "float": "float",
    "double": "double",
    "date": "date",
    "timestamp": "timestamp",
    "boolean": "boolean",
    "bytes": "binary",
}
_FROM_SPARK = {spark: name for name, spark in _SPARK.items()} | {"long": "long", "integer": "int"}
"""Spark's and the Delta log's names (`integer` is Delta's 32-bit int, not the catalog alias)."""


@dataclass(frozen=True)
class Decimal:
    """A `decimal(precision, scale)` type."""

    precision: int
    scale: int

    @property
    def integer_digits(self) -> int:
        return self.precision - self.scale


def parse_type(text: str) -> str:
    """The canonical name of a catalog type (`integer` -> `long`, `decimal( 10, 2)` ->
    `decimal(10,2)`); raises ValueError naming the types there are."""
    name = text.strip().lower()
    name = ALIASES.get(name, name)
    if name in SIMPLE:
        return name
    match = _DECIMAL.fullmatch(name)
    if match is None:
        raise ValueError(f"must be one of {TYPE_HINT}, got {text!r}")
    precision, scale = int(match[1]), int(match[2])
    if not 1 <= precision <= MAX_PRECISION or scale > precision:
        raise ValueError(
            f"decimal(p,s) needs 1 <= p <= {MAX_PRECISION} and 0 <= s <= p, got {text!r}"
        )
    return f"decimal({precision},{scale})"


def decimal(name: str) -> Decimal | None:
    """The precision and scale of a canonical decimal type, None for any other type."""
    match = _DECIMAL.fullmatch(name)
    return Decimal(int(match[1]), int(match[2])) if match else None


def is_numeric(name: str) -> bool:
    """Numbers in JSON: int, long, float, double and every decimal."""
    return name in NUMERIC or decimal(name) is not None


def spark_type(name: str) -> str:
    """The Spark SQL type a canonical catalog type lands as (`long` -> `bigint`)."""
    return name if decimal(name) else _SPARK[name]


def from_spark(spark_name: str) -> str:
    """The catalog type of a Spark/Delta column type (`bigint` -> `long`); a type the catalog
    cannot declare comes back as Spark names it, so it never equals a catalog type."""
    name = spark_name.strip().lower()
    if _DECIMAL.fullmatch(name):
        return parse_type(name)
    return _FROM_SPARK.get(name, name)


_INTEGER_DIGITS = {"int": 10, "long": 20}
"""Digits a decimal needs before its point to hold every int or long (Delta's minimum)."""


def widening(old: str, new: str) -> str | None:
    """None when `old` -> `new` (both canonical) is one of Delta's lossless widenings, else why
    it is not."""
    if old == new:
        return None
    if (old, new) in {("int", "long"), ("int", "double"), ("float", "double")}:
        return None
    target = decimal(new)
    if target is not None and old in _INTEGER_DIGITS:
        need = _INTEGER_DIGITS[old]
        if target.integer_digits >= need:
            return None
        return (
            f"{article(old)} {old} widens only to a decimal with at least {need} digits before "
            "the point, "
            f"e.g. decimal({need + target.scale},{target.scale})"
        )
    source = decimal(old)
    if source is not None and target is not None:
        more_digits = target.precision - source.precision
        more_scale = target.scale - source.scale
        if more_digits >= more_scale >= 0:
            return None
        return (
            "a decimal widens only when its scale does not shrink and its precision grows at "
            "least as much as its scale"
        )
    if old == "date" and new == "timestamp":
        return (
            "Delta widens a date only to a timestamp without time zone; the catalog's timestamp "
            "has one"
        )
    if is_numeric(old) and is_numeric(new):
        return "it can lose digits (numbers are widened only where every value fits exactly)"
    return f"{article(old)} {old} column cannot become {article(new)} {new} in place"


def article(word: str) -> str:
    """`an` before a vowel (an int), else `a`."""
    return "an" if word[:1] in set("aeiou") else "a"
