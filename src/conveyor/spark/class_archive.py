"""A class-data archive (JDK AppCDS) of the classes a Spark driver loads, so each driver starts
without parsing and verifying them again (`benchmarks/driver_start.py`, 2 cores: a driver process
whose first job appends to an empty table 17.1 -> 12.3 s, to one with history 19.2 -> 15.4 s).

`conveyor jars` builds it once per machine with a warm-up job on local files (no servers); a
driver then maps it when it exists. The file name is a digest of what the JVM checks the archive
against (the java binary, Spark's jars and Conveyor's, the JVM options), so a changed JDK or jar
set looks for a new archive instead of warning that the old one no longer fits.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

from conveyor import jars
from conveyor.errors import ConveyorError
from conveyor.settings import Settings

JVM_OPTIONS = "-XX:-DontCompileHugeMethods -XX:+UseParallelGC"
"""Driver and executor JVM options. Spark's generated code for a wide event's parse and checks
has methods over HotSpot's 8000-byte JIT limit, which would otherwise stay interpreted (assess
of 500k clicks 4.7 -> 3.8 s); the throughput collector suits batch work on few cores (bench
drain 15,653 -> 16,587 ev/s, peak RSS 1,937 -> 1,656 MiB; the one-table script gains alike)."""

WARMUP_JOB = Path(__file__).with_name("warmup_job.py")


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


def build(settings: Settings) -> str:
    """Build the archive unless it exists: 'reused', 'built' or 'skipped: <why>'. Takes about a
    minute (the warm-up job, then the JVM writing the classes it loaded) and ~200 MB; a build
    that fails (no disk space, say) is reported as skipped, never raised."""
    archive = archive_file(settings)
    if archive is None:
        return "skipped: no java found or the spark jars are not resolved"
    if archive.is_file():
        return "reused"
    try:
        return _build(settings, archive)
    except (OSError, subprocess.SubprocessError, ConveyorError) as exc:
        # an optimisation only: drivers start as before without it
        return f"skipped: {exc}"


def _build(settings: Settings, archive: Path) -> str:
    from conveyor.spark.session import spark_submit_command

    archive.parent.mkdir(parents=True, exist_ok=True)
    for stale in archive.parent.glob("spark-driver-*"):
        stale.unlink()  # built for another JDK or jar set, or a build that did not finish
    partial = archive.with_suffix(".partial")
    # the warm-up runs on local files only (no HDFS, no broker), its driver dumping what it loaded
    dump = {"spark.driver.extraJavaOptions": f"{JVM_OPTIONS} -XX:ArchiveClassesAtExit={partial}"}
    local = settings.model_copy(update={"hdfs_uri": "file:///", "spark_extra_conf": dump})
    with tempfile.TemporaryDirectory(prefix="conveyor-class-archive-") as work:
        command, env = spark_submit_command(local, [str(WARMUP_JOB), str(Path(work) / "lake")])
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=900, check=False
        )
        if result.returncode != 0 or not partial.is_file():
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-20:])
            raise ConveyorError(f"the Spark class archive's warm-up job failed:\n{tail}")
        os.replace(partial, archive)  # whole or not at all, for drivers starting meanwhile
    return "built"
