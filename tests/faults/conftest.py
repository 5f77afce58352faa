"""The fault tests run on a replicated stack: three Kafka nodes and three DataNodes.

They are their own pytest run (`make test` runs them after tests/integration), so the replicated
stack never shares this 2-core machine with the single-node one: the session `stack` fixture of
tests/conftest.py starts the topology these variables ask for. The catalog under test is written
before the stack starts, so its Airflow parses `conveyor_ingest` with the stream under test.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from conveyor.settings import project_root
from tests.catalogs import catalog_variant

REPLICATED_CATALOG = project_root() / "examples" / "conveyor.replicated.yaml"


def pytest_configure(config: pytest.Config) -> None:
    os.environ["CONVEYOR_STACK_BROKERS"] = "3"
    os.environ["CONVEYOR_STACK_DATANODES"] = "3"
    folder = Path(tempfile.mkdtemp(prefix="conveyor-faults-"))
    catalog = catalog_variant(folder, source=REPLICATED_CATALOG)
    os.environ["CONVEYOR_CATALOG"] = str(catalog.source)
    # a task whose supervisor died with the scheduler is noticed after a minute, not five
    os.environ["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] = "60"
    os.environ["AIRFLOW__SCHEDULER__ORPHANED_TASKS_CHECK_INTERVAL"] = "30"
