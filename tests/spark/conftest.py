"""The pure-Spark tier: one local SparkSession (local[2], the Delta jars) over local files, no
servers. Logic whose answer does not depend on HDFS, Kafka or Airflow is proved here, in
`make check`; Delta's behaviour under concurrency stays on the stack's HDFS (tests/integration).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.settings import Settings


@pytest.fixture(scope="session", autouse=True)
def no_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A home of the tier's own, with no stack state: a developer's embedded stack, stopped or
    running, is not what these tests talk to (a stopped one's recorded endpoints made the cdc
    tests here take 2-3x their time)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVEYOR_HOME", str(tmp_path_factory.mktemp("spark-tier-home")))
        yield


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local SparkSession for the tier, its default file system the local one."""
    from conveyor.spark.session import build_session

    root = tmp_path_factory.mktemp("spark-tier")
    session = build_session(Settings(hdfs_uri=f"file://{root}"), "conveyor-spark-tier")
    yield session
    session.stop()


@pytest.fixture
def lake(tmp_path: Path) -> Settings:
    """Settings whose lake and checkpoints are in this test's own local folder."""
    return Settings(hdfs_uri=f"file://{tmp_path}")
