"""The JVM options of Spark's drivers and executors, and where a driver finds its class-data
archive (built by `conveyor.spark.class_archive`)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from conveyor import jars
from conveyor.errors import ConveyorError
from conveyor.settings import Settings

JVM_OPTIONS = "-XX:-DontCompileHugeMethods -XX:+UseParallelGC"
"""Driver and executor JVM options. Spark's generated code for a wide event's parse and checks
has methods over HotSpot's 8000-byte JIT limit, which would otherwise stay interpreted (assess
of 500k clicks 4.7 -> 3.8 s); the throughput collector suits batch work on few cores (bench
drain 15,653 -> 16,587 ev/s, peak RSS 1,937 -> 1,656 MiB; the one-table script gains alike)."""


def _spark_home_jars() -> list[Path]:
    """The jars of the Spark that spark-submit runs ($SPARK_HOME, else PySpark's own)."""
    home = os.environ.get("SPARK_HOME")
    return sorted((Path(home) if home else jars.pyspark_home()).joinpath("jars").glob("*.jar"))


def archive_file(settings: Settings) -> Path | None:
    """Where this installation's archive lives (None when no java is found or the jars are not
    resolved); the file exists only once `conveyor jars` has built it."""
    java = jars.java_binary()
    if java is None:
        return None
    try:
        ours = [*jars.jar_files(settings.jars_dir, "spark"), jars.module_jar(settings.jars_dir)]
    except ConveyorError:
        return None
    digest = hashlib.sha256(JVM_OPTIONS.encode())
    for path in [java.resolve(), *_spark_home_jars(), *ours]:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return settings.jars_dir / "class-archive" / f"spark-driver-{digest.hexdigest()[:16]}.jsa"


C1_ONLY = "-XX:TieredStopAtLevel=1"


def jvm_options(settings: Settings) -> str:
    """JVM_OPTIONS, with C1_ONLY when `spark_jit` is "c1" (executors take these as they are)."""
    return f"{JVM_OPTIONS} {C1_ONLY}" if settings.spark_jit == "c1" else JVM_OPTIONS


def driver_java_options(settings: Settings) -> str:
    """`jvm_options`, plus the class archive when it is built. A driver that runs elsewhere (a
    cluster's deploy mode) does not find the file and starts as without it. The archive does
    not depend on the JIT setting, so both settings map the same one."""
    archive = archive_file(settings)
    if archive is not None and archive.is_file():
        return f"{jvm_options(settings)} -XX:SharedArchiveFile={archive}"
    return jvm_options(settings)
