"""A class-data archive (JDK AppCDS) of the classes a Spark driver loads, so each driver starts
without parsing and verifying them again (`benchmarks/driver_start.py`, 2 cores: a driver process
whose first job appends to an empty table 17.1 -> 12.3 s, to one with history 19.2 -> 15.4 s).

`conveyor jars` builds it once per machine with a warm-up job on local files (no servers); a
driver then maps it when it exists. The file name is a digest of what the JVM checks the archive
against (the java binary, Spark's jars and Conveyor's, the JVM options), so a changed JDK or jar
set looks for a new archive instead of warning that the old one no longer fits
(`conveyor.spark.jvm_options.archive_file`). This module builds it; drivers find it through
`jvm_options.driver_java_options`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from conveyor.errors import ConveyorError
from conveyor.settings import Settings
from conveyor.spark.jvm_options import JVM_OPTIONS, archive_file

WARMUP_JOB = Path(__file__).with_name("warmup_job.py")


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
