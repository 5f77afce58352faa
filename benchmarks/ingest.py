"""Ingest benchmark: Conveyor side by side with what users would run instead, in one invocation.

Usage (the embedded stack must be up: `conveyor stack up`; `conveyor bench` runs this too):
    .venv/bin/python benchmarks/ingest.py [--events 1000000] [--repeat 3] [--seconds 60]
        [--out benchmarks/results/<time>] [--quick]

One seeded data set of `clicks` events (4 partitions) is produced once; every contender drains
it from the earliest offset into its own Delta table on the same HDFS, in its own process
(`benchmarks/contenders.py`), repeated `--repeat` times in rotating order. Then each table
writer runs live at 25% and 50% of the docs baseline's measured capacity for `--seconds`: a
record's latency is from its Kafka CreateTime (set when it is produced) to the moment a poll of
the table (every 0.25 s, delta-rs) first sees it. Last, a typical query runs on each drained
table before and after compaction. Figures are printed, and written as results.json, report.md
and chart.png under --out; nothing about speed is asserted. The correctness gate is: rows landed
equal events produced, no duplicates (by event id).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
PARTITIONS = 4
POLL_S = 0.25
TIMEOUT_S = 1800.0
CATCH_UP_S = 600.0  # after the live run's last record was sent
HISTORY_APP_ID = "bench-history"
STEADY_RATE = 500  # events/s of the stream whose history silver holds in the steady state
STEADY_HOURS = 4
PLANTED_EVERY = 100  # 1% of the drain's dedup keys already occur in the history


@dataclass(frozen=True)
class Contender:
    """One way of landing the topic: how to start it for a drain and for a live run."""

    name: str
    kind: str  # conveyor | baseline | medallion | deltars | count | parse
    drain_trigger: str | None = None
    live_trigger: str | None = None  # None: no latency run (the ceilings land nothing)

    @property
    def slug(self) -> str:
        return "".join(c if c.isalnum() else "_" for c in self.name)

    @property
    def writes_table(self) -> bool:
        return self.kind in ("conveyor", "baseline", "medallion", "deltars")

    @property
    def time_column(self) -> str:
        return "timestamp" if self.kind == "baseline" else "kafka_timestamp"


OURS = "conveyor's"
"""A live trigger that is Conveyor's default (`CONVEYOR_TRIGGER_INTERVAL` as the settings read
it): Conveyor runs with its settings untouched, the docs' contenders get the same interval."""
CONVEYOR = Contender("conveyor", "conveyor", "available-now", OURS)
BASELINE = Contender("docs-baseline", "baseline", "default", "default")
BASELINE_AT_OUR_TRIGGER = Contender(
    "docs-baseline@conveyor-trigger", "baseline", "available-now", OURS
)
MEDALLION = Contender("docs-medallion", "medallion", "available-now", OURS)
CONTENDERS = (
    CONVEYOR,
    MEDALLION,
    BASELINE,
    BASELINE_AT_OUR_TRIGGER,
    Contender("delta-rs consumer", "deltars", "drain", "5 seconds"),
    Contender("ceiling: count bytes", "count"),
    Contender("ceiling: parse + parquet", "parse"),
)
# `--quick` proves the harness with the fewest processes that still run every contender's code
# path: every contender drains once (the default-trigger docs script is the same script at
# another trigger), the live measurement runs for the two contenders the targets compare (the
# others run live the scripts they drain with, measured the same way), and the steady state's
# drain goes into history only (into empty tables it is the conveyor drain again).
QUICK_SKIPS_LIVE = (BASELINE.name, BASELINE_AT_OUR_TRIGGER.name, "delta-rs consumer")
QUICK_SKIPS_DRAIN = (BASELINE.name,)


# ---------------------------------------------------------------- metering a process tree


def _jvm_image(proc: Any) -> bool:
    """Whether `proc` runs a JVM's executable and its parent is that JVM: a fork not yet exec'd
    (Spark's JVMs start no JVM children)."""
    import psutil

    try:
        parent = proc.parent()
        exe = proc.exe()
        return parent is not None and exe == parent.exe() and exe.endswith("/java")
    except psutil.Error:
        return False


class TreeMeter:
    """Samples a process and all its descendants: CPU seconds (user + system, every process
    ever seen) and the peak of their summed resident memory. A JVM's child that is still the
    JVM's image (caught between the fork and the exec of a command the JVM runs) shares the
    JVM's pages: its resident memory is not counted again."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._root = psutil.Process(pid)
        self._cpu: dict[int, float] = {}
        self.peak_rss = 0
        self.peak_parts: dict[str, int] = {}
        """Each process's resident memory at the peak (name and pid: bytes)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import psutil

        try:
            procs = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return
        parts: dict[str, int] = {}
        for proc in procs:
            try:
                times = proc.cpu_times()
                self._cpu[proc.pid] = max(self._cpu.get(proc.pid, 0.0), times.user + times.system)
                if proc is not self._root and _jvm_image(proc):
                    continue
                parts[f"{proc.name()}:{proc.pid}"] = proc.memory_info().rss
            except psutil.Error:
                continue
        rss = sum(parts.values())
        if rss > self.peak_rss:
            self.peak_rss, self.peak_parts = rss, parts

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self._sample()

    def cpu(self) -> float:
        self._sample()
        return sum(self._cpu.values())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class Running:
    """A contender process: its JSON event lines, its meter, and a clean stop by group."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "contenders.py"), *args],
            stdout=subprocess.PIPE,
            stderr=self._out,
            text=True,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        self.meter = TreeMeter(self.proc.pid)
        self.events: dict[str, dict[str, Any]] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            self.events[event["event"]] = event

    def wait_for(self, event: str, timeout: float = TIMEOUT_S) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while event not in self.events:
            if self.proc.poll() is not None and event not in self.events:
                self._reader.join(timeout=5)
                if event in self.events:
                    break
                raise RuntimeError(
                    f"contender exited ({self.proc.returncode}) before {event!r}: {self.tail()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event!r} from the contender in {timeout:.0f}s")
            time.sleep(POLL_S)  # polling the contender's output, bounded by the deadline
        return self.events[event]

    def stop(self) -> int | None:
        """Let a finishing run end, else stop the process group (TERM, then KILL)."""
        try:
            self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 30)):
                try:
                    os.killpg(self.proc.pid, sig)
                    self.proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
                except ProcessLookupError:
                    break
        self.meter.stop()
        self._out.close()
        return self.proc.returncode

    def tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log.exists() else ""


# ---------------------------------------------------------------- Kafka and the tables


def _producer(settings: Any) -> Any:
    from confluent_kafka import Producer

    return Producer(
        {
            "bootstrap.servers": settings.kafka_servers,
            "linger.ms": 20,
            "acks": "all",
            "enable.idempotence": True,
        }
    )


def create_topic(settings: Any, name: str, partitions: int = PARTITIONS) -> None:
    from kafka.admin import NewTopic

    from conveyor.kafka.clients import admin_client

    with admin_client(settings) as admin:
        admin.create_topics([NewTopic(name, partitions, 1)])


def produce(
    settings: Any,
    topic: str,
    events: Iterator[dict[str, Any]],
    *,
    rate: float | None = None,
    keep_ids: list[str] | None = None,
    live: bool = False,
) -> int:
    """Send events (keyed by user); `rate` in events/s, None as fast as possible. `live`
    stamps each event's time with the moment it is sent, as a live source would (a backlog
    keeps the generator's times, which end about now)."""
    from conveyor.produce import encode

    producer = _producer(settings)
    sent, began = 0, time.monotonic()
    for event in events:
        if rate:
            ahead = sent / rate - (time.monotonic() - began)
            if ahead > 0:
                time.sleep(ahead)  # pacing the producer to the requested rate, not a wait
        if live:
            event = {**event, "ts": datetime.now(UTC).isoformat(timespec="milliseconds")}
        record = encode(event, "user_id")
        while True:
            try:
                producer.produce(topic, key=record.key, value=record.value)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        sent += 1
        if keep_ids is not None:
            keep_ids.append(event["event_id"])
    if producer.flush(60) != 0:
        raise RuntimeError(f"records to {topic} were not all delivered")
    return sent


def table_rows(uri: str) -> int:
    """Rows in a Delta table, from its log's per-file stats (0 before the first commit)."""
    import pyarrow as pa

    from conveyor.delta_rs import open_table

    table = open_table(uri)
    if table is None:
        return 0
    actions = pa.table(table.get_add_actions(flatten=True))
    return int(sum(actions.column("num_records").to_pylist())) if actions.num_rows else 0


def table_figures(uri: str) -> dict[str, Any]:
    """Rows, distinct event ids (duplicates = the difference), files, files per partition."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from conveyor.delta_rs import open_table

    table = open_table(uri)
    if table is None:
        return {"rows": 0, "duplicates": 0, "files": 0, "partitions": 0, "files_per_partition": 0}
    ids = table.to_pyarrow_table(columns=["event_id"]).column("event_id")
    actions = pa.table(table.get_add_actions(flatten=True))
    parts = [c for c in actions.column_names if c.startswith("partition.")]
    keys = (
        {tuple(row[c] for c in parts) for row in actions.select(parts).to_pylist()}
        if parts
        else {()}
    )
    return {
        "rows": len(ids),
        "duplicates": len(ids) - pc.count_distinct(ids).as_py(),
        "files": actions.num_rows,
        "partitions": len(keys),
        "files_per_partition": round(actions.num_rows / max(1, len(keys)), 1),
    }


def layer_figures(uri: str) -> dict[str, int]:
    """Rows, bytes and files of one of Conveyor's tables, from its Delta log."""
    import pyarrow as pa

    from conveyor.delta_rs import open_table

    table = open_table(uri)
    if table is None:
        return {"rows": 0, "bytes": 0, "files": 0}
    actions = pa.table(table.get_add_actions(flatten=True))
    if not actions.num_rows:
        return {"rows": 0, "bytes": 0, "files": 0}
    return {
        "rows": int(sum(actions.column("num_records").to_pylist())),
        "bytes": int(sum(actions.column("size_bytes").to_pylist())),
        "files": actions.num_rows,
    }


class VisibilityPoller:
    """Polls a Delta table; the first time a file is seen, every row in it becomes visible then:
    its latency is that moment minus its Kafka timestamp. Warm-up events are left out."""

    def __init__(self, uri: str, time_column: str, ignore: set[str]) -> None:
        self.uri, self.column, self.ignore = uri, time_column, ignore
        self.latencies: list[float] = []
        self._files: set[str] = set()
        self._version = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.seen = 0

    def start(self) -> VisibilityPoller:
        self._thread.start()
        return self

    def _poll(self) -> None:
        from conveyor.delta_rs import open_table

        table = open_table(self.uri)
        if table is None or table.version() == self._version:
            return
        seen_at = time.time()
        self._version = table.version()
        dataset = table.to_pyarrow_dataset()
        for fragment in dataset.get_fragments():
            if fragment.path in self._files:
                continue
            self._files.add(fragment.path)
            rows = fragment.to_table(columns=["event_id", self.column]).to_pylist()
            for row in rows:
                produced = row[self.column]
                if row["event_id"] in self.ignore or produced is None:
                    continue
                if produced.tzinfo is None:  # Spark's INT96 timestamps come back naive (UTC)
                    produced = produced.replace(tzinfo=UTC)
                self.latencies.append(seen_at - produced.timestamp())
                self.seen += 1

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self._poll()
            except Exception as exc:  # a torn read while a commit lands: poll again
                print(f"  poll of {self.uri}: {exc}", file=sys.stderr)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f}s")
        time.sleep(POLL_S)  # polling for the condition, bounded by the deadline


# ---------------------------------------------------------------- one run of one contender


@dataclass
class Bench:
    """Everything a run shares: settings, names, where tables and logs go."""

    settings: Any
    run_id: str
    out: Path
    lake: str
    events: int
    partitions: int = PARTITIONS
    catalogs: dict[str, Path] = field(default_factory=dict)

    def stream(self, tag: str) -> str:
        """The catalog stream name Conveyor's run `tag` reads (also its ledger partition)."""
        return f"bench_{self.run_id}_{tag}"

    def table(self, contender: Contender, tag: str) -> str:
        return f"{self.lake}/bench/{self.run_id}/{contender.slug}_{tag}"

    def conveyor_catalog(self, topic: str, tag: str) -> tuple[Path, str]:
        """A catalog with one stream reading `topic`, whose tables live under the bench run."""
        import yaml

        from conveyor.settings import project_root

        name = self.stream(tag)
        data = yaml.safe_load((project_root() / "conveyor.yaml").read_text())
        stream = data["streams"]["clicks"]
        stream["topic"] = {**stream["topic"], "name": topic, "partitions": self.partitions}
        stream["tables"] = {
            **stream.get("tables", {}),
            **{
                layer: {
                    **stream.get("tables", {}).get(layer, {}),
                    "path": f"bench/{self.run_id}/conveyor_{tag}/{layer}",
                }
                for layer in ("bronze", "silver", "quarantine")
            },
        }
        data["streams"] = {name: stream}
        path = self.out / "catalogs" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path, f"{self.lake}/bench/{self.run_id}/conveyor_{tag}/silver"

    def start(
        self, contender: Contender, topic: str, tag: str, *, live: bool, expect: int | None
    ) -> tuple[Running, str | None]:
        """Start the contender on `topic`; returns it and the table it lands in (if any)."""
        trigger = contender.live_trigger if live else contender.drain_trigger
        if trigger == OURS and contender.kind != "conveyor":
            trigger = self.settings.trigger_interval
        log = self.out / "logs" / f"{contender.slug}_{tag}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        table = self.table(contender, tag)
        env: dict[str, str] = {}
        if contender.kind == "conveyor":
            # another conveyor contender (a trigger variant) is the same job: its own stream
            # name keeps its checkpoint and tables apart from conveyor's run with the same tag
            if contender.name != CONVEYOR.name:
                tag = f"{contender.slug}_{tag}"
            catalog, table = self.conveyor_catalog(topic, tag)
            args = ["conveyor", "--catalog", str(catalog), "--stream", self.stream(tag)]
            args += [] if live else ["--available-now"]
            if live and trigger and trigger != OURS:
                env["CONVEYOR_TRIGGER_INTERVAL"] = trigger
        elif contender.kind == "medallion":
            catalog, _ = self.conveyor_catalog(topic, tag)
            checkpoint = (
                f"{self.settings.checkpoint_uri}/bench/{self.run_id}/{contender.slug}_{tag}"
            )
            args = [
                "medallion",
                "--catalog",
                str(catalog),
                "--stream",
                f"bench_{self.run_id}_{tag}",
            ]
            args += ["--table", table, "--checkpoint", checkpoint, "--trigger", str(trigger)]
        elif contender.kind == "baseline":
            checkpoint = (
                f"{self.settings.checkpoint_uri}/bench/{self.run_id}/{contender.slug}_{tag}"
            )
            args = [
                "baseline",
                "--topic",
                topic,
                "--table",
                table,
                "--checkpoint",
                checkpoint,
                "--trigger",
                str(trigger),
            ]
        elif contender.kind == "deltars":
            args = ["deltars", "--topic", topic, "--table", table]
            args += ["--wait-s", "5"] if live else ["--expect", str(expect), "--wait-s", "30"]
        else:
            args, table = [contender.kind, "--topic", topic, "--expect", str(expect)], None
        return Running(args, log, env), table


def machine_busy_cpu() -> float:
    """CPU seconds the whole machine has been busy (every process: broker, HDFS, Airflow too)."""
    import psutil

    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def drain(
    bench: Bench,
    contender: Contender,
    topic: str,
    rep: int,
    *,
    tag: str | None = None,
    expect_rows: int | None = None,
) -> dict[str, Any]:
    """Drain the pre-produced topic; throughput from `ready` to the last row visible.
    `expect_rows`: rows the table holds when done (default: the events produced)."""
    tag = tag or f"d{rep}"
    expect_rows = expect_rows or bench.events
    running, table = bench.start(contender, topic, tag, live=False, expect=bench.events)
    try:
        ready = running.wait_for("ready")
        cpu0, machine0 = running.meter.cpu(), machine_busy_cpu()
        if table is None:
            done = running.wait_for("done")
            finished = done["t"]
        else:

            def landed() -> bool:
                exited = running.proc.poll()
                if exited not in (None, 0):
                    raise RuntimeError(f"{contender.name} failed: {running.tail()}")
                # a drain that ended by itself has landed all it will: short is reported as
                # incorrect, not waited for
                return table_rows(table) >= expect_rows or exited == 0

            wait_until(landed, TIMEOUT_S, f"{contender.name} to land {expect_rows} rows")
            finished = time.time()
        cpu, machine_cpu = running.meter.cpu() - cpu0, machine_busy_cpu() - machine0
        if contender.kind == "conveyor":  # its ledger row follows the last table's commit

            def accounted() -> bool:
                return sum(b["rows"] for b in ledger_batches(bench, tag)) >= bench.events

            wait_until(accounted, 300, "Conveyor's ledger to account for every event")
    finally:
        running.stop()
    seconds = finished - ready["t"]
    figures = {
        "seconds": round(seconds, 2),
        "events_per_s": round(bench.events / seconds),
        "cpu_s": round(cpu, 2),
        "events_per_cpu_s": round(bench.events / cpu) if cpu > 0 else None,
        "machine_cpu_s": round(machine_cpu, 2),
        "events_per_machine_cpu_s": round(bench.events / machine_cpu) if machine_cpu else None,
        "peak_rss_mib": round(running.meter.peak_rss / 2**20),
        "peak_rss_parts_mib": {
            name: round(rss / 2**20) for name, rss in running.meter.peak_parts.items()
        },
    }
    if table is not None:
        figures.update(table_figures(table))
        figures["table"] = table
    else:
        figures["rows"] = running.events.get("done", {}).get("records", 0)
        figures["duplicates"] = 0
    if contender.kind == "conveyor":
        figures["batches"] = ledger_batches(bench, tag)
        figures["layers"] = {
            layer: layer_figures(table.rsplit("/", 1)[0] + f"/{layer}")
            for layer in ("bronze", "silver", "quarantine")
        }
    figures["correct"] = figures["rows"] == expect_rows and figures["duplicates"] == 0
    return figures


def ledger_batches(bench: Bench, tag: str) -> list[dict[str, Any]]:
    """Conveyor's own account of the run: per batch its rows, duration and step times."""
    from conveyor.catalog import ledger_uri
    from conveyor.delta_rs import read_rows
    from conveyor.ledger import STEPS

    steps = [f"{step}_ms" for step in STEPS]
    rows = read_rows(
        ledger_uri(bench.settings),
        [
            "kind",
            "app_id",
            "batch_id",
            "rows_read",
            "duplicates_dropped",
            "started_at",
            "ended_at",
            *steps,
        ],
        partitions=[("stream", "=", bench.stream(tag))],
    )
    batches = []
    for row in sorted(rows, key=lambda r: r["started_at"]):
        if row["kind"] != "batch" or row["app_id"] == HISTORY_APP_ID:
            continue
        batches.append(
            {
                "batch_id": row["batch_id"],
                "rows": row["rows_read"],
                "duplicates": row["duplicates_dropped"],
                "ms": round((row["ended_at"] - row["started_at"]).total_seconds() * 1000),
                **{step: row.get(step) for step in steps},
            }
        )
    return batches


def latency(
    bench: Bench, contender: Contender, rate: float, seconds: float, rep: int
) -> dict[str, Any]:
    """Live at `rate` for `seconds`: per-record produce-to-visible latency percentiles."""
    from conveyor.produce import click_events

    tag = f"l{rep}_{int(rate)}"
    topic = f"bench_{bench.run_id}_{contender.slug}_{tag}"
    create_topic(bench.settings, topic)
    running, table = bench.start(contender, topic, tag, live=True, expect=None)
    assert table is not None
    warmup: list[str] = []
    try:
        running.wait_for("ready")
        # the first records also pay for the query's start: they warm up, and are not measured
        produce(bench.settings, topic, click_events(100, seed=rep + 50), keep_ids=warmup, live=True)
        wait_until(lambda: table_rows(table) >= 100, 300, f"{contender.name} to warm up")
        poller = VisibilityPoller(table, contender.time_column, set(warmup)).start()
        count = int(rate * seconds)
        began = time.monotonic()
        produce(bench.settings, topic, click_events(count, seed=rep + 60), rate=rate, live=True)
        produced_s = time.monotonic() - began
        timed_out = False
        try:
            wait_until(lambda: poller.seen >= count, CATCH_UP_S, f"{contender.name} to catch up")
        except TimeoutError:  # reported as such: what was seen is still measured
            timed_out = True
        finally:
            poller.stop()
        # a live job that died meanwhile landed nothing itself: whatever was seen is not its own
        exited = running.proc.poll()
    finally:
        running.stop()
    values = sorted(poller.latencies)
    return {
        "rate": rate,
        "seconds": seconds,
        "produced_rate": round(count / produced_s),
        "events": count,
        "timed_out": timed_out,
        "exited": exited,
        "correct": exited is None and not timed_out and len(values) == count,
        "measured": len(values),
        "p50_s": round(_quantile(values, 0.50), 2),
        "p95_s": round(_quantile(values, 0.95), 2),
        "p99_s": round(_quantile(values, 0.99), 2),
        "max_s": round(values[-1], 2) if values else None,
    }


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


QUERY = (
    "SELECT event_type, count(*) AS events, count(DISTINCT user_id) AS users, "
    "sum(coalesce(revenue, 0)) AS revenue FROM delta.`{uri}` GROUP BY event_type"
)


def query_times(spark: Any, uri: str) -> dict[str, Any]:
    """A typical query's time (best of 2) before and after compacting the table."""
    from delta.tables import DeltaTable

    def best() -> float:
        times = []
        for _ in range(2):
            began = time.monotonic()
            spark.sql(QUERY.format(uri=uri)).collect()
            times.append(time.monotonic() - began)
        return round(min(times), 2)

    before, files_before = best(), len(spark.read.format("delta").load(uri).inputFiles())
    DeltaTable.forPath(spark, uri).optimize().executeCompaction()
    after, files_after = best(), len(spark.read.format("delta").load(uri).inputFiles())
    return {
        "query_s_before": before,
        "query_s_after": after,
        "files_before": files_before,
        "files_after": files_after,
    }


# ---------------------------------------------------------------- steady state, fixed cost


def dense_events(count: int, start: datetime) -> list[dict[str, Any]]:
    """`count` sample clicks re-timed as a stream of STEADY_RATE events/s from `start`."""
    from datetime import timedelta

    from conveyor.produce import click_events

    events = list(click_events(count, seed=3))
    for i, event in enumerate(events):
        moment = start + timedelta(seconds=i / STEADY_RATE)
        event["ts"] = moment.isoformat(timespec="milliseconds")
    return events


def write_history(
    spark: Any, bench: Bench, tag: str, rows: int, end: datetime, planted: list[dict[str, Any]]
) -> None:
    """Silver as a stream at STEADY_RATE leaves it after STEADY_HOURS (`rows` rows ending at
    `end`), written in bulk, plus `planted` (earlier copies of drain events, 30 min older),
    and a ledger row whose newest event time is `end`: the drain's first batch then reads all
    of it in its dedup decision."""
    from datetime import timedelta

    from pyspark.sql import functions as F

    from conveyor.catalog import ledger_uri
    from conveyor.ledger import LedgerEntry, append_entry

    _, silver = bench.conveyor_catalog(f"bench_{bench.run_id}_{tag}", tag)
    start = end - timedelta(hours=STEADY_HOURS)
    step_us = 1_000_000 // STEADY_RATE
    history = spark.range(rows).select(
        F.expr("uuid()").alias("event_id"),
        F.format_string("u%05d", F.col("id") % 200).alias("user_id"),
        F.expr(
            "element_at(array('page_view','click','add_to_cart','purchase'), int(id % 4) + 1)"
        ).alias("event_type"),
        F.format_string("/p/%d", F.col("id") % 50).alias("url"),
        F.timestamp_micros(F.lit(int(start.timestamp() * 1e6)) + F.col("id") * step_us).alias("ts"),
        F.expr("uuid()").alias("session_id"),
        F.lit(None).cast("string").alias("referrer"),
        F.lit("DE").alias("country"),
        F.lit("desktop").alias("device"),
        F.when(F.col("id") % 4 == 3, F.lit(20.0)).alias("revenue"),
        (F.col("id") % bench.partitions).cast("int").alias("partition"),
        F.col("id").alias("offset"),
    )
    copies = spark.createDataFrame(
        [
            (
                e["event_id"],
                e["user_id"],
                e["event_type"],
                e["url"],
                datetime.fromisoformat(e["ts"]) - timedelta(minutes=30),
                e["session_id"],
                e.get("referrer"),
                e["country"],
                e["device"],
                e.get("revenue"),
                i % bench.partitions,
                rows + i,
            )
            for i, e in enumerate(planted)
        ],
        history.schema,
    )
    topic = f"bench_{bench.run_id}_{tag}.history"  # earlier records: never the same coordinates
    (
        history.unionByName(copies)
        .select(
            "event_id",
            "user_id",
            "event_type",
            "url",
            "ts",
            "session_id",
            "referrer",
            "country",
            "device",
            "revenue",
            F.to_date("ts").alias("event_date"),
            F.lit(topic).alias("topic"),
            "partition",
            "offset",
            F.col("ts").alias("kafka_timestamp"),
            F.col("ts").alias("ingest_time"),
        )
        .repartition(48, "event_date", "partition")
        .write.format("delta")
        .partitionBy("event_date")
        .save(silver)
    )
    now = datetime.now(UTC)
    append_entry(
        ledger_uri(bench.settings),
        LedgerEntry(
            stream=bench.stream(tag),
            kind="batch",
            app_id=HISTORY_APP_ID,
            batch_id=0,
            started_at=now,
            ended_at=now,
            max_event_time=end,
        ),
    )


def steady_state(bench: Bench, history_rows: int, *, empty: bool = True) -> dict[str, Any]:
    """Conveyor draining the same dense backlog twice: into empty tables (unless not `empty`),
    and into a silver that already holds STEADY_HOURS of history (with 1% of the backlog's keys
    in it)."""
    from datetime import timedelta

    from conveyor.spark.session import build_session

    topic = f"bench_{bench.run_id}_dense"
    create_topic(bench.settings, topic, bench.partitions)
    start = datetime.now(UTC) - timedelta(seconds=bench.events / STEADY_RATE)
    events = dense_events(bench.events, start)
    produce(bench.settings, topic, iter(events))
    planted = events[::PLANTED_EVERY]
    spark = build_session(bench.settings, "bench-history")
    try:
        began = time.monotonic()
        write_history(spark, bench, "s1", history_rows, start, planted)
        written_s = time.monotonic() - began
    finally:
        spark.stop()
    print(f"steady state: {history_rows + len(planted):,} rows of history in {written_s:.0f}s")
    into_empty = drain(bench, CONVEYOR, topic, 0, tag="s0") if empty else None
    steady = drain(bench, CONVEYOR, topic, 0, tag="s1", expect_rows=history_rows + bench.events)
    found = sum(b["duplicates"] for b in steady["batches"])
    steady["correct"] = steady["correct"] and found == len(planted)
    return {
        "history_rows": history_rows + len(planted),
        "history_written_s": round(written_s, 1),
        "planted_duplicates": len(planted),
        "duplicates_found": found,
        "empty": into_empty,
        "steady": steady,
    }


def fixed_cost(bench: Bench, rounds: int = 7, size: int = 100) -> dict[str, Any]:
    """Batches of `size` records into warm tables, measured from outside: a live job with a
    zero trigger interval (a batch starts as soon as records arrive); each round produces
    `size` records and polls silver until they are all visible."""
    from conveyor.produce import click_events

    topic = f"bench_{bench.run_id}_fixed"
    create_topic(bench.settings, topic, bench.partitions)
    catalog, table = bench.conveyor_catalog(topic, "f0")
    log = bench.out / "logs" / "conveyor_fixed_cost.log"
    args = ["conveyor", "--catalog", str(catalog), "--stream", bench.stream("f0")]
    running = Running(args, log, {"CONVEYOR_TRIGGER_INTERVAL": "0 seconds"})
    seconds: list[float] = []
    try:
        running.wait_for("ready")
        for i in range(rounds + 1):  # the first round creates the tables: warm-up
            before = table_rows(table)
            began = time.monotonic()
            produce(bench.settings, topic, click_events(size, seed=200 + i), live=True)
            wait_until(lambda n=before: table_rows(table) >= n + size, 300, "a small batch")
            if i:
                seconds.append(time.monotonic() - began)
    finally:
        running.stop()
    batches = ledger_batches(bench, "f0")[1:]
    return {
        "size": size,
        "rounds": rounds,
        "visible_s": [round(x, 3) for x in seconds],
        "median_visible_s": round(statistics.median(seconds), 3),
        "median_batch_ms": statistics.median(b["ms"] for b in batches) if batches else None,
        "batches": batches,
    }


def single_events(
    bench: Bench, count: int = 60, gap_s: tuple[float, float] = (3.0, 8.0), idle_s: float = 60.0
) -> dict[str, Any]:
    """Lone events into a running `conveyor ingest` with its default settings, measured from
    outside: each produced 3-8 s after the last was visible (at random, so the trigger's
    phase is random) and timed from its Kafka CreateTime to the poll of silver that first sees
    it. Before them, with the tables warm, the job's CPU over `idle_s` with nothing to read."""
    import random

    from conveyor.produce import click_events

    topic = f"bench_{bench.run_id}_single"
    create_topic(bench.settings, topic, bench.partitions)
    # its own tag: "s0" is the steady state's drain into empty tables (a run with both landed
    # the lone events in that stream's tables, behind its million rows)
    catalog, table = bench.conveyor_catalog(topic, "one")
    log = bench.out / "logs" / "conveyor_single_events.log"
    running = Running(["conveyor", "--catalog", str(catalog), "--stream", bench.stream("one")], log)
    rng = random.Random(35)
    warm: list[str] = []
    try:
        running.wait_for("ready")
        produce(bench.settings, topic, click_events(20, seed=300), keep_ids=warm, live=True)
        wait_until(lambda: table_rows(table) >= 20, 300, "the warm-up events")
        cpu, began = running.meter.cpu(), time.monotonic()
        time.sleep(idle_s)  # the measuring interval of the idle job's CPU, not a wait
        idle_cores = (running.meter.cpu() - cpu) / (time.monotonic() - began)
        poller = VisibilityPoller(table, CONVEYOR.time_column, set(warm)).start()
        try:
            events = click_events(count, seed=301)
            for i in range(count):
                time.sleep(rng.uniform(*gap_s))  # the random phase against the trigger
                produce(bench.settings, topic, iter([next(events)]), live=True)
                wait_until(lambda n=i: poller.seen > n, 120, f"lone event {i + 1} in silver")
        finally:
            poller.stop()
    finally:
        running.stop()
    values = sorted(poller.latencies)
    return {
        "events": count,
        "measured": len(values),
        "median_s": round(statistics.median(values), 2),
        "p99_s": round(_quantile(values, 0.99), 2),
        "max_s": round(values[-1], 2),
        "visible_s": [round(v, 2) for v in poller.latencies],
        "idle_s": idle_s,
        "idle_cpu_cores": round(idle_cores, 4),
    }


def partition_scaling(bench: Bench, partitions: int) -> dict[str, Any]:
    """The drain's events into a topic of `partitions` partitions, drained by Conveyor: its
    cost per event beside the main drain's."""
    from conveyor.produce import click_events

    topic = f"bench_{bench.run_id}_p{partitions}"
    create_topic(bench.settings, topic, partitions)
    produce(bench.settings, topic, click_events(bench.events, seed=1))
    scaled = Bench(bench.settings, bench.run_id, bench.out, bench.lake, bench.events, partitions)
    drained = drain(scaled, CONVEYOR, topic, 0, tag=f"p{partitions}")
    # the drain's own "partitions" counts the table's partitions: the topic's win here
    return {**drained, "table_partitions": drained.get("partitions"), "partitions": partitions}


# ---------------------------------------------------------------- the whole run


def summarise(samples: list[float | None]) -> dict[str, Any]:
    values = [v for v in samples if v is not None]
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def machine(settings: Any) -> dict[str, Any]:
    import importlib.metadata as md

    import psutil

    versions = {
        p: md.version(p)
        for p in ("pyspark", "delta-spark", "deltalake", "kafka-python", "confluent-kafka")
    }
    return {
        "cores": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "spark_master": settings.spark_master,
        **versions,
    }


def save(result: dict[str, Any], out: Path) -> None:
    """results.json as it stands (a run cut short keeps what it measured)."""
    (out / "results.json").write_text(json.dumps(result, indent=2))


def run(args: argparse.Namespace) -> dict[str, Any]:
    from conveyor.produce import click_events
    from conveyor.settings import get_settings

    settings = get_settings()
    bench = Bench(
        settings, uuid.uuid4().hex[:6], args.out, settings.lake_uri, args.events, args.partitions
    )
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "args": {
            "events": args.events,
            "repeat": args.repeat,
            "seconds": args.seconds,
            "quick": args.quick,
            "partitions": args.partitions,
            "max_offsets_per_trigger": settings.max_offsets_per_trigger,
            "trigger_interval": settings.trigger_interval,
            "idle_before_cores": args.idle_before,
        },
        "machine": machine(settings),
        "drain": {},
        "latency": {},
        "query": {},
    }
    topic = f"bench_{bench.run_id}"
    create_topic(settings, topic, args.partitions)
    began = time.monotonic()
    produce(settings, topic, click_events(args.events, seed=1))
    print(
        f"produced {args.events} events to {topic} in {time.monotonic() - began:.1f}s", flush=True
    )

    chosen = [c for c in CONTENDERS if c.name in args.contenders]
    drained = [
        c
        for c in chosen
        if (c.drain_trigger or not c.live_trigger)  # not live-only
        and not (args.quick and c.name in QUICK_SKIPS_DRAIN)
    ]
    for rep in range(args.repeat):
        order = drained[rep % len(drained) :] + drained[: rep % len(drained)]
        for contender in order:
            figures = drain(bench, contender, topic, rep)
            result["drain"].setdefault(contender.name, []).append(figures)
            save(result, args.out)
            print(
                f"drain {rep + 1}/{args.repeat} {contender.name:30} "
                f"{figures['events_per_s']:>8} ev/s  {figures['events_per_cpu_s']} ev/cpu-s  "
                f"rows {figures['rows']}  dup {figures['duplicates']}",
                flush=True,
            )

    if args.skip_latency:
        rates = []
    elif args.rates:
        rates = [round(r) for r in args.rates]
    else:
        # the live rates are shares of the docs script's drain rate (default trigger if drained)
        docs = result["drain"].get(BASELINE.name) or result["drain"][BASELINE_AT_OUR_TRIGGER.name]
        capacity = summarise([f["events_per_s"] for f in docs])
        rates = [round(capacity["median"] * share) for share in args.shares]
    result["latency_rates"] = rates
    live = [c for c in chosen if c.live_trigger and not (args.quick and c.name in QUICK_SKIPS_LIVE)]
    for rep in range(args.latency_repeat):
        order = live[rep % len(live) :] + live[: rep % len(live)]
        for rate in rates:
            for contender in order:
                figures = latency(bench, contender, rate, args.seconds, rep)
                result["latency"].setdefault(f"{contender.name}@{rate}", []).append(figures)
                save(result, args.out)
                print(
                    f"latency {rep + 1}/{args.latency_repeat} {contender.name:30} {rate:>7}/s "
                    f"p50 {figures['p50_s']}s p99 {figures['p99_s']}s "
                    f"({figures['measured']}/{figures['events']}, sent at "
                    f"{figures['produced_rate']}/s{', TIMED OUT' if figures['timed_out'] else ''}"
                    f"{'' if figures['exited'] is None else ', THE JOB EXITED'})",
                    flush=True,
                )

    if args.steady_state_rows:
        result["steady_state"] = steady_state(bench, args.steady_state_rows, empty=not args.quick)
        save(result, args.out)
        s = result["steady_state"]
        print(
            f"steady state: empty {(s['empty'] or {}).get('events_per_s', '-')} ev/s, with "
            f"{s['history_rows']:,} rows of history {s['steady']['events_per_s']} ev/s, "
            f"{s['duplicates_found']}/{s['planted_duplicates']} planted duplicates found",
            flush=True,
        )
    if args.fixed_cost_rounds:
        result["fixed_cost"] = fixed_cost(bench, args.fixed_cost_rounds)
        save(result, args.out)
        print(f"fixed cost: {result['fixed_cost']['median_visible_s']}s per 100 records")
    if args.single_events:
        result["single_events"] = single_events(
            bench, args.single_events, idle_s=5.0 if args.quick else 60.0
        )
        save(result, args.out)
        s = result["single_events"]
        print(
            f"lone events: median {s['median_s']}s, p99 {s['p99_s']}s, max {s['max_s']}s "
            f"({s['measured']}/{s['events']}); idle job {s['idle_cpu_cores']:.3f} cores",
            flush=True,
        )
    if args.scaling_partitions:
        result["scaling"] = partition_scaling(bench, args.scaling_partitions)
        save(result, args.out)
        print(
            f"{args.scaling_partitions} partitions: {result['scaling']['events_per_s']} ev/s, "
            f"{result['scaling']['events_per_cpu_s']} ev/cpu-s",
            flush=True,
        )

    from conveyor.spark.session import build_session

    spark = build_session(settings, "bench-queries")
    try:
        for contender in drained:
            if contender.writes_table:
                last = result["drain"][contender.name][-1]
                result["query"][contender.name] = query_times(spark, last["table"])
    finally:
        spark.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="drains per contender")
    parser.add_argument("--latency-repeat", type=int, default=None, help="default: --repeat")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each live run")
    parser.add_argument(
        "--shares",
        type=float,
        nargs="+",
        default=[0.25, 0.5],
        help="live rates, as shares of the docs baseline's drain throughput",
    )
    parser.add_argument(
        "--rates",
        type=float,
        nargs="+",
        default=None,
        help="live rates in events/s (instead of --shares)",
    )
    parser.add_argument(
        "--contenders",
        nargs="+",
        default=[c.name for c in CONTENDERS],
        choices=[c.name for c in CONTENDERS],
        metavar="NAME",
        help="run only these (default: all)",
    )
    parser.add_argument("--skip-latency", action="store_true", help="drains only, no live runs")
    parser.add_argument("--partitions", type=int, default=PARTITIONS, help="of every topic")
    parser.add_argument(
        "--steady-state-rows",
        type=int,
        default=STEADY_RATE * STEADY_HOURS * 3600,
        help="rows of silver history for the steady-state drains (0: skip them)",
    )
    parser.add_argument(
        "--fixed-cost-rounds",
        type=int,
        default=7,
        help="100-record batches into warm tables, timed from outside (0: skip)",
    )
    parser.add_argument(
        "--single-events",
        type=int,
        default=60,
        help="lone events produced 3-8 s apart into a running ingest (0: skip)",
    )
    parser.add_argument(
        "--scaling-partitions",
        type=int,
        default=16,
        help="also drain the events from a topic with this many partitions (0: skip)",
    )
    parser.add_argument(
        "--idle-before",
        type=float,
        default=None,
        help="an idle ingest's CPU (cores) measured before a change, for the idle target",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: proves the harness works")
    args = parser.parse_args(argv)
    if args.quick:
        args.events, args.repeat, args.seconds, args.shares = 3000, 1, 6.0, [0.1]
        args.steady_state_rows = min(args.steady_state_rows, 20_000)
        args.fixed_cost_rounds = min(args.fixed_cost_rounds, 2)
        args.single_events = min(args.single_events, 2)
        args.scaling_partitions = 0
    args.latency_repeat = args.latency_repeat or args.repeat
    docs = {BASELINE.name, BASELINE_AT_OUR_TRIGGER.name} & set(args.contenders)
    if not args.rates and not args.skip_latency and not docs:
        parser.error(
            f"without {BASELINE.name!r} (at either trigger), give the live rates with --rates"
        )
    args.out = args.out or HERE / "results" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    args.out.mkdir(parents=True, exist_ok=True)

    from bench_report import write_report

    from conveyor.errors import ConveyorError

    try:
        result = run(args)
    except ConveyorError as exc:  # no stack up, a wrong setting: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2
    save(result, args.out)
    write_report(result, args.out)
    print((args.out / "report.md").read_text())
    print(f"written to {args.out}")
    failed = [n for n, runs in result["drain"].items() if not all(r["correct"] for r in runs)]
    if failed:
        print(f"CORRECTNESS GATE FAILED: {', '.join(failed)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    raise SystemExit(main())
