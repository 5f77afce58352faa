"""The tier's driver starts from the class archive `conveyor jars` built, and the archive fits
the classpath Spark's launcher gave that driver (checked by a JVM that must map it or fail)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from conveyor.settings import Settings
from conveyor.spark.jvm_options import archive_file


def test_the_driver_maps_the_class_archive(spark: Any) -> None:
    archive = archive_file(Settings(hdfs_uri="file:///"))
    assert archive is not None and archive.is_file(), f"no class archive at {archive}"
    jvm = spark._jvm
    arguments = list(
        jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()
    )
    assert f"-XX:SharedArchiveFile={archive}" in arguments, arguments
    system = jvm.java.lang.System
    java = Path(system.getProperty("java.home")) / "bin" / "java"
    # -Xshare:on turns "cannot use the archive" from a warning into a failed start
    mapped = subprocess.run(
        [
            str(java),
            "-Xshare:on",
            f"-XX:SharedArchiveFile={archive}",
            *[a for a in arguments if a.startswith("-XX:") and "SharedArchiveFile" not in a],
            "-cp",
            system.getProperty("java.class.path"),
            "-version",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert mapped.returncode == 0, mapped.stderr
