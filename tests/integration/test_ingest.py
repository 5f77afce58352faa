"""Streaming ingest against the real broker, HDFS and Spark: nothing lost, nothing duplicated,
bad input kept with a reason, every batch in the ledger."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor.catalog import Catalog, Layer, ledger_uri, load_catalog, table_uri
from conveyor.ingest.crash import KILL_POINT_ENV
from conveyor.ingest.silver import silver_schema
from conveyor.ingest.stream import ingest_stream
from conveyor.kafka.clients import client_options
from conveyor.kafka.offsets import DataLossError
from conveyor.produce import BAD_KINDS, Event, bad_event, click_events, encode, send_events
from conveyor.settings import Settings
from conveyor.stack.process import wait_until
from tests.catalogs import catalog_variant, provision, stream_named
from tests.conftest import REPO
from tests.jobs import kill_group, start_ingest_job

# what each kind of bad record must be quarantined as
EXPECTED_REASON = {
    "malformed_json": "malformed_json",
    "not_an_object": "not_an_object",
    "missing_field": "missing_field",
    "wrong_type": "wrong_type",
    "not_allowed": "not_allowed",
    "bad_timestamp": "bad_timestamp",
    "timestamp_out_of_range": "timestamp_out_of_range",
    "empty_value": "empty_value",
    "tombstone": "empty_value",
    "invalid_utf8": "invalid_utf8",
    "oversized": "oversized",
}


def _table(spark: Any, settings: Settings, catalog: Catalog, stream: str, layer: Layer) -> Any:
    return spark.read.format("delta").load(table_uri(settings, catalog.stream(stream).table(layer)))


def _ledger(spark: Any, settings: Settings, stream: str) -> list[Any]:
    frame = spark.read.format("delta").load(ledger_uri(settings))
    return frame.where(frame.stream == stream).collect()


@pytest.fixture
def clicks(settings: Settings, tmp_path: Path) -> tuple[Catalog, str]:
    catalog = catalog_variant(tmp_path)
    provision(settings, catalog)
    return catalog, stream_named(catalog, "clicks")


def test_mixed_batch_lands_everything_once_with_reasons(
    settings: Settings, spark: Any, clicks: tuple[Catalog, str]
) -> None:
    catalog, name = clicks
    stream = catalog.stream(name)
    good = list(click_events(200, seed=10))
    bad = {
        kind: bad_event(
            kind,
            good[0],
            event_time="ts",
            required="user_id",
            max_bytes=stream.event_schema.max_event_bytes,
        )
        for kind in BAD_KINDS
    }
    repeats = [good[i] for i in (3, 3, 17, 42, 99, 100, 150, 151, 152, 199)]
    records = [encode(e, "user_id") for e in good]
    records += [Event(key=f"bad-{k}".encode(), value=v) for k, v in bad.items()]
    records += [encode(e, "user_id") for e in repeats]
    random.Random(5).shuffle(records)
    send_events(settings, stream.topic.name, records)

    summary = ingest_stream(spark, settings, catalog, name, available_now=True)

    produced = len(records)
    bronze = _table(spark, settings, catalog, name, Layer.BRONZE)
    silver = _table(spark, settings, catalog, name, Layer.SILVER)
    quarantine = _table(spark, settings, catalog, name, Layer.QUARANTINE)
    assert bronze.count() == produced
    assert bronze.select("partition", "offset").distinct().count() == produced

    silver_ids = [r["event_id"] for r in silver.select("event_id").collect()]
    assert sorted(silver_ids) == sorted(e["event_id"] for e in good)

    reasons = {r["key"].decode(): (r["reason_code"], r["reason"]) for r in quarantine.collect()}
    assert {k: reasons[f"bad-{k}"][0] for k in BAD_KINDS} == EXPECTED_REASON
    assert reasons["bad-missing_field"][1] == "field 'user_id' is required but missing"
    assert reasons["bad-wrong_type"][1] == "field 'user_id' must be a string, got 12345"
    assert reasons["bad-not_allowed"][1] == (
        "field 'event_type': \"no-such-value\" is not one of page_view, click, add_to_cart, purchase"
    )
    assert reasons["bad-malformed_json"][1] == "value is not valid JSON"
    assert reasons["bad-tombstone"][1] == "value is empty or null (a tombstone)"
    assert reasons["bad-oversized"][1].endswith(
        f"more than the {stream.event_schema.max_event_bytes} allowed"
    )
    assert "before 2000-01-01" in reasons["bad-timestamp_out_of_range"][1]
    assert quarantine.where(quarantine.value.isNull()).count() == 1  # the tombstone, kept

    assert summary.total("duplicates_dropped") == len(repeats)
    assert (
        summary.total("silver_rows")
        + summary.total("quarantined")
        + summary.total("duplicates_dropped")
        == produced
    )
    ledger = _ledger(spark, settings, name)
    assert sum(r["rows_read"] for r in ledger) == produced
    assert sum(r["duplicates_dropped"] for r in ledger) == len(repeats)
    covered = {
        (o["partition"]): (o["start_offset"], o["end_offset"]) for r in ledger for o in r["offsets"]
    }
    assert sum(end - start for start, end in covered.values()) == produced

    # duplicates of events landed by an earlier batch are dropped and counted too
    later = [encode(good[i], "user_id") for i in (0, 1, 2)]
    fresh = list(click_events(5, seed=11))
    send_events(settings, stream.topic.name, [*later, *(encode(e, "user_id") for e in fresh)])
    again = ingest_stream(spark, settings, catalog, name, available_now=True)
    assert again.total("duplicates_dropped") == 3
    assert again.total("silver_rows") == 5
    assert _table(spark, settings, catalog, name, Layer.SILVER).count() == 205

    # the monitoring consumer group shows zero lag now that the job has caught up
    from conveyor.ingest.monitor import partition_lag

    lag = partition_lag(settings, stream)
    assert len(lag) == stream.topic.partitions
    assert set(lag.values()) == {0}

    # what `conveyor status` shows for the stream
    from conveyor.ingest.monitor import stream_status

    status = stream_status(settings, stream)
    assert status.total_lag == 0
    assert status.last_batch_at is not None
    assert status.rows_per_second > 0
    assert status.quarantined_last_hour == len(BAD_KINDS)
    assert dict(status.top_reasons)["empty_value"] == 2  # the empty value and the tombstone


def test_repeats_of_an_earlier_batch_of_the_same_run_are_dropped(
    settings: Settings, spark: Any, clicks: tuple[Catalog, str]
) -> None:
    """A repeat of a row an earlier batch of the same run landed is found in silver as it is
    after that batch's commit, and a compaction of silver between runs (the same rows in fewer
    files) changes no dedup decision."""
    from delta.tables import DeltaTable

    catalog, name = clicks
    stream = catalog.stream(name)
    good = list(click_events(60, seed=31))
    copies = [good[i] for i in (0, 1, 2, 30)]
    records = [encode(e, "user_id") for e in [*good, *copies]]
    send_events(settings, stream.topic.name, records, partition=0)

    summary = ingest_stream(
        spark, settings, catalog, name, available_now=True, max_offsets_per_trigger=16
    )

    assert len(summary.batches) == 4, [b.rows_read for b in summary.batches]
    # the copies are read by the last batch; their originals landed in batches 0 and 1
    assert [b.duplicates_dropped for b in summary.batches] == [0, 0, 0, 4]
    silver = _table(spark, settings, catalog, name, Layer.SILVER)
    assert sorted(r["event_id"] for r in silver.select("event_id").collect()) == sorted(
        e["event_id"] for e in good
    )

    # a compaction (no data changed) between runs, then a run that reads silver again
    silver_uri = table_uri(settings, stream.table(Layer.SILVER))
    DeltaTable.forPath(spark, silver_uri).optimize().executeCompaction()
    fresh = list(click_events(6, seed=32))
    later = [encode(e, "user_id") for e in [*fresh, good[5], good[45]]]
    send_events(settings, stream.topic.name, later, partition=0)
    again = ingest_stream(
        spark, settings, catalog, name, available_now=True, max_offsets_per_trigger=4
    )
    assert again.total("duplicates_dropped") == 2
    assert again.total("silver_rows") == 6
    assert _table(spark, settings, catalog, name, Layer.SILVER).count() == 66


def _encoded(events: list[dict[str, Any]]) -> list[Event]:
    return [encode(e, "user_id") for e in events]


def test_late_events_land_in_their_day_and_the_ledger_names_it(
    settings: Settings, spark: Any, clicks: tuple[Catalog, str]
) -> None:
    catalog, name = clicks
    topic = catalog.stream(name).topic.name
    after_midnight = datetime(2026, 11, 23, 0, 30, tzinfo=UTC)
    fresh = list(click_events(20, seed=20, start=after_midnight))
    send_events(settings, topic, _encoded(fresh), partition=0)
    ingest_stream(spark, settings, catalog, name, available_now=True)

    # tolerance is 2h: 23:30 the day before is late but accepted; 20:00 is too late
    late = list(click_events(5, seed=21, start=datetime(2026, 11, 22, 23, 30, tzinfo=UTC)))
    too_late = list(click_events(2, seed=22, start=datetime(2026, 11, 22, 20, 0, tzinfo=UTC)))
    send_events(settings, topic, _encoded([*late, *too_late]), partition=0)
    ingest_stream(spark, settings, catalog, name, available_now=True)

    silver = _table(spark, settings, catalog, name, Layer.SILVER)
    day_before = silver.where(silver.event_date == date(2026, 11, 22))
    assert sorted(r["event_id"] for r in day_before.collect()) == sorted(
        e["event_id"] for e in late
    )
    quarantine = _table(spark, settings, catalog, name, Layer.QUARANTINE)
    assert {r["reason_code"] for r in quarantine.collect()} == {"too_late"}
    assert quarantine.count() == 2

    ledger = sorted(_ledger(spark, settings, name), key=lambda r: r["batch_id"])
    assert ledger[0]["late_dates"] == []
    assert ledger[-1]["late_dates"] == [date(2026, 11, 22)]
    assert date(2026, 11, 22) in ledger[-1]["event_dates"]


def test_lateness_is_judged_per_partition(
    settings: Settings, spark: Any, clicks: tuple[Catalog, str]
) -> None:
    """A partition hours behind another in event time (a backlog read unevenly far, a slow
    producer) lands whole; a record behind its own partition's newest is too late."""
    catalog, name = clicks
    topic = catalog.stream(name).topic.name
    ahead = list(click_events(10, seed=40, start=datetime(2026, 11, 23, 10, 0, tzinfo=UTC)))
    send_events(settings, topic, _encoded(ahead), partition=0)
    ingest_stream(spark, settings, catalog, name, available_now=True)

    # 4 h behind partition 0's newest with a 2 h tolerance: partition 1 has landed nothing
    # yet, so its records land; the same times on partition 0 are too late
    six = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    behind = list(click_events(5, seed=41, start=six))
    too_late = list(click_events(2, seed=42, start=six))
    send_events(settings, topic, _encoded(behind), partition=1)
    send_events(settings, topic, _encoded(too_late), partition=0)
    ingest_stream(spark, settings, catalog, name, available_now=True)

    silver = _table(spark, settings, catalog, name, Layer.SILVER)
    assert sorted(r["event_id"] for r in silver.collect()) == sorted(
        e["event_id"] for e in [*ahead, *behind]
    )
    quarantine = _table(spark, settings, catalog, name, Layer.QUARANTINE).collect()
    assert sorted(r["event_id"] for r in (json.loads(q["value"]) for q in quarantine)) == sorted(
        e["event_id"] for e in too_late
    )
    assert {(q["reason_code"], q["partition"]) for q in quarantine} == {("too_late", 0)}
    assert all("watermark of partition 0, 2026-11-23 08:0" in q["reason"] for q in quarantine)

    newest = {
        p: max(datetime.fromisoformat(e["ts"]) for e in events)
        for p, events in ((0, ahead), (1, behind))
    }
    first, last = sorted(_ledger(spark, settings, name), key=lambda r: r["batch_id"])
    assert [(t["partition"], t["max_event_time"]) for t in first["partition_event_times"]] == [
        (0, newest[0].replace(tzinfo=None))
    ]
    assert [(t["partition"], t["max_event_time"]) for t in last["partition_event_times"]] == [
        (1, newest[1].replace(tzinfo=None))
    ]


def test_lost_offsets_stop_the_job_until_accepted(
    settings: Settings, spark: Any, clicks: tuple[Catalog, str]
) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    catalog, name = clicks
    topic = catalog.stream(name).topic.name
    send_events(settings, topic, (encode(e, "user_id") for e in click_events(40, seed=30)))
    ingest_stream(spark, settings, catalog, name, available_now=True)
    send_events(settings, topic, (encode(e, "user_id") for e in click_events(40, seed=31)))

    consumer = KafkaConsumer(**client_options(settings))
    ends = consumer.end_offsets([TopicPartition(topic, p) for p in (0, 1)])
    consumer.close()
    admin = KafkaAdminClient(**client_options(settings))
    admin.delete_records(ends)  # everything in partitions 0 and 1 is gone, read or not
    admin.close()
    landed_before = _table(spark, settings, catalog, name, Layer.SILVER).count()

    with pytest.raises(DataLossError) as refused:
        ingest_stream(spark, settings, catalog, name, available_now=True)
    message = str(refused.value)
    assert message.startswith(f"stream '{name}': Kafka no longer holds records")
    assert "--accept-data-loss" in message
    expected_gaps = [g for g in refused.value.gaps]
    assert {g.partition for g in expected_gaps} <= {0, 1} and expected_gaps
    for gap in expected_gaps:
        assert f"{topic}-{gap.partition}: offsets {gap.from_offset}..{gap.to_offset - 1}" in message
        assert gap.to_offset == ends[TopicPartition(topic, gap.partition)]
    assert _table(spark, settings, catalog, name, Layer.SILVER).count() == landed_before

    summary = ingest_stream(
        spark, settings, catalog, name, available_now=True, accept_data_loss=True
    )
    lost = sum(g.to_offset - g.from_offset for g in expected_gaps)
    assert summary.total("rows_read") == 40 - lost
    gaps = [r for r in _ledger(spark, settings, name) if r["kind"] == "gap"]
    assert len(gaps) == 1
    assert sorted(
        (g["partition"], g["from_offset"], g["to_offset"]) for g in gaps[0]["gaps"]
    ) == sorted((g.partition, g.from_offset, g.to_offset) for g in expected_gaps)


def _start_job(
    settings: Settings, catalog: Catalog, name: str, log: Path, kill_at: str | None = None
) -> subprocess.Popen[bytes]:
    env = {"CONVEYOR_TRIGGER_INTERVAL": "2 seconds"}
    if kill_at is not None:
        env[KILL_POINT_ENV] = kill_at
    return start_ingest_job(settings, catalog, name, log, env)


def _commits(settings: Settings, name: str) -> int:
    from conveyor.webhdfs import list_dir

    try:
        return len(
            [n for n in list_dir(settings, f"/checkpoints/{name}/ingest/commits") if n.isdigit()]
        )
    except FileNotFoundError:
        return 0


def _kill(job: subprocess.Popen[bytes]) -> None:
    kill_group(job)


def _killed_at(job: subprocess.Popen[bytes], log: Path, point: str) -> None:
    """Wait for a job started with kill point `point` to kill itself there, then for its group."""
    wait_until(lambda: job.poll() is not None, 240, what=f"the job to kill itself at {point}")
    text = log.read_text()
    assert text.count(f"killing this process at {point}") == 1, text[-3000:]
    assert job.returncode != 0, text[-3000:]
    with contextlib.suppress(ProcessLookupError):
        kill_group(job)  # the driver is gone; its spark-submit JVM may linger a moment


def _assert_exactly_once(
    spark: Any, settings: Settings, catalog: Catalog, name: str, produced: list[dict[str, Any]]
) -> None:
    silver = _table(spark, settings, catalog, name, Layer.SILVER)
    ids = [r["event_id"] for r in silver.select("event_id").collect()]
    assert len(ids) == len(set(ids)), "an event landed twice in silver"
    assert sorted(ids) == sorted(e["event_id"] for e in produced), "events lost"
    bronze = _table(spark, settings, catalog, name, Layer.BRONZE)
    assert bronze.count() == len(produced)
    assert bronze.select("partition", "offset").distinct().count() == len(produced)
    for layer in Layer:
        uri = table_uri(settings, catalog.stream(name).table(layer))
        log = spark.read.json(f"{uri}/_delta_log/*.json")
        if "txn" not in log.columns:
            continue
        per_batch = log.where("txn IS NOT NULL").groupBy("txn.appId", "txn.version").count()
        assert per_batch.where("count > 1").count() == 0, f"{layer}: a batch committed twice"


def test_kill_dash_nine_five_times_loses_and_duplicates_nothing(
    settings: Settings, spark: Any, clicks: tuple[Catalog, str], tmp_path: Path
) -> None:
    catalog, name = clicks
    topic = catalog.stream(name).topic.name
    events: list[dict[str, Any]] = []
    stop = threading.Event()

    def until_stopped() -> Any:
        # keep producing for as long as the kills go on, so every restart has work to do
        for event in click_events(100_000, seed=40):
            if stop.is_set():
                return
            events.append(event)
            yield encode(event, "user_id")

    producer = threading.Thread(
        target=send_events, args=(settings, topic, until_stopped()), kwargs={"rate": 40.0}
    )
    producer.start()
    rng = random.Random(41)
    log = tmp_path / "job.log"
    # a kill right after each commit a batch makes (a small batch's three appends commit
    # concurrently, its ledger row last), then one at a random moment. Quarantine first: these
    # events are all valid, so only the first batch (which creates the tables) appends to it.
    points = ["quarantine", "bronze", "silver", "ledger", None]
    try:
        for kill, point in enumerate(points):
            if point is not None:
                at = f"ingest-after-{point}"
                _killed_at(_start_job(settings, catalog, name, log, at), log, at)
                continue
            job = _start_job(settings, catalog, name, log)
            before = _commits(settings, name)
            wait_until(
                lambda b=before, j=job: _commits(settings, name) > b or j.poll() is not None,
                240,
                what=f"a committed batch before kill {kill + 1}",
            )
            assert job.poll() is None, log.read_text()[-3000:]
            time.sleep(rng.uniform(0.0, 2.5))  # pick a random moment inside the next batch
            _kill(job)
    finally:
        stop.set()
        producer.join(timeout=120)
    assert not producer.is_alive()
    ingest_stream(spark, settings, catalog, name, available_now=True)
    _assert_exactly_once(spark, settings, catalog, name, events)
    ledger = _ledger(spark, settings, name)
    batch_ids = [(r["app_id"], r["batch_id"]) for r in ledger]
    assert len(batch_ids) == len(set(batch_ids)), "a batch has two ledger rows"
    assert sum(r["rows_read"] for r in ledger) == len(events)


def test_broker_outage_of_thirty_seconds_loses_and_duplicates_nothing(
    settings: Settings, spark: Any, clicks: tuple[Catalog, str], tmp_path: Path
) -> None:
    from conveyor.stack.local import LocalStack

    catalog, name = clicks
    topic = catalog.stream(name).topic.name
    first = list(click_events(100, seed=50))
    second = list(click_events(100, seed=51))
    log = tmp_path / "job.log"
    send_events(settings, topic, (encode(e, "user_id") for e in first))
    job = _start_job(settings, catalog, name, log)

    def landed() -> int:
        """Records of every batch fully landed: each batch's ledger row is its last write, so
        the job is never stopped while a batch's tables are still being appended."""
        try:
            return sum(int(r["rows_read"]) for r in _ledger(spark, settings, name))
        except Exception:
            return 0

    restarts = 0
    try:
        wait_until(lambda: landed() == 100, 240, what="the first 100 events' batch in the ledger")
        stack = LocalStack(Settings())
        stack.stop_component("kafka-0")
        back_at = time.monotonic() + 30  # the outage itself: the broker stays down 30 s
        wait_until(lambda: time.monotonic() >= back_at, 40, what="the 30 s outage")
        stack.up()
        send_events(Settings(), topic, (encode(e, "user_id") for e in second))

        def caught_up() -> bool:
            nonlocal job, restarts
            if job.poll() is not None:  # failed during the outage: restart, as an operator would
                restarts += 1
                job = _start_job(settings, catalog, name, log)
            return landed() == 200

        wait_until(caught_up, 300, what="the stream to catch up after the outage", interval_s=2)
    finally:
        if job.poll() is None:
            _kill(job)
    _assert_exactly_once(spark, settings, catalog, name, [*first, *second])
    if restarts:
        assert "error" in log.read_text().lower()
    print(json.dumps({"restarts_after_outage": restarts}))


def test_ingest_dag_lands_every_stream_through_spark_submit(
    settings: Settings, spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from conveyor.produce import log_events

    catalog = catalog_variant(tmp_path)
    provision(settings, catalog)
    clicks, logs = stream_named(catalog, "clicks"), stream_named(catalog, "app_logs")
    send_events(
        settings,
        catalog.stream(clicks).topic.name,
        (encode(e, "user_id") for e in click_events(30, seed=60)),
    )
    send_events(
        settings,
        catalog.stream(logs).topic.name,
        (encode(e, None) for e in log_events(20, seed=61)),
    )
    monkeypatch.setenv("CONVEYOR_CATALOG", str(catalog.source))

    dag = DagBag(dag_folder=str(REPO / "dags" / "conveyor_ingest.py")).get_dag("conveyor_ingest")
    assert dag.max_active_runs == 1
    run = dag.test()
    assert run.state == "success"
    states = [ti.state for ti in run.get_task_instances() if ti.task_id == "ingest_stream"]
    assert states == ["success", "success"]  # one per stream of the catalog the run read
    assert _table(spark, settings, catalog, clicks, Layer.SILVER).count() == 30
    assert _table(spark, settings, catalog, logs, Layer.SILVER).count() == 20

    # nothing left to land: the next run skips both streams without starting Spark
    again = dag.test()
    assert again.state == "success"
    tasks = [ti for ti in again.get_task_instances() if ti.task_id == "ingest_stream"]
    assert [ti.state for ti in tasks] == ["skipped", "skipped"]


def _quick_start() -> list[str]:
    """The command lines of the README's quick start, as written."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_the_readme_quick_start_works_pasted_into_a_fresh_shell(
    settings: Settings, spark: Any, tmp_path: Path
) -> None:
    """Every line of the README's quick start, pasted into a shell where the venv is not
    activated (nothing of it on PATH, no SPARK_HOME), succeeds, and the events land. The
    shipped stream names are kept; the catalog's topics, the lake and the checkpoints are
    the test's own, so the shipped streams other tests fill stay untouched."""
    suffix = tmp_path.name[-8:].replace("-", "_")
    catalog_path = tmp_path / "conveyor.yaml"
    data = yaml.safe_load((REPO / "conveyor.yaml").read_text())
    for name, spec in data["streams"].items():
        spec["topic"]["name"] = f"{name}_quickstart_{suffix}"
    catalog_path.write_text(yaml.safe_dump(data, sort_keys=False))
    own = {
        "CONVEYOR_CATALOG": str(catalog_path),
        "CONVEYOR_LAKE_PATH": f"/quickstart_{suffix}/lake",
        "CONVEYOR_CHECKPOINT_PATH": f"/quickstart_{suffix}/checkpoints",
    }
    fresh_shell = {
        "HOME": os.environ["HOME"],
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "CONVEYOR_HOME": os.environ["CONVEYOR_HOME"],  # the test stack's state
        **own,
    }
    lines = _quick_start()
    assert any("spark-submit jobs/stream_ingest.py clicks" in line for line in lines), lines
    outputs = []
    try:
        for line in lines:
            result = subprocess.run(
                ["bash", "-c", line],
                cwd=REPO,
                env=fresh_shell,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert result.returncode == 0, (line, result.stdout[-2000:], result.stderr[-3000:])
            outputs.append(result.stdout)
    finally:  # `stack up` recorded the test's lake in the stack's state: put the stack's back
        from conveyor.stack.local import LocalStack

        LocalStack(settings).up()
    produced = int(re.search(r"--count (\d+)", " ".join(lines)).group(1))  # type: ignore[union-attr]
    assert "clicks_silver" in outputs[-1], outputs[-1]  # `conveyor tables` lists the tables
    quick = Settings(lake_path=own["CONVEYOR_LAKE_PATH"])
    stream = load_catalog(catalog_path).stream("clicks")
    count = {
        layer: spark.read.format("delta").load(table_uri(quick, stream.table(layer))).count()
        for layer in Layer
    }
    assert count[Layer.BRONZE] == produced
    assert count[Layer.SILVER] + count[Layer.QUARANTINE] == produced
    assert 0 < count[Layer.QUARANTINE] < produced / 10  # --bad-fraction 0.02
    # what analytics reads for a stream never ingested has the real silver's shape
    silver = spark.read.format("delta").load(table_uri(quick, stream.table(Layer.SILVER)))
    shape = spark.createDataFrame([], silver_schema(stream)).schema
    assert [(f.name, f.dataType) for f in silver.schema] == [(f.name, f.dataType) for f in shape]


def test_ingest_of_a_missing_topic_says_so_before_spark_starts(
    settings: Settings, tmp_path: Path
) -> None:
    catalog = catalog_variant(tmp_path)  # never provisioned: its topics do not exist
    name = stream_named(catalog, "clicks")
    topic = catalog.stream(name).topic.name
    conveyor = str(Path(sys.executable).parent / "conveyor")
    result = subprocess.run(
        [conveyor, "ingest", name, "--available-now", "--catalog", str(catalog.source)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    said = result.stdout + result.stderr
    assert result.returncode == 1, said
    assert f"topic '{topic}' does not exist" in said and "conveyor topics apply" in said, said
    assert "at org.apache" not in said and "Traceback" not in said and "SparkSession" not in said
