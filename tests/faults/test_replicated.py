"""Faults on a replicated stack, each under load (a producer and the stream running), each
followed by an exact count: every acknowledged event once in silver (by event id) and in bronze
(by Kafka coordinates), bronze equal to what Kafka holds, at most one commit per table and
batch, and delta-rs reading what Spark reads.

The tests share one stream and one producer (module fixtures) and run in file order. Each prints
a `fault figures` line (time from the fault to the next committed batch, records in flight at
the fault, end counts); they also go to test-artifacts/fault-figures.jsonl for the README.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conveyor.catalog import Catalog, Layer, ledger_uri, load_catalog, table_uri
from conveyor.delta_rs import read_rows
from conveyor.kafka.clients import client_options
from conveyor.settings import Settings, project_root
from conveyor.stack.local import LocalStack
from conveyor.stack.process import process_state, wait_for, wait_until
from tests.catalogs import provision
from tests.jobs import kill_group, start_ingest_job

FIGURES = project_root() / "test-artifacts" / "fault-figures.jsonl"


# ---------------------------------------------------------------- the load


@dataclass
class Load:
    """A producer thread sending orders (acks=all, idempotent) at `rate` per second while
    running; it remembers every event Kafka acknowledged, with its coordinates."""

    settings: Settings
    topic: str
    rate: float = 60.0
    acked: dict[str, tuple[int, int]] = field(default_factory=dict)
    sent: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    _running: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._running.set()
        self._thread = threading.Thread(target=self._produce, name="fault-load", daemon=True)
        self._thread.start()

    def resume(self) -> None:
        self._running.set()

    def pause(self) -> None:
        """Stop sending and wait until every send in flight is acknowledged or failed."""
        self._running.clear()
        wait_until(
            lambda: self._idle.is_set(), 120, what="the producer to flush its sends in flight"
        )

    def close(self) -> None:
        self._stop.set()
        self._running.set()
        if self._thread:
            self._thread.join(timeout=120)

    def acked_now(self) -> int:
        with self._lock:
            return len(self.acked)

    def _produce(self) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(
            **client_options(self.settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=20,
            request_timeout_ms=15000,
            delivery_timeout_ms=300000,
        )
        try:
            while not self._stop.is_set():
                if not self._running.is_set():
                    producer.flush()
                    self._idle.set()
                    self._running.wait()
                    continue
                self._idle.clear()
                began = time.monotonic()
                for _ in range(max(1, int(self.rate / 10))):
                    self._send(producer)
                # pacing the producer to its rate, not a wait for a state
                time.sleep(max(0.0, 0.1 - (time.monotonic() - began)))
            producer.flush()
        finally:
            producer.close()

    def _send(self, producer: Any) -> None:
        event_id = str(uuid.uuid4())
        user = f"u{uuid.uuid4().int % 500:05d}"
        value = {
            "event_id": event_id,
            "user_id": user,
            "event_type": "purchase",
            "url": "/checkout",
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "revenue": 12.5,
        }
        self.sent.add(event_id)
        future = producer.send(self.topic, key=user.encode(), value=json.dumps(value).encode())

        def done(meta: Any) -> None:
            with self._lock:
                self.acked[event_id] = (meta.partition, meta.offset)

        future.add_callback(done)
        future.add_errback(lambda exc: self.failed.append(f"{event_id}: {exc}"))

    _idle: threading.Event = field(default_factory=threading.Event)


# ---------------------------------------------------------------- the belt


@dataclass
class Belt:
    """The stream under test: its catalog, the running ingest job and the load on its topic."""

    settings: Settings
    spark: Any
    catalog: Catalog
    name: str
    log: Path
    load: Load
    job: subprocess.Popen[bytes] | None = None

    @property
    def topic(self) -> str:
        return self.catalog.stream(self.name).topic.name

    def start_job(self) -> None:
        self.job = start_ingest_job(
            self.settings,
            self.catalog,
            self.name,
            self.log,
            {"CONVEYOR_TRIGGER_INTERVAL": "2 seconds"},
        )

    def job_alive(self) -> bool:
        return self.job is not None and self.job.poll() is None

    def kill_job(self) -> None:
        if self.job_alive():
            assert self.job is not None
            kill_group(self.job)

    def ledger(self) -> list[dict[str, Any]]:
        """The stream's ledger rows, through delta-rs (no Spark, no lock)."""
        return read_rows(
            ledger_uri(self.settings),
            ["batch_id", "app_id", "rows_read", "kind"],
            partitions=[("stream", "=", self.name)],
        )

    def landed(self) -> tuple[int, int]:
        """(batches, records read) of every batch fully landed (the ledger row is its last
        write); (-1, -1) while the lake cannot be read."""
        try:
            rows = [r for r in self.ledger() if r["kind"] == "batch"]
        except Exception:
            return -1, -1
        return len(rows), sum(int(r["rows_read"]) for r in rows)

    def in_kafka(self) -> int:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(**client_options(self.settings))
        try:
            partitions = [
                TopicPartition(self.topic, p) for p in consumer.partitions_for_topic(self.topic)
            ]
            ends = consumer.end_offsets(partitions)
            starts = consumer.beginning_offsets(partitions)
            return sum(ends[p] - starts[p] for p in partitions)
        finally:
            consumer.close()

    def next_batch_after(self, batches: int, timeout: float, what: str) -> float:
        """Seconds until the ledger has more than `batches` batch rows."""
        began = time.monotonic()
        wait_until(lambda: self.landed()[0] > batches, timeout, what=what, interval_s=0.5)
        return round(time.monotonic() - began, 1)

    def just_committed(self) -> tuple[int, int]:
        """With the load on, wait for a batch to commit (the start of the next one's writes):
        (batches landed, records acknowledged but not landed: in flight)."""
        self.load.resume()
        batches, _ = self.landed()
        self.next_batch_after(batches, 120, "a batch to start the fault on")
        batches, landed = self.landed()
        return batches, self.load.acked_now() - landed

    def settle(self, timeout: float = 300) -> None:
        """Pause the load and wait until the stream has landed everything Kafka holds."""
        self.load.pause()
        total = self.in_kafka()
        wait_until(
            lambda: self.landed()[1] == total,
            timeout,
            what=f"the stream to land all {total} records of {self.topic}",
            interval_s=1,
        )

    def assert_exactly_once(self) -> dict[str, int]:
        """The end counts after a fault (and the seconds the check took); fails on a lost or
        doubled event or commit."""
        began = time.monotonic()
        assert not self.load.failed, self.load.failed[:3]
        stream = self.catalog.stream(self.name)
        silver = self.spark.read.format("delta").load(
            table_uri(self.settings, stream.table(Layer.SILVER))
        )
        ids = [r["event_id"] for r in silver.select("event_id").collect()]
        assert len(ids) == len(set(ids)), "an event landed twice in silver"
        acked = dict(self.load.acked)
        missing = set(acked) - set(ids)
        assert not missing, f"{len(missing)} acknowledged events are not in silver"
        assert set(ids) <= self.load.sent, "silver holds an event nobody sent"
        bronze = self.spark.read.format("delta").load(
            table_uri(self.settings, stream.table(Layer.BRONZE))
        )
        coordinates = {(r["partition"], r["offset"]) for r in bronze.collect()}
        in_kafka = self.in_kafka()
        assert bronze.count() == len(coordinates) == in_kafka, "bronze differs from Kafka"
        assert set(acked.values()) <= coordinates, "an acknowledged record is not in bronze"
        quarantine = self.spark.read.format("delta").load(
            table_uri(self.settings, stream.table(Layer.QUARANTINE))
        )
        assert quarantine.count() == 0, "a valid order went to quarantine"
        for layer in (Layer.BRONZE, Layer.SILVER):
            uri = table_uri(self.settings, stream.table(layer))
            log = self.spark.read.json(f"{uri}/_delta_log/*.json")
            per_batch = log.where("txn IS NOT NULL").groupBy("txn.appId", "txn.version").count()
            assert per_batch.where("count > 1").count() == 0, f"{layer}: a batch committed twice"
        # an independent reader agrees
        rust_ids = read_rows(table_uri(self.settings, stream.table(Layer.SILVER)), ["event_id"])
        assert sorted(r["event_id"] for r in rust_ids) == sorted(ids)
        ledger = self.ledger()
        assert sum(int(r["rows_read"]) for r in ledger if r["kind"] == "batch") == in_kafka
        checked_in = round(time.monotonic() - began, 1)
        return {
            "acknowledged": len(acked),
            "in_kafka": in_kafka,
            "silver": len(ids),
            "check_s": checked_in,
        }


def figures(fault: str, **values: Any) -> None:
    line = json.dumps({"fault": fault, **values})
    print(f"fault figures: {line}")
    FIGURES.parent.mkdir(exist_ok=True)
    with FIGURES.open("a") as out:
        out.write(line + "\n")


@pytest.fixture(scope="module")
def belt(
    stack: dict[str, Any], spark: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Belt]:
    settings = Settings()
    folder = tmp_path_factory.mktemp("belt")
    # written by conftest before the stack started (its Airflow parses the DAGs with it)
    catalog = load_catalog(Path(os.environ["CONVEYOR_CATALOG"]))
    provision(settings, catalog)
    name = catalog.stream_names[0]
    load = Load(settings, catalog.stream(name).topic.name)
    belt = Belt(settings, spark, catalog, name, folder / "job.log", load)
    load.start()
    belt.start_job()
    try:
        belt.next_batch_after(0, 300, "the stream's first batch")
        yield belt
    finally:
        load.close()
        belt.kill_job()


def _stack() -> LocalStack:
    return LocalStack(Settings())


def _leaders(settings: Settings, topic: str) -> dict[int, tuple[int, list[int]]]:
    """partition -> (leader node id, in-sync node ids)."""
    from conveyor.kafka.clients import admin_client

    with admin_client(settings) as admin:
        described = admin.describe_topics([topic])[0]
    return {
        p["partition_index"]: (p["leader_id"], sorted(p["isr_nodes"]))
        for p in described["partitions"]
    }


def _log_tail(belt: Belt) -> str:
    return belt.log.read_text(errors="replace")[-3000:]


# ---------------------------------------------------------------- 1. a partition leader dies


def test_a_killed_partition_leader_moves_producer_and_stream_on(belt: Belt) -> None:
    # one kill -9 of partition 0's leader proves the failover; a second leader's (the earlier
    # version of this test) proved it again at 80 s of the fault tier
    stack = _stack()
    belt.load.resume()
    leader = _leaders(belt.settings, belt.topic)[0][0]
    name = f"kafka-{leader - 1}"
    batches, landed = belt.landed()
    in_flight = belt.load.acked_now() - landed
    stack.kill_component(name)
    recovered = belt.next_batch_after(batches, 180, f"a batch after {name} was killed")
    assert belt.job_alive(), _log_tail(belt)
    # the producer carries on too: more acknowledgements arrive with the leader gone
    acked = belt.load.acked_now()
    wait_until(lambda: belt.load.acked_now() > acked, 60, what="acks from the new leader")
    stack.start_component(name)
    # the restarted broker rejoins and catches up: back in every partition's ISR
    wait_until(
        lambda: all(leader in isr for _, isr in _leaders(belt.settings, belt.topic).values()),
        180,
        what=f"{name} back in the in-sync replicas",
        interval_s=1,
    )
    figures(f"kill -9 leader {name}", to_next_batch_s=recovered, records_in_flight=in_flight)
    belt.settle()
    assert belt.job_alive(), _log_tail(belt)
    figures("leaders: end counts", **belt.assert_exactly_once())


# ---------------------------------------------------------------- 2. a DataNode dies mid-batch


def test_a_datanode_killed_mid_batch_changes_nothing(belt: Belt) -> None:
    stack = _stack()
    batches, in_flight = belt.just_committed()
    stack.kill_component("datanode-1")
    recovered = belt.next_batch_after(batches, 240, "a batch after datanode-1 was killed")
    # the tables stay readable by an independent reader with the DataNode gone
    stream = belt.catalog.stream(belt.name)
    for layer in (Layer.BRONZE, Layer.SILVER):
        assert read_rows(table_uri(belt.settings, stream.table(layer)), ["event_id"])
    assert belt.job_alive(), _log_tail(belt)
    stack.start_component("datanode-1")
    belt.settle()
    assert belt.job_alive(), _log_tail(belt)
    figures(
        "kill -9 datanode-1",
        to_next_batch_s=recovered,
        records_in_flight=in_flight,
        **belt.assert_exactly_once(),
    )


# ---------------------------------------------------------------- 5. a compaction dies


def test_a_compaction_killed_mid_optimize_is_taken_over(belt: Belt, tmp_path: Path) -> None:
    import sys

    from conveyor.maintenance.lock import lock_uri
    from conveyor.spark.jvm import HadoopFiles

    silver = belt.catalog.stream(belt.name).table(Layer.SILVER).name
    belt.load.resume()
    lock = lock_uri(belt.settings, silver, "compact")
    files = HadoopFiles(belt.spark)
    log = tmp_path / "compact.log"
    env = {**os.environ, "CONVEYOR_CATALOG": str(belt.catalog.source)}
    command = [sys.executable, "-m", "conveyor.cli", "compact", silver, "--force", "--include-open"]
    with log.open("ab") as out:
        first = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    # killed while it holds the lease (written in full), i.e. inside its OPTIMIZE
    wait_for(
        lambda: '"pid"' in (files.read_text(lock) or "") or first.poll() is not None,
        180,
        what="the compaction lease",
    )
    assert first.poll() is None, log.read_text()[-3000:]
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=60)
    assert files.exists(lock), "the killed compaction's lease should be left behind"
    batches, _ = belt.landed()
    belt.next_batch_after(batches, 120, "a batch after the killed compaction")
    assert belt.job_alive(), _log_tail(belt)
    # the next compaction sees the dead owner, takes the lease and completes
    began = time.monotonic()
    second = subprocess.run(
        [*command, "--json"], capture_output=True, text=True, env=env, timeout=600
    )
    assert second.returncode == 0, second.stdout + second.stderr
    report = json.loads(second.stdout)
    assert report[0]["status"] == "done", report
    assert not files.exists(lock)
    belt.settle()
    assert belt.job_alive(), _log_tail(belt)
    figures(
        "kill -9 compaction",
        takeover_and_compaction_s=round(time.monotonic() - began, 1),
        **belt.assert_exactly_once(),
    )


# ---------------------------------------------------------------- 4. the scheduler dies


def _lease(belt: Belt) -> dict[str, Any] | None:
    from conveyor.maintenance.lock import lock_uri
    from conveyor.spark.jvm import HadoopFiles

    text = HadoopFiles(belt.spark).read_text(lock_uri(belt.settings, belt.name, "checkpoint"))
    return json.loads(text) if text else None


def test_a_killed_scheduler_leaves_one_ingest_on_the_checkpoint_and_the_next_run_lands_the_rest(
    belt: Belt, stack: dict[str, Any]
) -> None:
    import sys

    from conveyor.airflow_api import DONE_STATES, AirflowApi

    local = _stack()
    api = AirflowApi(stack["airflow_url"], stack["airflow_user"], stack["airflow_password"])
    dag_id = "conveyor_ingest"
    wait_for(lambda: api.dag(dag_id), 180, what=f"{dag_id} to be parsed")
    belt.kill_job()  # the DAG ingests now; the killed job's lease names a dead process
    stale = _lease(belt)
    belt.load.resume()
    first_run = api.trigger(dag_id, {"logical_date": None, "note": "fault test: scheduler"})
    api.set_paused(dag_id, False)
    try:
        # the DAG's driver took the checkpoint lease over from the killed job: it is ingesting
        holder = wait_for(
            lambda: (
                (lease := _lease(belt))
                and (stale is None or lease["token"] != stale["token"])
                and lease
            ),
            300,
            what="the DAG's ingest to take the checkpoint lease",
        )
        batches, landed = belt.landed()
        in_flight = belt.load.acked_now() - landed
        local.kill_component("airflow-scheduler")
        began = time.monotonic()
        orphaned = process_state(int(holder["pid"])) not in (None, "Z")
        if orphaned:
            # the task's own process group outlives the scheduler: its driver keeps the
            # checkpoint, and a second ingest ends at once naming it
            second = subprocess.run(
                [sys.executable, "-m", "conveyor.cli", "ingest", belt.name, "--available-now"],
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert second.returncode == 1, second.stdout + second.stderr
            message = " ".join(second.stderr.split())
            assert f"stream '{belt.name}' is already being ingested" in message, message
            assert f"pid {holder['pid']}" in message, message
        local.start_component("airflow-scheduler")
        recovered = belt.next_batch_after(batches, 600, "a batch after the scheduler died")
        run = wait_for(
            lambda: (r := api.run(dag_id, first_run))["state"] in DONE_STATES and r,
            900,
            what=f"run {first_run} to end after the scheduler restart",
        )
        # the next run lands the rest: all the producer sent until now
        belt.load.pause()
        next_run = api.trigger(dag_id, {"logical_date": None, "note": "fault test: next run"})
        ended = wait_for(
            lambda: (r := api.run(dag_id, next_run))["state"] in DONE_STATES and r,
            900,
            what=f"run {next_run} to end",
        )
    finally:
        api.set_paused(dag_id, True)
    assert ended["state"] == "success", ended
    belt.settle()
    figures(
        "kill -9 airflow-scheduler during conveyor_ingest",
        driver_orphaned=orphaned,
        first_run=run["state"],
        to_next_batch_s=recovered,
        records_in_flight=in_flight,
        scheduler_restart_to_landed_s=round(time.monotonic() - began, 1),
        **belt.assert_exactly_once(),
    )
    belt.start_job()  # the stream runs on for the faults that follow


# ---------------------------------------------------------------- 3. the NameNode dies


def _error_lines(belt: Belt, since: int) -> list[str]:
    """The job's `error: ...` lines (its one-line answer) written after byte `since` of its log."""
    text = belt.log.read_bytes()[since:].decode(errors="replace")
    return [line for line in text.splitlines() if line.startswith("error: ")]


def test_a_killed_namenode_stops_the_stream_which_resumes_after_it(belt: Belt) -> None:
    stack = _stack()
    batches, in_flight = belt.just_committed()
    since = belt.log.stat().st_size
    began = time.monotonic()
    stack.kill_component("namenode")
    job = belt.job
    assert job is not None
    wait_until(lambda: job.poll() is not None, 300, what="the stream to stop without HDFS")
    stopped_after = round(time.monotonic() - began, 1)
    errors = _error_lines(belt, since)
    assert job.returncode != 0 and errors, _log_tail(belt)
    assert "HDFS is unreachable: the NameNode at 127.0.0.1:" in errors[-1], errors
    stack.start_component("namenode")
    belt.start_job()
    recovered = belt.next_batch_after(batches, 300, "a batch after the NameNode came back")
    belt.settle()
    assert belt.job_alive(), _log_tail(belt)
    figures(
        "kill -9 namenode",
        stream_stopped_after_s=stopped_after,
        restart_to_next_batch_s=recovered,
        records_in_flight=in_flight,
        **belt.assert_exactly_once(),
    )


# ---------------------------------------------------------------- 6. an HDFS quota is reached


def test_a_namespace_quota_stops_the_stream_clearly_and_raising_it_lands_the_rest(
    belt: Belt,
) -> None:
    """A namespace quota (files and folders), not a space quota: HDFS charges an open file a
    whole block times its replication (128 MB x 3) against a space quota, so a space quota hits
    at an unpredictable point of a batch; a namespace quota is hit by the n-th new file."""
    jvm = belt.spark.sparkContext._jvm
    silver = table_uri(belt.settings, belt.catalog.stream(belt.name).table(Layer.SILVER))
    path = jvm.org.apache.hadoop.fs.Path(silver)
    fs = path.getFileSystem(belt.spark.sparkContext._jsc.hadoopConfiguration())
    dont_set = jvm.java.lang.Long.MAX_VALUE
    summary = fs.getContentSummary(path)
    used = summary.getFileCount() + summary.getDirectoryCount()
    belt.load.resume()
    batches, _ = belt.landed()
    since = belt.log.stat().st_size
    fs.setQuota(path, used + 8, dont_set)  # room for a batch or two (3 names per commit)
    began = time.monotonic()
    job = belt.job
    assert job is not None
    try:
        wait_until(lambda: job.poll() is not None, 300, what="the stream to hit the quota")
    finally:
        fs.setQuota(path, -1, dont_set)  # -1: remove the quota
    errors = _error_lines(belt, since)
    assert job.returncode != 0 and errors, _log_tail(belt)
    assert "HDFS refused a write, a quota was reached: The NameSpace quota" in errors[-1], errors
    assert silver.split("://", 1)[1].split("/", 1)[1] in errors[-1], errors
    stopped_after = round(time.monotonic() - began, 1)
    batches_now, _ = belt.landed()
    belt.start_job()
    recovered = belt.next_batch_after(batches_now, 300, "a batch after the quota was raised")
    belt.settle()
    figures(
        "namespace quota reached",
        stream_stopped_after_s=stopped_after,
        batches_before_the_quota_hit=batches_now - batches,
        restart_to_next_batch_s=recovered,
        **belt.assert_exactly_once(),
    )
