"""The one way Conveyor builds a SparkSession: Delta + Kafka jars as local files, HDFS from settings.

Jobs in `jobs/`, tests and Airflow tasks all call `build_session`; `spark_submit_args` gives the
same jars and configuration to `spark-submit` (`spark_submit_command` adds this installation's
Spark and Python, for `conveyor spark-submit`), so both paths run identical code.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor import jars
from conveyor.settings import LOOPBACK, Settings
from conveyor.spark import delta_internals
from conveyor.spark.jvm_options import driver_java_options, jvm_options

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_jar_files(settings: Settings) -> list[Path]:
    """The jars Spark gets besides its own: the Kafka source, Delta, Conveyor's module."""
    return [*jars.jar_files(settings.jars_dir, "spark"), jars.module_jar(settings.jars_dir)]


def spark_conf(settings: Settings) -> dict[str, str]:
    """Every Spark setting Conveyor needs (master excluded)."""
    spark_jars = ",".join(str(p) for p in spark_jar_files(settings))
    conf = {
        "spark.jars": spark_jars,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.hadoop.fs.defaultFS": settings.fs_uri,
        "spark.hadoop.dfs.client.use.datanode.hostname": "true",
        # Closing an HDFS file asks the NameNode to complete it; when the DataNode has not yet
        # reported the block, the client retries after this delay (400 ms by default, doubling).
        # Every Delta commit closes a few small files (data, log entry, checksum): with the
        # default, a 100-record batch took 7.31 s from produce to visible, with 10 ms 5.46 s
        # (benchmarks/reports/2026-12-04). The retries it adds are cheap RPCs.
        "spark.hadoop.dfs.client.block.write.locateFollowingBlock.initial.delay.ms": "10",
        # A DataNode lost mid-write: carry on with the pipeline's remaining replicas when no
        # spare DataNode can replace it (HDFS re-replicates later) rather than fail the write.
        "spark.hadoop.dfs.client.block.write.replace-datanode-on-failure.best-effort": "true",
        # No delay scheduling for data locality: a micro-batch's tasks are short, and waiting
        # up to 3 s for a preferred place (a Kafka partition's last reader, an HDFS block's
        # host name) costs more than it saves. In local mode a task whose preference no
        # executor could meet was never offered again once the other tasks had finished: a
        # batch reading cached and HDFS partitions in one stage hung for good.
        "spark.locality.wait": "0s",
        "spark.sql.sources.ignoreDataLocality": "true",
        # A task writing a partitioned table keeps a file open per partition value (up to
        # this many) instead of sorting its rows by the partition columns first.
        "spark.sql.maxConcurrentOutputFileWriters": "64",
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.default.parallelism": str(settings.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # Small Delta logs: rebuilding a snapshot with 50 tasks costs more than it saves here.
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.sql.streaming.stopGracefullyOnShutdown": "true",
        # PySpark 4.2 captures the Python call site of every Column built while this is on
        # (SPARK-50310); a batch builds hundreds, so it costs on every batch.
        "spark.python.sql.dataFrameDebugging.enabled": "false",
        "spark.driver.extraJavaOptions": driver_java_options(settings),
        "spark.executor.extraJavaOptions": jvm_options(settings),
    }
    conf.update(settings.spark_extra_conf)
    return conf


def build_session(settings: Settings, app_name: str) -> SparkSession:
    """Create (or reuse) the SparkSession for app_name. Callers stop it when done. Raises
    DeltaInternalsChanged when the Delta jar lacks an internal Conveyor drives."""
    from pyspark.sql import SparkSession

    # Bind the driver to loopback unless told otherwise (the host name may resolve elsewhere).
    os.environ.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    builder = SparkSession.builder.appName(app_name)
    # Under spark-submit the master comes from --master (or the Airflow connection); only a
    # session started from plain Python takes it from the settings.
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(settings.spark_master)
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    delta_internals.check_members(session)  # one line, before any work, if Delta changed
    return session


@contextmanager
def spark_session(settings: Settings, app_name: str) -> Iterator[SparkSession]:
    """`build_session` for one piece of work: stopped afterwards only if this call started it,
    so a session the caller already runs (a test's, a notebook's) is borrowed, never stopped."""
    from conveyor.spark.jvm import spark_context_running

    already_running = spark_context_running()
    session = build_session(settings, app_name)
    try:
        yield session
    finally:
        if not already_running:
            session.stop()


def spark_submit_args(settings: Settings) -> list[str]:
    """Arguments for `spark-submit` that give a job the same jars and settings."""
    args = ["--master", settings.spark_master]
    for key, value in spark_conf(settings).items():
        if key == "spark.jars":
            args += ["--jars", value]
        else:
            args += ["--conf", f"{key}={value}"]
    return args


def spark_submit_command(
    settings: Settings, args: Sequence[str]
) -> tuple[list[str], dict[str, str]]:
    """The `spark-submit` command line and environment that run `args` (a job file and its
    arguments) with Conveyor's jars and settings, on this installation's Spark and Python
    whatever the caller's PATH. `SPARK_HOME` and `PYSPARK_PYTHON` already set are kept."""
    env = dict(os.environ)
    env.setdefault("SPARK_HOME", str(jars.pyspark_home()))
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", env["PYSPARK_PYTHON"])
    submit = str(Path(env["SPARK_HOME"]) / "bin" / "spark-submit")
    return [submit, *spark_submit_args(settings), *args], env
