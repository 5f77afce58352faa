"""Table maintenance against the real HDFS, Spark and a running stream: compaction never changes
data nor disturbs the stream, two compactions never race, VACUUM keeps the safe retention, and
the DAG and the CLI do what they say."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor.catalog import Catalog, Layer, TableRef, checkpoint_uri, table_uri
from conveyor.ingest.stream import ingest_stream
from conveyor.maintenance import (
    CompactOptions,
    LockHeld,
    RunStatus,
    VacuumOptions,
    VacuumRefused,
    compact_table,
    find_table,
    maintenance_log_uri,
    plan_compaction,
    table_stats,
    vacuum_table,
)
from conveyor.maintenance.lock import (
    CheckpointHeld,
    Lease,
    checkpoint_lease,
    lock_uri,
    table_lock,
)
from conveyor.produce import click_events, encode, send_events
from conveyor.settings import Settings
from conveyor.spark.jvm import HadoopFiles
from conveyor.stack.process import wait_until
from tests.catalogs import catalog_variant, provision, stream_named
from tests.conftest import REPO
from tests.jobs import kill_group, start_ingest_job, thread_dumps
from tests.polling import eventually

SILVER_COLUMNS = "event_id STRING, user_id STRING, event_type STRING, ts TIMESTAMP, event_date DATE"
LOG_ERRORS = re.compile(r"\bERROR\b|Traceback|StreamingQueryException|Concurrent\w+Exception")


def _days_ago(days: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=days)


def _write_small_files(spark: Any, uri: str, day: date, files: int, seed: int) -> None:
    """`files` small Parquet files in the `day` partition, in one commit."""
    start = datetime.combine(day, time(8), UTC)
    rows = [
        (e["event_id"], e["user_id"], e["event_type"], datetime.fromisoformat(e["ts"]), day)
        for e in click_events(files * 20, seed=seed, start=start)
    ]
    frame = spark.createDataFrame(rows, SILVER_COLUMNS).repartition(files)
    frame.write.format("delta").mode("append").partitionBy("event_date").save(uri)


def _content(spark: Any, uri: str, version: int) -> tuple[int, int]:
    """(rows, order-independent checksum of every column) at a version."""
    from pyspark.sql import functions as F

    frame = spark.read.format("delta").option("versionAsOf", version).load(uri)
    row = frame.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.pmod(F.xxhash64(*frame.columns), F.lit(1_000_000_007))).alias("h"),
    ).first()
    return int(row["n"]), int(row["h"] or 0)


def _files(spark: Any, uri: str, version: int, partitions: list[str]) -> set[str]:
    """Referenced files at a version, in the given partitions (`event_date=...`)."""
    found = spark.read.format("delta").option("versionAsOf", version).load(uri).inputFiles()
    return {f for f in found if any(f"/{p}/" in f for p in partitions)}


def _commit_actions(spark: Any, uri: str, version: int) -> Any:
    return spark.read.json(f"{uri}/_delta_log/{version:020d}.json")


def _assert_rewrite_only(spark: Any, uri: str, version: int) -> None:
    """The commit is an OPTIMIZE whose adds and removes all carry dataChange=false."""
    actions = _commit_actions(spark, uri, version)
    info = actions.where("commitInfo IS NOT NULL").select("commitInfo.operation").first()
    assert info["operation"] == "OPTIMIZE"
    for kind in ("add", "remove"):
        rows = actions.where(f"{kind} IS NOT NULL").select(f"{kind}.dataChange").collect()
        flags = {r[0] for r in rows}
        assert flags == {False}, f"{kind} actions of version {version}: dataChange {flags}"


def _commits_spanning(spark: Any, uri: str, version: int) -> int:
    """Commits after `version` whose transaction read the table before it: they were under
    way while `version` committed (Delta checked them against it for conflicts)."""
    files = HadoopFiles(spark)
    spanning = 0
    for later in range(version + 1, version + 4):
        path = f"{uri}/_delta_log/{later:020d}.json"
        if not files.exists(path):
            break
        info = _commit_actions(spark, uri, later).where("commitInfo IS NOT NULL")
        info = info.select("commitInfo.*")
        read = info.select("readVersion").first() if "readVersion" in info.columns else None
        if read is not None and read[0] is not None and int(read[0]) < version:
            spanning += 1
    return spanning


def _log_rows(spark: Any, settings: Settings, table: str) -> list[Any]:
    frame = spark.read.format("delta").load(maintenance_log_uri(settings))
    return sorted(frame.where(frame.table == table).collect(), key=lambda r: r["started_at"])


def _start_job(
    settings: Settings, catalog: Catalog, name: str, log: Path
) -> subprocess.Popen[bytes]:
    env = {
        "CONVEYOR_TRIGGER_INTERVAL": "1 second",
        # several small files per micro-batch, so the test needs fewer batches per cycle
        "CONVEYOR_SPARK_SHUFFLE_PARTITIONS": "6",
        "CONVEYOR_SPARK_EXTRA_CONF": json.dumps(
            {"spark.sql.adaptive.coalescePartitions.enabled": "false"}
        ),
    }
    return start_ingest_job(settings, catalog, name, log, env)


@pytest.fixture
def clicks(settings: Settings, tmp_path: Path) -> tuple[Catalog, str, TableRef]:
    catalog = catalog_variant(tmp_path / "catalog")
    name = stream_named(catalog, "clicks")
    return catalog, name, catalog.stream(name).table(Layer.SILVER)


# Each compaction needs a round of small files; at the shipped 10 per round the test spends
# most of its time waiting for batches. Four still makes every round a real rewrite of several
# files while the stream appends.
MIN_SMALL_FILES = 4
COMPACTION_CYCLES = 3


def _fewer_small_files(data: dict[str, Any]) -> None:
    for spec in data["streams"].values():
        spec["tables"]["maintenance"]["min_small_files"] = MIN_SMALL_FILES


def test_compactions_never_disturb_a_running_stream(
    settings: Settings, spark: Any, tmp_path: Path
) -> None:
    catalog = catalog_variant(tmp_path / "catalog", edit=_fewer_small_files)
    name = stream_named(catalog, "clicks")
    ref = catalog.stream(name).table(Layer.SILVER)
    provision(settings, catalog)
    uri = table_uri(settings, ref)
    tolerance = catalog.stream(name).event_schema.late_tolerance
    produced: list[dict[str, Any]] = []
    stop = threading.Event()

    def until_stopped() -> Iterator[Any]:
        # event times a month back: their partitions are closed while the stream appends
        start = datetime.combine(_days_ago(30), time(), UTC)
        for event in click_events(100_000, seed=70, start=start):
            if stop.is_set():
                return
            produced.append(event)
            yield encode(event, "user_id")

    producer = threading.Thread(
        target=send_events,
        args=(settings, catalog.stream(name).topic.name, until_stopped()),
        kwargs={"rate": 25.0},
    )
    log = tmp_path / "job.log"
    producer.start()
    job = _start_job(settings, catalog, name, log)

    seen: list[str] = ["no table yet"]

    def compactable() -> bool:
        assert job.poll() is None, f"the stream stopped:\n{log.read_text()[-3000:]}"
        stats = table_stats(settings, ref)
        if stats is None:
            return False
        plan = plan_compaction(stats, ref.maintenance, tolerance, datetime.now(UTC))
        seen[0] = f"version {stats.version}: " + ", ".join(
            f"{p.label} {p.small_files}/{p.files} small" for p in stats.partitions
        )
        return bool(plan.partitions)  # a closed partition with MIN_SMALL_FILES small files

    checkpoint = checkpoint_uri(settings, name, "ingest")
    lake = HadoopFiles(spark)

    def silver_files() -> set[str]:
        return {f.uri for f in lake.data_files(uri)}

    def running_batch() -> int:
        """The id of the micro-batch in progress (offsets logged, not committed), else -1."""
        started = [int(n) for n in lake.files_in(f"{checkpoint}/offsets") if n.isdigit()]
        done = [int(n) for n in lake.files_in(f"{checkpoint}/commits") if n.isdigit()]
        return max(started, default=-1) if max(started, default=-1) > max(done, default=-1) else -1

    cycles = []
    try:
        # three cycles, each started as a batch writes silver: two plain, one Z-ordered (ten
        # proved nothing more)
        for cycle in range(COMPACTION_CYCLES):
            try:
                wait_until(compactable, 300, what="small files", interval_s=2)
            except TimeoutError:
                pytest.fail(
                    f"no closed partition reached {MIN_SMALL_FILES} small files before cycle {cycle + 1} in "
                    f"300s; last seen {seen[0]}; job log:\n{log.read_text()[-2000:]}\n"
                    f"thread dumps:\n{thread_dumps(job, log)}"
                )
            # start as the next batch writes its silver files (before it commits them), so the
            # compaction and the stream's silver append overlap
            current = max(running_batch(), 0)
            try:
                wait_until(
                    lambda b=current: running_batch() > b,
                    120,
                    what="the next micro-batch",
                    interval_s=0.2,
                )
                known = silver_files()
                wait_until(
                    lambda k=known: bool(silver_files() - k),
                    120,
                    what="the micro-batch's silver files",
                    interval_s=0.1,
                )
            except TimeoutError as exc:
                pytest.fail(f"cycle {cycle + 1}: {exc}; thread dumps:\n{thread_dumps(job, log)}")
            run = compact_table(
                spark, settings, catalog, ref, CompactOptions(zorder=cycle % 3 == 2)
            )
            assert run.status == RunStatus.DONE, run.message
            assert run.version_before is not None and run.version_after is not None
            committed = run.version_after
            # the OPTIMIZE commit changed no row: same content just before and at it
            assert _content(spark, uri, committed - 1) == _content(spark, uri, committed)
            _assert_rewrite_only(spark, uri, committed)
            # files the stream appended meanwhile are not the compaction's doing
            planned = _files(spark, uri, run.version_before, run.partitions)
            appended = _files(spark, uri, committed - 1, run.partitions) - planned
            after = _files(spark, uri, committed, run.partitions) - appended
            assert len(planned) >= MIN_SMALL_FILES * len(after), (cycle, len(planned), len(after))
            cycles.append(
                {
                    "cycle": cycle + 1,
                    "op": run.operation,
                    "files": f"{len(planned)}->{len(after)}",
                    "stream_commits_meanwhile": committed - run.version_before - 1,
                    "stream_commits_spanning": _commits_spanning(spark, uri, committed),
                    "files_appended_meanwhile": len(appended),
                    "s": round(run.duration_s, 1),
                }
            )
        assert job.poll() is None, f"the stream stopped:\n{log.read_text()[-3000:]}"
        overlapped = [
            c for c in cycles if c["stream_commits_meanwhile"] or c["stream_commits_spanning"]
        ]
        assert overlapped, f"no compaction overlapped a stream commit: {cycles}"
        stop.set()
        producer.join(timeout=120)
        silver_rows = lambda: spark.read.format("delta").load(uri).count()  # noqa: E731
        wait_until(
            lambda: silver_rows() >= len(produced), 300, what="the stream to land every event"
        )
        assert job.poll() is None
    finally:
        stop.set()
        producer.join(timeout=120)
        if job.poll() is None:
            kill_group(job)
    errors = [line for line in log.read_text().splitlines() if LOG_ERRORS.search(line)]
    assert errors == [], errors[:10]
    ids = [r["event_id"] for r in spark.read.format("delta").load(uri).select("event_id").collect()]
    assert len(ids) == len(set(ids)) == len(produced), "events lost or landed twice"
    print(json.dumps(cycles))


def test_two_compactions_at_once_end_cleanly(
    settings: Settings, spark: Any, clicks: tuple[Catalog, str, TableRef]
) -> None:
    catalog, _, ref = clicks
    uri = table_uri(settings, ref)
    for offset, day in enumerate((_days_ago(3), _days_ago(2))):
        _write_small_files(spark, uri, day, files=12, seed=80 + offset)

    def together(**options: Any) -> list[Any]:
        start = threading.Barrier(2)
        outcome: list[Any] = [None, None]

        def run(i: int) -> None:
            start.wait()
            try:
                outcome[i] = compact_table(spark, settings, catalog, ref, CompactOptions(**options))
            except Exception as exc:  # reported below: both must end cleanly
                outcome[i] = exc

        threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
        assert not any(isinstance(o, Exception) for o in outcome), outcome
        return outcome

    version = table_stats(settings, ref).version  # type: ignore[union-attr]
    content = _content(spark, uri, version)
    runs = together()
    statuses = sorted(r.status.value for r in runs)
    assert statuses in (["done", "locked"], ["done", "skipped"]), [r.message for r in runs]
    for r in runs:
        if r.status == RunStatus.LOCKED:
            assert "is already running elsewhere" in r.message and ".compact.lock" in r.message
    stats = table_stats(settings, ref)
    assert stats is not None
    assert [p.files for p in stats.partitions] == [1, 1]
    assert _content(spark, uri, stats.version) == content

    # without the lock, Delta's conflict detection and the retries keep the table consistent
    for offset, day in enumerate((_days_ago(3), _days_ago(2))):
        _write_small_files(spark, uri, day, files=12, seed=90 + offset)
    version = table_stats(settings, ref).version  # type: ignore[union-attr]
    content = _content(spark, uri, version)
    runs = together(lock=False)
    assert RunStatus.DONE in {r.status for r in runs}
    assert {r.status for r in runs} <= {RunStatus.DONE, RunStatus.SKIPPED}
    stats = table_stats(settings, ref)
    assert stats is not None
    assert [p.files for p in stats.partitions] == [1, 1]
    assert _content(spark, uri, stats.version) == content
    print(json.dumps([{"status": r.status.value, "attempts": r.attempts} for r in runs]))


def _beats(files: HadoopFiles, path: str, what: str) -> None:
    """The lease's holder beats: the lease file's modification time moves on."""
    began = files.modified_at(path)
    assert began is not None
    eventually(
        lambda: files.modified_at(path), lambda seen: seen is not None and seen > began, what
    )


def test_a_lock_names_its_holder_and_expires(settings: Settings, spark: Any) -> None:
    files = HadoopFiles(spark)
    table = f"locktest_{os.getpid()}"
    with table_lock(spark, settings, table, "compact") as lease:
        with pytest.raises(LockHeld) as held, table_lock(spark, settings, table, "compact"):
            pass
        assert lease.owner in str(held.value)
        assert files.exists(lease.path)
    assert not files.exists(lease.path)

    # a crashed holder's lease is taken over once it has expired
    now = datetime.now(UTC)
    path = lock_uri(settings, table, "compact")
    crashed = Lease(path, "a crashed run", "t0", now - timedelta(hours=3), now - timedelta(hours=1))
    assert files.create_new(path, crashed.to_json())
    with table_lock(spark, settings, table, "compact") as lease:
        assert lease.token in (files.read_text(path) or "")
    assert not files.exists(path)

    # a holder killed on this host is taken over at once, long before its lease expires
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    killed = Lease(
        path, "a killed run", "t1", now, now + timedelta(hours=2), socket.gethostname(), gone.pid
    )
    assert killed.owner_gone(datetime.now(UTC))
    assert files.create_new(path, killed.to_json())
    with table_lock(spark, settings, table, "compact") as lease:
        assert lease.token in (files.read_text(path) or "")
    # ... while a live holder (this process) keeps it
    alive = Lease(
        path, "a live run", "t2", now, now + timedelta(hours=2), socket.gethostname(), os.getpid()
    )
    assert not alive.owner_gone(datetime.now(UTC))

    # a lease file left empty (its writer killed between creating and writing it) holds while
    # it could still be being written, and is taken over once that cannot be so
    assert files.create_new(path, "")
    with pytest.raises(LockHeld) as held, table_lock(spark, settings, table, "compact"):
        pass
    assert "an unknown owner" in str(held.value)
    files.set_modified_at(path, datetime.now(UTC) - timedelta(minutes=1))
    with table_lock(spark, settings, table, "compact") as lease:
        assert lease.token in (files.read_text(path) or "")
    assert not files.exists(path)

    # a holder on another host (no process to look at) holds while it beats ...
    remote = Lease(
        path, "elsewhere pid 7", "t3", now, now + timedelta(hours=2), "elsewhere", 7, 5.0
    )
    assert files.create_new(path, remote.to_json())
    with pytest.raises(LockHeld), table_lock(spark, settings, table, "compact"):
        pass
    # ... and is taken over after three missed beats, long before its TTL
    files.set_modified_at(path, datetime.now(UTC) - timedelta(seconds=60))
    with table_lock(spark, settings, table, "compact", heartbeat_s=0.5) as lease:
        assert lease.token in (files.read_text(path) or "")
        _beats(files, path, "a heartbeat of the compaction lease")
    assert not files.exists(path)


def test_checkpoint_lease_keeps_a_second_ingest_off_and_yields_to_no_dead_holder(
    settings: Settings, spark: Any, tmp_path: Path
) -> None:
    catalog = catalog_variant(tmp_path / "catalog")
    provision(settings, catalog)
    stream = stream_named(catalog, "clicks")
    files = HadoopFiles(spark)
    path = lock_uri(settings, stream, "checkpoint")

    # while a live ingest holds it (this process), a second one ends at once, naming the holder
    with checkpoint_lease(spark, settings, stream, heartbeat_s=0.5) as lease:
        _beats(files, path, "a heartbeat of the checkpoint lease")
        result = subprocess.run(
            [sys.executable, "-m", "conveyor.cli", "ingest", stream, "--available-now"],
            capture_output=True,
            text=True,
            env={**os.environ, "CONVEYOR_CATALOG": str(catalog.source)},
            timeout=300,
        )
        assert result.returncode == 1, result.stdout + result.stderr
        message = " ".join(result.stderr.split())
        assert f"stream '{stream}' is already being ingested" in message, result.stderr
        assert lease.owner in message, result.stderr
        assert "Traceback" not in result.stderr and "at org.apache" not in result.stderr
        assert files.read_text(path) is not None and lease.token in (files.read_text(path) or "")
    assert not files.exists(path)
    assert not files.exists(checkpoint_uri(settings, stream, "ingest")), "the refused run wrote"

    # a holder on another host that missed three heartbeats is taken over ...
    now = datetime.now(UTC)
    silent = Lease(
        path, "another-host pid 7", "t3", now, now + timedelta(hours=2), "another-host", 7, 10.0
    )
    assert files.create_new(path, silent.to_json())
    files.set_modified_at(path, now - timedelta(seconds=31))
    with checkpoint_lease(spark, settings, stream) as lease:
        assert lease.token in (files.read_text(path) or "")
    # ... and one that beats on time is not
    assert files.create_new(path, silent.to_json())
    with pytest.raises(CheckpointHeld) as held, checkpoint_lease(spark, settings, stream):
        pass
    assert "another-host pid 7" in str(held.value)
    files.delete(path)


def test_vacuum_keeps_the_safe_retention_and_the_stream_survives(
    settings: Settings, spark: Any, clicks: tuple[Catalog, str, TableRef]
) -> None:
    catalog, name, ref = clicks
    provision(settings, catalog)
    topic = catalog.stream(name).topic.name
    uri = table_uri(settings, ref)
    day = _days_ago(2)
    for seed in (100, 101, 102):
        start = datetime.combine(day, time(6 + seed - 100), UTC)
        send_events(
            settings,
            topic,
            (encode(e, "user_id") for e in click_events(20, seed=seed, start=start)),
        )
        ingest_stream(spark, settings, catalog, name, available_now=True)
    before_compaction = table_stats(settings, ref)
    assert before_compaction is not None and before_compaction.files >= 3
    content = _content(spark, uri, before_compaction.version)
    compacted = compact_table(spark, settings, catalog, ref, CompactOptions(force=True))
    assert compacted.status == RunStatus.DONE
    assert compacted.version_after is not None
    partition = compacted.partitions
    rewritten = _files(spark, uri, before_compaction.version, partition)
    referenced = _files(spark, uri, compacted.version_after, partition)

    lake = HadoopFiles(spark)
    folder = f"{uri}/{partition[0]}"
    sample = next(iter(rewritten))
    old_orphan, new_orphan = (
        f"{folder}/part-old-orphan.parquet",
        f"{folder}/part-new-orphan.parquet",
    )
    for orphan in (old_orphan, new_orphan):
        assert lake.create_new(orphan, lake.read_text(sample) or "x")
    lake.set_modified_at(old_orphan, datetime.now(UTC) - timedelta(days=10))

    def present() -> set[str]:
        return {f.uri for f in lake.data_files(uri)}

    everything = present()
    assert rewritten | referenced | {old_orphan, new_orphan} <= everything

    for unsafe in (timedelta(hours=1), timedelta(days=6)):
        with pytest.raises(VacuumRefused) as refused:
            vacuum_table(spark, settings, catalog, ref, VacuumOptions(retention=unsafe))
        assert "refused to vacuum" in str(refused.value) and "7d" in str(refused.value)
    assert present() == everything

    dry = vacuum_table(spark, settings, catalog, ref, VacuumOptions(dry_run=True))
    assert dry.status == RunStatus.DRY_RUN
    assert dry.paths == [old_orphan]
    assert present() == everything

    done = vacuum_table(spark, settings, catalog, ref)
    assert done.status == RunStatus.DONE and done.retention_hours == 168.0
    assert present() == everything - {old_orphan}, "only the orphan older than 7d may go"
    # time travel inside the retention still works
    assert _content(spark, uri, before_compaction.version) == content

    # the test-only floor: the CLI needs --i-know-this-is-a-test for it, and Delta's own
    # retention check still refuses unless a test session turns it off
    testing = Settings(test_only_min_vacuum_retention="0s")
    to_zero = VacuumOptions(retention=timedelta(0), allow_test_floor=True)
    with pytest.raises(VacuumRefused, match="Delta refused"):
        vacuum_table(spark, testing, catalog, ref, to_zero)
    assert present() == everything - {old_orphan}
    test_session = spark.newSession()
    test_session.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    zero = vacuum_table(test_session, testing, catalog, ref, to_zero)
    assert zero.status == RunStatus.DONE
    remaining = present()
    assert not (rewritten - referenced) & remaining, "unreferenced files survived a 0h vacuum"
    assert referenced <= remaining and new_orphan not in remaining
    latest = table_stats(settings, ref)
    assert latest is not None and _content(spark, uri, latest.version) == content

    # the stream's checkpoint lives outside the table: the stream carries on where it was
    checkpoint = checkpoint_uri(settings, name, "ingest")
    assert lake.files_in(f"{checkpoint}/commits")
    more = list(click_events(15, seed=103, start=datetime.combine(day, time(12), UTC)))
    send_events(settings, topic, (encode(e, "user_id") for e in more))
    summary = ingest_stream(spark, settings, catalog, name, available_now=True)
    assert summary.total("silver_rows") == len(more)
    assert spark.read.format("delta").load(uri).count() == content[0] + len(more)

    logged = [(r["operation"], r["status"]) for r in _log_rows(spark, settings, ref.name)]
    assert logged == [
        ("compact", "done"),
        ("vacuum", "dry_run"),
        ("vacuum", "done"),
        ("vacuum", "done"),
    ]


def test_dag_compacts_the_table_over_the_threshold_and_skips_the_rest(
    settings: Settings, spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    catalog = catalog_variant(tmp_path / "catalog")
    clicks = find_table(catalog, f"{stream_named(catalog, 'clicks')}_silver")
    _write_small_files(spark, table_uri(settings, clicks), _days_ago(3), files=12, seed=110)
    monkeypatch.setenv("CONVEYOR_CATALOG", str(catalog.source))

    bag = DagBag(dag_folder=str(REPO / "dags" / "conveyor_maintain_tables.py"))
    assert bag.import_errors == {}
    dag = bag.get_dag("conveyor_maintain_tables")
    assert dag.max_active_runs == 1
    run = dag.test(run_conf={"vacuum": "now"})
    assert run.state == "success"

    names = [ref.name for ref in catalog.tables()]
    mapped = [ti for ti in run.get_task_instances() if ti.map_index >= 0]
    states = {(ti.task_id, names[ti.map_index]): ti.state for ti in mapped}
    assert states[("compaction.needs_compaction", clicks.name)] == "success"
    assert states[("compaction.compact", clicks.name)] == "success"
    assert states[("vacuum", clicks.name)] == "success"
    missing = [n for n in names if n != clicks.name]  # tables not written yet
    assert {states[("compaction.compact", n)] for n in missing} == {"skipped"}
    assert {states[("vacuum", n)] for n in missing} == {"skipped"}

    assert [p.files for p in table_stats(settings, clicks).partitions] == [1]  # type: ignore[union-attr]
    clicks_log = [(r["operation"], r["status"]) for r in _log_rows(spark, settings, clicks.name)]
    assert clicks_log == [("zorder", "done"), ("vacuum", "done")]
    compacted = _log_rows(spark, settings, clicks.name)[0]
    assert (compacted["files_before"], compacted["files_after"]) == (12, 1)

    # the next hourly run, outside the vacuum hour: the table is under its small-file
    # threshold now, so nothing is compacted, and no vacuum task starts
    idle = dag.test(run_conf={"vacuum": "never"})
    assert idle.state == "success"
    tasks = idle.get_task_instances()
    assert [ti.state for ti in tasks if ti.task_id == "vacuum_due"] == ["success"]
    needs = {ti.map_index: ti.state for ti in tasks if ti.task_id == "compaction.needs_compaction"}
    assert needs[names.index(clicks.name)] == "skipped"
    assert {ti.state for ti in tasks if ti.task_id in ("vacuum", "compaction.compact")} == {
        "skipped"
    }
    assert len(_log_rows(spark, settings, clicks.name)) == 2  # nothing more was logged


def test_cli_reports_argument_mistakes_in_one_line(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from conveyor.cli import app

    catalog = catalog_variant(tmp_path / "catalog")
    silver = f"{stream_named(catalog, 'clicks')}_silver"
    monkeypatch.setenv("CONVEYOR_CATALOG", str(catalog.source))
    monkeypatch.delenv("CONVEYOR_TEST_ONLY_MIN_VACUUM_RETENTION", raising=False)
    runner = CliRunner()
    cases = {
        ("compact", "no_such_table"): "no table named 'no_such_table' (tables: clicks_",
        ("compact",): "name a table (e.g. clicks_silver) or pass --all",
        ("vacuum", silver, "--all"): "give either a table name or --all, not both",
        ("vacuum", silver, "--retain", "1h"): f"refused to vacuum {silver} keeping only 1h",
        ("vacuum", silver, "--retain", "soon"): "--retain 'soon': must be a duration",
        (
            "vacuum",
            silver,
            "--retain",
            "0s",
            "--i-know-this-is-a-test",
        ): "only works with CONVEYOR_TEST_ONLY_MIN_VACUUM_RETENTION set",
    }
    for args, expected in cases.items():
        result = runner.invoke(app, list(args))
        assert result.exit_code == 1, (args, result.output)
        text = " ".join(result.output.split())
        assert text.startswith("error: ") and expected in text, (args, result.output)
        assert "Traceback" not in result.output


def test_cli_tables_compact_and_vacuum_borrow_the_running_session(
    settings: Settings,
    spark: Any,
    clicks: tuple[Catalog, str, TableRef],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from conveyor.cli import app

    catalog, _, ref = clicks
    _write_small_files(spark, table_uri(settings, ref), _days_ago(3), files=12, seed=120)
    monkeypatch.setenv("CONVEYOR_CATALOG", str(catalog.source))
    runner = CliRunner()

    def tables() -> dict[str, Any]:
        result = runner.invoke(app, ["tables", "--json"])
        assert result.exit_code == 0, result.output
        return {r["table"]: r for r in json.loads(result.stdout)}

    report = tables()
    assert report[ref.name]["files"] == 12 and report[ref.name]["small_share"] == 1.0
    assert report[ref.name]["needs_compaction"] is True
    assert report[ref.name]["last_compaction"] is None
    assert sum(r["exists"] for r in report.values()) == 1

    result = runner.invoke(app, ["compact", ref.name, "--json"])
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)
    assert (run["status"], run["files_before"], run["files_after"]) == ("done", 12, 1)

    result = runner.invoke(app, ["vacuum", ref.name, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    (run,) = json.loads(result.stdout)
    assert (run["status"], run["retention_hours"], run["paths"]) == ("dry_run", 168.0, [])

    assert spark.range(3).count() == 3, "the CLI stopped the session it borrowed"
    report = tables()
    assert report[ref.name]["files"] == 1 and report[ref.name]["needs_compaction"] is False
    assert report[ref.name]["last_compaction"] is not None
