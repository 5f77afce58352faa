"""Conveyor's own Spark functions, from its JVM module (`jvm/decode`, built by `conveyor jars`).

They are registered on the session that runs a query, once per session and definition; a
streaming query's batches run on a clone of the session that started it, so callers register
on the session of the frame they build on (`frame.sparkSession`).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

PACKAGE = "dev.conveyor.decode"
WHOLE_JSON = "conveyor_whole_json"
"""whole_json(text STRING) -> BOOLEAN: one JSON value and nothing after it but blanks."""

_registered: dict[str, set[str]] = {}
"""Functions registered, by the JVM session's id (a batch's Python frame wraps the same
session anew each time)."""


def _register(spark: SparkSession, name: str, make: Any) -> str:
    """Register the function `make(jvm)` returns as `name`, with the type its `resultType()`
    names, unless this session already has it."""
    session: Any = spark._jsparkSession
    done = _registered.setdefault(str(session.sessionUUID()), set())
    if name not in done:
        function = make(spark._jvm)
        session.udf().register(name, function, function.resultType())
        done.add(name)
    return name


def whole_json(spark: SparkSession) -> str:
    """Register `conveyor_whole_json` on the session; its name."""
    return _register(spark, WHOLE_JSON, lambda jvm: getattr(jvm, PACKAGE).WholeJson())


def certifier(spark: SparkSession, rules_json: str) -> str:
    """Register the certifier of one set of event rules (see `conveyor.ingest.decode`) on the
    session; its name, which names the rules' digest (another catalog, another function)."""
    digest = hashlib.sha256(rules_json.encode()).hexdigest()[:12]
    name = f"conveyor_certify_{digest}"
    return _register(spark, name, lambda jvm: getattr(jvm, PACKAGE).CleanEventCertifier(rules_json))
