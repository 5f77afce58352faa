"""Delta checkpoints off the commit path: what it costs writers and readers, and what the log
holds.

On the running stack (`conveyor stack up`), two tables get the same small appends through the
ingest's own commit path (`append_idempotent`), one after the other:

- `inline`: Delta's default, a checkpoint written inside every tenth commit (Conveyor before
  2026-12-07);
- `beside`: Conveyor's tables now, `delta.checkpointInterval` 1000 and `Checkpointer` writing
  the checkpoint every ten commits on a thread of its own (`conveyor.spark.delta_checkpoints`).

For each: every commit's time (median, p95, max), a reader's snapshot load of the table
(Spark's `DeltaLog` from a cold cache, delta-rs's `DeltaTable`; medians of five), the
`_delta_log` file count. Then the expired-log cleanup of `beside`: the log files before its
last checkpoint are dated back past the log retention (30 days by default; Delta truncates the
cut-off to the day, so a run of minutes deletes nothing by itself), one more commit is
checkpointed through `checkpoint_now` (`DeltaLog.checkpoint`, as the thread does), and the log
is counted again.

    .venv/bin/python benchmarks/delta_log.py [--commits 60] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

ROWS = 20
"""Rows per append (a small streaming batch)."""
READS = 5
"""Snapshot loads per reader, per table (the median is reported)."""
DAY_S = 86_400
BACKDATE_DAYS = 31


def _frame(spark: Any, commit: int) -> Any:
    from conveyor.spark.frames import local_frame

    rows = [
        (f"e-{commit}-{i}", f"u{i % 7}", datetime.now(UTC), date.today(), "t", i % 4, commit)
        for i in range(ROWS)
    ]
    schema = (
        "event_id string, user_id string, ts timestamp, event_date date, topic string, "
        "partition int, offset bigint"
    )
    return local_frame(spark, rows, schema)


def _log_files(spark: Any, uri: str) -> list[Any]:
    jvm = spark._jvm
    path = jvm.org.apache.hadoop.fs.Path(f"{uri}/_delta_log")
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
    return list(fs.listStatus(path))


def _spark_load_s(spark: Any, uri: str) -> float:
    """A cold snapshot load: Delta's log cache cleared, the table's latest snapshot built."""
    jvm = spark._jvm
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog
    delta_log.clearCache()
    began = time.perf_counter()
    delta_log.forTable(spark._jsparkSession, uri).update(
        False, jvm.scala.Option.empty(), jvm.scala.Option.empty()
    ).version()
    return time.perf_counter() - began


def _deltars_load_s(uri: str) -> float:
    from conveyor.delta_rs import open_table

    began = time.perf_counter()
    table = open_table(uri)
    assert table is not None, uri
    table.version()
    return time.perf_counter() - began


def _table(spark: Any, uri: str, commits: int, *, beside: bool) -> dict[str, Any]:
    from conveyor.spark.delta_checkpoints import Checkpointer
    from conveyor.spark.jvm import append_idempotent

    properties = {"delta.checkpointInterval": "1000"} if beside else {}
    checkpointer = Checkpointer(spark) if beside else None
    seconds: list[float] = []
    try:
        for commit in range(commits):
            frame = _frame(spark, commit)
            began = time.perf_counter()
            version = append_idempotent(
                frame, uri, "bench-delta-log", commit, ["event_date"], properties=properties
            )
            seconds.append(time.perf_counter() - began)
            if checkpointer is not None:
                checkpointer.committed(uri, version)
    finally:
        if checkpointer is not None:
            checkpointer.close(wait=True)
    files = _log_files(spark, uri)
    ordered = sorted(seconds)
    return {
        "commits": commits,
        "commit_median_s": round(statistics.median(seconds), 3),
        "commit_p95_s": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "commit_max_s": round(max(seconds), 3),
        "commit_total_s": round(sum(seconds), 1),
        "spark_load_s": round(
            statistics.median(_spark_load_s(spark, uri) for _ in range(READS)), 3
        ),
        "deltars_load_s": round(statistics.median(_deltars_load_s(uri) for _ in range(READS)), 3),
        "log_files": len(files),
        "checkpoints": sum(".checkpoint." in f.getPath().getName() for f in files),
    }


def _cleanup(spark: Any, uri: str, commits: int) -> dict[str, Any]:
    """Date the log files before the last checkpoint back past the retention, commit once more
    and checkpoint as `Checkpointer` does; the log before and after."""
    from conveyor.spark.delta_checkpoints import _last_checkpoint, checkpoint_now
    from conveyor.spark.jvm import append_idempotent

    last = _last_checkpoint(spark, uri)
    files = _log_files(spark, uri)
    old = int((time.time() - BACKDATE_DAYS * DAY_S) * 1000)
    path_of = spark._jvm.org.apache.hadoop.fs.Path(f"{uri}/_delta_log")
    fs = path_of.getFileSystem(spark._jsc.hadoopConfiguration())
    dated = 0
    for status in files:
        name = status.getPath().getName()
        head = name.split(".", 1)[0]
        if head.isdigit() and int(head) < last:
            fs.setTimes(status.getPath(), old, -1)
            dated += 1
    append_idempotent(
        _frame(spark, commits),
        uri,
        "bench-delta-log",
        commits,
        ["event_date"],
        properties={"delta.checkpointInterval": "1000"},
    )
    checkpointed = checkpoint_now(spark, uri)
    after = _log_files(spark, uri)
    return {
        "last_checkpoint_before": last,
        "files_before": len(files),
        "dated_back": dated,
        "checkpointed_version": checkpointed,
        "files_after": len(after),
    }


def _answers(uri: str) -> bool:
    """Whether the NameNode of `uri` (hdfs://host:port) accepts a connection."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    try:
        with socket.create_connection((parts.hostname or "localhost", parts.port or 8020), 3):
            return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=60)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from conveyor.errors import ConveyorError
    from conveyor.settings import get_settings
    from conveyor.spark.session import build_session

    try:
        settings = get_settings()
        root = f"{settings.lake_uri}/bench_delta_log_{uuid.uuid4().hex[:6]}"
        namenode = settings.fs_uri
    except ConveyorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if not _answers(namenode):  # one line, not a JVM stack trace
        print(
            f"error: HDFS at {namenode} does not answer: is the stack up "
            "(.venv/bin/conveyor stack up)?",
            file=sys.stderr,
        )
        raise SystemExit(2)
    spark = build_session(settings, "bench-delta-log")
    try:
        result: dict[str, Any] = {"at": datetime.now(UTC).isoformat(timespec="seconds")}
        for name, beside in (("inline", False), ("beside", True)):
            result[name] = _table(spark, f"{root}/{name}", args.commits, beside=beside)
            print(name, json.dumps(result[name]), flush=True)
        result["cleanup"] = _cleanup(spark, f"{root}/beside", args.commits)
        print("cleanup", json.dumps(result["cleanup"]), flush=True)
    finally:
        spark.stop()
    beside = result["beside"]
    per_commit = 2  # a commit's JSON and its checksum
    result["day_at_one_commit_per_second"] = {
        "commits": DAY_S,
        "log_files_kept": DAY_S * per_commit + DAY_S // 10,
        "note": "kept for delta.logRetentionDuration (30 days by default) in both modes",
    }
    print(
        f"a day at one commit a second: {DAY_S:,} commits, about "
        f"{DAY_S * per_commit + DAY_S // 10:,} log files (JSON, checksum, a checkpoint every ten) "
        f"until they pass the log retention; this run: {beside['log_files']} files after "
        f"{beside['commits']} commits"
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "delta_log.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
