"""The secured-stack tests: SASL_SSL Kafka with ACLs, HDFS permissions, secrets that never leak.

They are their own pytest run (`make test` runs them after tests/integration), so the secured
stack never shares the machine with another: the session `stack` fixture of tests/conftest.py
starts `stack up --secure` because of the variable set here. Spark's event log is on for every
Spark process of the run (the CLI's and the DAGs' spark-submits), so the secret scan of it is
not vacuous. The catalog under test lets the `producer` principal write its topics.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from tests.catalogs import catalog_variant

EVENT_LOG = Path(tempfile.mkdtemp(prefix="conveyor-secure-events-"))


def _producers(data: dict[str, object]) -> None:
    streams = data["streams"]
    assert isinstance(streams, dict)
    for spec in streams.values():
        spec["topic"]["access"] = {"producers": ["producer"]}


def pytest_configure(config: pytest.Config) -> None:
    os.environ["CONVEYOR_STACK_SECURE"] = "true"
    folder = Path(tempfile.mkdtemp(prefix="conveyor-secure-"))
    catalog = catalog_variant(folder, edit=_producers)
    os.environ["CONVEYOR_CATALOG"] = str(catalog.source)
    os.environ["CONVEYOR_SPARK_EXTRA_CONF"] = json.dumps(
        {"spark.eventLog.enabled": "true", "spark.eventLog.dir": EVENT_LOG.as_uri()}
    )
