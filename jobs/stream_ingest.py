"""Run one catalog stream: Kafka topic into its bronze, silver and quarantine Delta tables.

`conveyor ingest` under spark-submit: the same command with the same arguments.

Usage:
    spark-submit $(conveyor spark-args) jobs/stream_ingest.py STREAM [--available-now]
        [--accept-data-loss] [--catalog conveyor.yaml]

Exit codes: 0 done, 1 failed, 3 Kafka lost data the checkpoint expects (see --accept-data-loss).
A job that seems stuck explains itself: `kill -USR1 <pid of this Python process>` prints every
Python thread's stack to stderr (`kill -QUIT <pid of the spark-submit JVM>`: the JVM's threads).
"""

from __future__ import annotations

import faulthandler
import signal

if __name__ == "__main__":
    from conveyor.cli import run_job

    faulthandler.register(signal.SIGUSR1, all_threads=True)
    run_job(["ingest"])
