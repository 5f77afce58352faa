"""What mirroring a database costs: changes applied per second by MERGE, against the append
path over the very same change records, and the lag from a Postgres commit to silver.

Usage (`conveyor bench --cdc` runs this; no stack may be running, it starts its own):
    .venv/bin/python benchmarks/cdc.py [--keys 100000] [--changes 1000000] [--out DIR]

In a fresh $CONVEYOR_HOME: `stack up --with cdc`, a source table of `--keys` rows mirrored by a
cdc stream (hard deletes, no history), its topic and connector applied, the initial rows
ingested (so silver holds the table before the measured run). Then `--changes` changes commit
in Postgres (70% updates of random keys, 15% deletes, 15% inserts, in transactions of 1,000)
and, once Debezium has put them all in the topic, two drains of that same backlog, one after the
other, each `conveyor ingest <stream> --available-now` as a user runs it (a process):
  - merge:  the cdc stream (MERGE into a silver of `--keys` rows, markers for deletes);
  - append: an append stream over the same topic (the envelope's op and ts_ms as fields), the
    ten-line-script shape of landing change records as rows.
Then the lag run: the continuous ingest of the cdc stream while a writer commits `--rate`
changes/s for `--lag-seconds`; each change's lag is the end of the batch that landed it (the
ledger) minus its commit time in Postgres (source.ts_ms), reported as p50/p99/max.
Correctness gate: silver equals the source table (keys and versions) after the drains.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from bench_cli import run_conveyor

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TABLE = "bench_accounts"
BATCH = 1000


def _catalog(folder: Path) -> Path:
    data = yaml.safe_load((ROOT / "examples/conveyor.cdc.yaml").read_text())
    base = data["streams"]["customers"]
    mirror = {
        **base,
        "topic": {**base["topic"], "name": "bench_changes", "partitions": 4},
        "schema": {
            "fields": {
                "id": {"type": "int", "required": True},
                "balance": {"type": "decimal(12,2)", "required": True},
                "note": {"type": "string"},
                "version": {"type": "int", "required": True},
            }
        },
        "cdc": {"source_table": f"public.{TABLE}", "primary_key": ["id"], "deletes": "hard"},
    }
    append = {
        "topic": {**base["topic"], "name": "bench_changes", "partitions": 4},
        "schema": {
            "event_time": "ts_ms",
            "late_tolerance": "30d",
            "unknown_fields": "drop",
            "fields": {
                "op": {"type": "string", "required": True},
                "ts_ms": {"type": "timestamp", "required": True, "formats": ["epoch_millis"]},
            },
        },
        "tables": {},
        "service_levels": base["service_levels"],
    }
    # two catalogs: a topic belongs to one stream of a catalog, and both read the same topic
    path = folder / "conveyor.yaml"
    path.write_text(yaml.safe_dump({**data, "streams": {"mirror": mirror}}, sort_keys=False))
    appended = {**data, "streams": {"changes_appended": append}}
    (folder / "append.yaml").write_text(yaml.safe_dump(appended, sort_keys=False))
    return path


def _drain(env: dict[str, str], stream: str) -> dict[str, Any]:
    catalog = Path(env["CONVEYOR_CATALOG"])
    if stream == "changes_appended":
        catalog = catalog.with_name("append.yaml")
    began = time.monotonic()
    out = run_conveyor(
        env, "ingest", stream, "--available-now", "--json", "--catalog", str(catalog)
    )
    seconds = time.monotonic() - began
    totals = json.loads(out.strip().splitlines()[-1])
    return {
        "stream": stream,
        "records": totals["rows_read"],
        "batches": totals["batches"],
        "drain_s": round(seconds, 1),
        "records_per_s": round(totals["rows_read"] / seconds) if seconds else 0,
    }


def _topic_records(settings: Any, topic: str) -> int:
    from conveyor.kafka.offsets import kafka_bounds

    return sum(end - start for start, end in kafka_bounds(settings, topic).values())


def _wait(what: str, done: Any, timeout: float) -> None:
    from conveyor.stack.process import wait_until

    wait_until(done, timeout, what=what, interval_s=1)


def _workload(conn: Any, keys: int, changes: int, seed: int) -> dict[str, int]:
    """`changes` changes in transactions of BATCH: 70% updates, 15% deletes, 15% inserts
    (re-inserts of deleted keys first, else new keys), in order. Returns the count of each:
    Debezium writes one record per change and a tombstone per delete."""
    import random

    rng = random.Random(seed)
    live = list(range(1, keys + 1))
    gone: list[int] = []
    next_key = keys + 1
    version = keys
    counts = {"updates": 0, "deletes": 0, "inserts": 0}
    done = 0
    while done < changes:
        # one transaction of BATCH changes, sent in pipeline mode (no round trip per change)
        with conn.transaction(), conn.pipeline(), conn.cursor() as cur:
            for _ in range(min(BATCH, changes - done)):
                roll = rng.random()
                version += 1
                if roll < 0.70 and live:
                    cur.execute(
                        f"UPDATE {TABLE} SET balance = balance + 0.01, version = %s WHERE id = %s",
                        (version, live[rng.randrange(len(live))]),
                    )
                    counts["updates"] += 1
                elif roll < 0.85 and len(live) > 1:
                    key = live.pop(rng.randrange(len(live)))
                    cur.execute(f"DELETE FROM {TABLE} WHERE id = %s", (key,))
                    gone.append(key)
                    counts["deletes"] += 1
                else:
                    key = gone.pop() if gone else next_key
                    next_key += key == next_key
                    cur.execute(
                        f"INSERT INTO {TABLE} (id, balance, note, version) VALUES (%s, 1, 'n', %s)",
                        (key, version),
                    )
                    live.append(key)
                    counts["inserts"] += 1
                done += 1
    return counts


def _lag_run(env: dict[str, str], settings: Any, conn: Any, rate: float, seconds: int) -> dict:
    """p50/p99/max seconds from a change's commit in Postgres to the end of the batch that
    landed it in silver, under the continuous ingest and a steady writer."""
    from conveyor.catalog import ledger_uri, load_catalog
    from conveyor.delta_rs import read_rows

    catalog = load_catalog(Path(env["CONVEYOR_CATALOG"]))
    stream = catalog.stream("mirror")
    log = Path(env["CONVEYOR_HOME"]) / "lag-ingest.log"
    job = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "ingest", "mirror"],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    started = datetime.now(UTC)
    before = max(
        (
            r["batch_id"]
            for r in read_rows(ledger_uri(settings), ["stream", "batch_id"])
            if r["stream"] == "mirror"
        ),
        default=-1,
    )
    try:
        # warm-up: one change, landed by the running job, so the measured changes meet a
        # streaming query that runs (its start, a minute on this machine, is not lag)
        held_before = _topic_records(settings, stream.topic.name)
        # keys the workload left in the table: an UPDATE of a deleted key changes nothing and
        # would never reach Kafka
        ids = [row[0] for row in conn.execute(f"SELECT id FROM {TABLE} ORDER BY id LIMIT 1000")]
        conn.execute(f"UPDATE {TABLE} SET note = 'warm-up' WHERE id = %s", (ids[0],))

        def warm() -> bool:
            rows = read_rows(ledger_uri(settings), ["stream", "batch_id"])
            return any(r["stream"] == "mirror" and r["batch_id"] > before for r in rows)

        _wait("the continuous ingest's first batch", warm, 600)
        began = time.monotonic()
        sent = 0
        with conn.cursor() as cur:
            while time.monotonic() - began < seconds:
                due = int((time.monotonic() - began) * rate)
                while sent < due:
                    cur.execute(
                        f"UPDATE {TABLE} SET note = %s, version = version + 1 WHERE id = %s",
                        (f"lag-{sent}", ids[sent % len(ids)]),
                    )
                    if cur.rowcount != 1:
                        raise SystemExit(
                            f"the lag run's UPDATE of id {ids[sent % len(ids)]} "
                            f"changed {cur.rowcount} rows"
                        )
                    sent += 1
                time.sleep(0.01)  # pacing of the writer, not a wait for a state
        # every change of the run: Debezium publishes a moment after the commit, so the count
        # to wait for is the one sent, not what the topic held when the writer stopped
        end = held_before + 1 + sent
        _wait(
            "Debezium to publish the lag run's changes",
            lambda: _topic_records(settings, stream.topic.name) >= end,
            600,
        )

        def landed() -> bool:
            rows = read_rows(ledger_uri(settings), ["stream", "offsets"])
            done = sum(
                o["end_offset"] - o["start_offset"]
                for r in rows
                if r["stream"] == "mirror"
                for o in r["offsets"]
            )
            return done >= end

        _wait("the lag run's changes in silver", landed, 600)
    finally:
        os.killpg(job.pid, 15)
        job.wait(timeout=120)
    ledger = [
        r
        for r in read_rows(ledger_uri(settings), ["stream", "batch_id", "offsets", "ended_at"])
        if r["stream"] == "mirror" and r["batch_id"] > before
    ]
    lags = _lags(settings, stream, ledger, started)
    lags.sort()

    def pct(p: float) -> float:
        return round(lags[min(len(lags) - 1, int(p * len(lags)))], 2) if lags else float("nan")

    return {
        "rate": rate,
        "seconds": seconds,
        "sent": sent,
        "changes": len(lags),
        "p50_s": pct(0.50),
        "p99_s": pct(0.99),
        "max_s": round(lags[-1], 2) if lags else None,
        "trigger": settings.trigger_interval,
    }


def _lags(settings: Any, stream: Any, ledger: list[dict], since: datetime) -> list[float]:
    """Seconds from each lag-run change's commit (source.ts_ms) to its batch's end."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from conveyor.catalog import Layer, table_uri
    from conveyor.delta_rs import open_table

    table = open_table(table_uri(settings, stream.table(Layer.BRONZE)))
    if table is None:
        return []
    records = (
        table.to_pyarrow_dataset()
        .to_table(
            columns=["partition", "offset", "value"],
            filter=ds.field("ingest_time") >= pa.scalar(since, type=pa.timestamp("us", tz="UTC")),
        )
        .to_pylist()
    )
    lags = []
    for record in records:
        value = record["value"]
        if not value or b'"lag-' not in value:
            continue
        envelope = json.loads(value)
        if envelope.get("op") != "u":
            continue
        for batch in ledger:
            if any(
                o["partition"] == record["partition"]
                and o["start_offset"] <= record["offset"] < o["end_offset"]
                for o in batch["offsets"]
            ):
                lags.append(batch["ended_at"].timestamp() - envelope["source"]["ts_ms"] / 1000)
                break
    return lags


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=100.0, help="lag run: changes/s")
    parser.add_argument("--lag-seconds", type=int, default=120)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or HERE / "results" / datetime.now(UTC).strftime("cdc-%Y%m%dT%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-cdc-") as work:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")},
            "CONVEYOR_HOME": str(Path(work) / "home"),
            "CONVEYOR_CATALOG": str(_catalog(Path(work))),
        }
        os.environ.update(env)
        from conveyor.settings import Settings

        run_conveyor(env, "stack", "up", "--fresh", "--with", "cdc")
        try:
            result = _run(env, Settings(), args, commit)
        finally:
            run_conveyor(env, "stack", "down")
    (out / "results.json").write_text(json.dumps(result, indent=2))
    _print(result)
    print(f"written to {out}")
    return 0 if result["correct"] else 2


def _run(env: dict[str, str], settings: Any, args: argparse.Namespace, commit: str) -> dict:
    import psycopg

    conn = psycopg.connect(**settings.postgres_connection().conninfo(), autocommit=True)
    conn.execute(
        f"CREATE TABLE {TABLE} (id int PRIMARY KEY, balance numeric(12,2) NOT NULL, "
        "note text, version int NOT NULL)"
    )
    conn.execute(
        f"INSERT INTO {TABLE} SELECT g, 100, 'initial', g FROM generate_series(1, %s) g",
        (args.keys,),
    )
    run_conveyor(env, "topics", "apply")
    run_conveyor(env, "cdc", "apply")
    topic = "bench_changes"
    _wait("the snapshot in the topic", lambda: _topic_records(settings, topic) >= args.keys, 1200)
    initial = _drain(env, "mirror")
    # the append stream starts after the snapshot: both drains read the same backlog
    _drain(env, "changes_appended")
    began = time.monotonic()
    counts = _workload(conn, args.keys, args.changes, seed=5)
    workload_s = time.monotonic() - began
    expected = args.keys + args.changes + counts["deletes"]
    _wait(
        "Debezium to publish every change",
        lambda: _topic_records(settings, topic) >= expected,
        3600,
    )
    debezium_s = time.monotonic() - began
    merge = _drain(env, "mirror")
    append = _drain(env, "changes_appended")
    correct = _silver_equals_source(settings, conn)
    lag = _lag_run(env, settings, conn, args.rate, args.lag_seconds)
    conn.close()
    return {
        "commit": commit,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "keys": args.keys,
        "changes": args.changes,
        "workload": counts,
        "postgres_commit_s": round(workload_s, 1),
        "debezium_published_s": round(debezium_s, 1),
        "initial_snapshot_drain": initial,
        "merge": merge,
        "append": append,
        "merge_vs_append": round(merge["records_per_s"] / append["records_per_s"], 3),
        "lag": lag,
        "correct": correct,
    }


def _silver_equals_source(settings: Any, conn: Any) -> bool:
    from conveyor.catalog import Layer, load_catalog, table_uri
    from conveyor.delta_rs import read_rows

    stream = load_catalog(Path(os.environ["CONVEYOR_CATALOG"])).stream("mirror")
    silver = sorted(
        (r["id"], r["version"])
        for r in read_rows(table_uri(settings, stream.table(Layer.SILVER)), ["id", "version"])
    )
    source = sorted(conn.execute(f"SELECT id, version FROM {TABLE}").fetchall())
    return silver == [tuple(r) for r in source]


def _print(result: dict) -> None:
    print(
        f"cdc: {result['changes']} changes over {result['keys']} keys "
        f"(commit {result['commit']}; {json.dumps(result['workload'])})"
    )
    print("| drain | records | batches | drain (s) | records/s |")
    print("|---|---|---|---|---|")
    for name in ("merge", "append"):
        row = result[name]
        print(
            f"| {name} ({row['stream']}) | {row['records']} | {row['batches']} "
            f"| {row['drain_s']} | {row['records_per_s']} |"
        )
    print(f"MERGE / append throughput: {result['merge_vs_append']}")
    lag = result["lag"]
    print(
        f"lag at {lag['rate']} changes/s for {lag['seconds']} s ({lag['changes']} of "
        f"{lag['sent']} changes measured, trigger {lag['trigger']}): p50 {lag['p50_s']} s, "
        f"p99 {lag['p99_s']} s, max {lag['max_s']} s"
    )
    print(f"silver equals the source: {result['correct']}")


if __name__ == "__main__":
    raise SystemExit(main())
