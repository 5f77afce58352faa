"""Shared test plumbing: one embedded stack per test run, on free ports, in a temp home.

The `stack` fixture starts real Kafka, HDFS and Airflow once (session scope) and stops them by
process group at the end. It points CONVEYOR_HOME and the Airflow environment of this process
at that stack, so library code, `dag.test()` and subprocesses all see the same endpoints.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.settings import Settings, project_root

REPO = project_root()
# py4j says goodbye from a finalizer after pytest has closed its streams
logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def stack_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conveyor-home")


@pytest.fixture(scope="session")
def stack(stack_home: Path) -> Iterator[dict[str, object]]:
    """The running embedded stack's status (endpoints, credentials)."""
    from conveyor.stack.local import LocalStack

    os.environ["CONVEYOR_HOME"] = str(stack_home)
    # The tests' spark-submits run short (a batch or two), where C1 alone beats tiered
    # compilation (README, Performance); set before Airflow starts, so the DAGs' spark-submits
    # inherit it. The run's one long-lived session (`spark`) keeps tiered: measured both ways.
    os.environ.setdefault("CONVEYOR_SPARK_JIT", "c1")
    local = LocalStack(Settings())
    try:
        status = local.up()
        os.environ.update(local.airflow_env())
        # The stack keeps Airflow's connections in its metadata database. A task finds them
        # through Airflow; this process, which calls hooks directly, reads the database as
        # Airflow's own servers do (the stack never passes this on to its components).
        os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "server"
        yield status
    finally:
        local.down()


@pytest.fixture
def settings(stack: dict[str, object]) -> Settings:
    """Settings resolving endpoints from the running test stack."""
    return Settings()


@pytest.fixture(scope="session")
def spark(stack: dict[str, object]) -> Iterator[object]:
    """One SparkSession for the run (local[2]), with the Delta and Kafka jars; it lives for the
    whole run, so it compiles hot code fully (tiered), unlike the short spark-submits."""
    from conveyor.spark.session import build_session

    session = build_session(Settings(spark_jit="tiered"), "conveyor-tests")
    yield session
    session.stop()


@pytest.fixture
def artifacts_dir() -> Path:
    folder = REPO / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder
