"""Driver start benchmark: a Spark driver's start and first small Delta job, with and without
the class archive that `conveyor jars` builds (`conveyor.spark.class_archive`).

Usage (no stack needed: local files only):
    .venv/bin/python benchmarks/driver_start.py [--rounds 4]

Each round starts two fresh Python processes one after the other, with the archive and without
it (the same JVM options otherwise); each builds Conveyor's session, writes and reads back a
1,000-row Delta table on local files, and stops. Wall seconds are printed per run and as
medians; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = """
import json, sys, time
began = time.monotonic()
from pyspark.sql import functions as F
from conveyor.settings import Settings
from conveyor.spark.session import build_session
spark = build_session(Settings(hdfs_uri="file:///"), "driver-start-bench")
started = time.monotonic()
path = "file://" + sys.argv[1]
rows = spark.range(1000).select("id", F.to_json(F.struct(F.col("id").alias("a"))).alias("j"))
rows.select("id", F.from_json("j", "a long").alias("p")).write.format("delta").save(path)
spark.read.format("delta").load(path).where("id > 5").count()
done = time.monotonic()
spark.stop()
print(json.dumps({"session_s": started - began, "first_job_s": done - started}))
"""


def run_once(with_archive: bool) -> dict[str, float]:
    from conveyor.spark.class_archive import JVM_OPTIONS

    env = dict(os.environ)
    if not with_archive:  # the settings' extra conf replaces the driver's options
        env["CONVEYOR_SPARK_EXTRA_CONF"] = json.dumps(
            {"spark.driver.extraJavaOptions": JVM_OPTIONS}
        )
    with tempfile.TemporaryDirectory(prefix="driver-start-") as work:
        began = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-c", CHILD, f"{work}/table"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        total = time.monotonic() - began
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["total_s"] = total
    return figures


def main(argv: list[str] | None = None) -> int:
    from conveyor.settings import Settings
    from conveyor.spark.class_archive import archive_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    archive = archive_file(Settings(hdfs_uri="file:///"))
    if archive is None or not archive.is_file():
        print(f"no class archive at {archive}: run `conveyor jars` first", file=sys.stderr)
        return 2
    runs: dict[str, list[dict[str, float]]] = {"with archive": [], "without": []}
    for rnd in range(args.rounds):
        for name in runs:
            figures = run_once(name == "with archive")
            runs[name].append(figures)
            print(
                f"round {rnd + 1} {name:12}  session {figures['session_s']:.1f}s  first job "
                f"{figures['first_job_s']:.1f}s  process {figures['total_s']:.1f}s",
                flush=True,
            )
    for name, figures in runs.items():
        medians = {k: round(statistics.median(f[k] for f in figures), 1) for k in figures[0]}
        print(f"median {name:12}  {medians}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
