"""Driver start benchmark: a Spark driver's start and first small Delta job, with and without
the class archive that `conveyor jars` builds (`conveyor.spark.class_archive`).

Usage (no stack needed: local files only):
    .venv/bin/python benchmarks/driver_start.py [--rounds 4]

Each round starts fresh Python processes one after the other, with the archive and without it
(the same JVM options otherwise), for two tables: an empty one (the first job creates it) and one
that holds history (HISTORY_COMMITS appends and their checkpoints, written once before the
rounds). Each process builds Conveyor's session, appends 1,000 rows to its table, reads it back,
and stops. Wall seconds are printed per run and as medians; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
parsed = rows.select("id", F.from_json("j", "a long").alias("p"))
parsed.write.format("delta").mode("append").save(path)
spark.read.format("delta").load(path).where("id > 5").count()
done = time.monotonic()
spark.stop()
print(json.dumps({"session_s": started - began, "first_job_s": done - started}))
"""

HISTORY_COMMITS = 40
HISTORY = f"""
from conveyor.settings import Settings
from conveyor.spark.session import build_session
import sys
spark = build_session(Settings(hdfs_uri="file:///"), "driver-start-history")
for _ in range({HISTORY_COMMITS}):
    spark.range(1000).selectExpr("id", "to_json(named_struct('a', id)) AS j").selectExpr(
        "id", "from_json(j, 'a long') AS p"
    ).write.format("delta").mode("append").save("file://" + sys.argv[1])
spark.stop()
"""


def run_once(with_archive: bool, table: str) -> dict[str, float]:
    """One driver process appending to `table` (created if absent), wall seconds of its parts."""
    from conveyor.spark.jvm_options import JVM_OPTIONS

    env = dict(os.environ)
    if not with_archive:  # the settings' extra conf replaces the driver's options
        env["CONVEYOR_SPARK_EXTRA_CONF"] = json.dumps(
            {"spark.driver.extraJavaOptions": JVM_OPTIONS}
        )
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", CHILD, table], env=env, capture_output=True, text=True, check=True
    )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    figures["total_s"] = time.monotonic() - began
    return figures


def main(argv: list[str] | None = None) -> int:
    from conveyor.settings import Settings
    from conveyor.spark.jvm_options import archive_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    archive = archive_file(Settings(hdfs_uri="file:///"))
    if archive is None or not archive.is_file():
        print(f"no class archive at {archive}: run `conveyor jars` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="driver-start-") as work:
        history = f"{work}/history"
        subprocess.run([sys.executable, "-c", HISTORY, history], capture_output=True, check=True)
        print(f"history table: {HISTORY_COMMITS} commits", flush=True)
        runs: dict[tuple[str, str], list[dict[str, float]]] = {}
        for rnd in range(args.rounds):
            for table in ("empty", "history"):
                for mode in ("with archive", "without"):
                    path = history if table == "history" else f"{work}/empty"
                    figures = run_once(mode == "with archive", path)
                    runs.setdefault((table, mode), []).append(figures)
                    print(
                        f"round {rnd + 1} {table:7} {mode:12}  session {figures['session_s']:.1f}s"
                        f"  first job {figures['first_job_s']:.1f}s  process "
                        f"{figures['total_s']:.1f}s",
                        flush=True,
                    )
                    if table == "empty":
                        shutil.rmtree(path, ignore_errors=True)
    for (table, mode), figures in runs.items():
        medians = {k: round(statistics.median(f[k] for f in figures), 1) for k in figures[0]}
        print(f"median {table:7} {mode:12}  {medians}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
