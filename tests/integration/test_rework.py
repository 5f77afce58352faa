"""Quarantine replay and silver rebuild on the real stack: records judged again with the
catalog as it is now land exactly once, beside a running stream and across a kill -9, and
every bronze record stays in exactly one of silver, the duplicates, or quarantine unmarked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor.analytics.runs import DayRun, record_run, stale_days
from conveyor.catalog import Catalog, Layer, ledger_uri, table_uri
from conveyor.delta_rs import open_table, read_rows
from conveyor.ingest.crash import KILL_POINT_ENV
from conveyor.ingest.stream import ingest_stream
from conveyor.produce import Event, click_events, encode, send_events
from conveyor.rework import (
    rebuild,
    rebuild_range,
    replay,
    replay_selection,
)
from conveyor.settings import Settings
from tests.catalogs import catalog_variant, provision, stream_named
from tests.polling import eventually

COORDINATES = ("topic", "partition", "offset")


def _variant(folder: Path, suffix: str, edit_clicks: Any = None) -> tuple[Catalog, str]:
    def edit(data: dict[str, Any]) -> None:
        for stream_name, stream in data["streams"].items():
            if stream_name.startswith("clicks_") and edit_clicks:
                edit_clicks(stream["schema"]["fields"])

    catalog = catalog_variant(folder, suffix=suffix, edit=edit)
    return catalog, stream_named(catalog, "clicks")


def _conveyor(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    command = str(Path(sys.executable).parent / "conveyor")
    return subprocess.run(
        [command, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _rows(settings: Settings, catalog: Catalog, name: str, layer: Layer) -> list[dict[str, Any]]:
    table = open_table(table_uri(settings, catalog.stream(name).table(layer)))
    assert table is not None
    return list(table.to_pyarrow_table().to_pylist())


def _version(settings: Settings, catalog: Catalog, name: str, layer: Layer) -> int:
    table = open_table(table_uri(settings, catalog.stream(name).table(layer)))
    assert table is not None
    return int(table.version())


def _coordinates(row: dict[str, Any]) -> tuple[str, int, int]:
    return (row["topic"], row["partition"], row["offset"])


def _assert_conserved(settings: Settings, catalog: Catalog, name: str) -> None:
    """Every bronze record is in exactly one of: silver (by its Kafka coordinates), quarantine
    unmarked, or the duplicates (its event id is in silver from another record); silver holds
    each event id once."""
    bronze = _rows(settings, catalog, name, Layer.BRONZE)
    silver = _rows(settings, catalog, name, Layer.SILVER)
    quarantine = _rows(settings, catalog, name, Layer.QUARANTINE)
    ids = Counter(r["event_id"] for r in silver)
    assert [i for i, n in ids.items() if n > 1] == []
    in_silver = {_coordinates(r) for r in silver}
    unmarked = {_coordinates(r) for r in quarantine if r["replay_outcome"] is None}
    assert in_silver & unmarked == set()
    assert len(quarantine) == len({_coordinates(r) for r in quarantine})
    for record in bronze:
        where = _coordinates(record)
        if where in in_silver or where in unmarked:
            continue
        event = json.loads(record["value"])
        assert event["event_id"] in ids, f"bronze record {where} is nowhere: {event}"


def _events(seed: int, count: int, **changes: Any) -> list[dict[str, Any]]:
    events = list(click_events(count, seed=seed))
    for event in events:
        event.update(changes)
    return events


def test_replay_lands_each_record_once_across_a_kill_and_beside_the_stream(
    settings: Settings, spark: Any, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    first, name = _variant(tmp_path / "v1", suffix)
    provision(settings, first)
    topic = first.stream(name).topic.name
    good = _events(60, 40)
    shared = _events(61, 10, event_type="share")  # a value the catalog does not allow yet
    repeats = [{**e, "event_type": "share"} for e in good[:2]]  # event ids silver holds
    lowercase = _events(62, 5, country="gb")  # fails the country pattern
    send_events(
        settings,
        topic,
        [encode(e, "user_id") for e in (*good, *shared, *repeats, *lowercase)]
        + [Event(key=b"u-broken", value=b"{not json")] * 3,
    )
    ingest_stream(spark, settings, first, name, available_now=True)
    reasons = Counter(r["reason_code"] for r in _rows(settings, first, name, Layer.QUARANTINE))
    assert reasons == {"not_allowed": 12, "pattern_mismatch": 5, "malformed_json": 3}

    def allow(fields: dict[str, Any]) -> None:
        fields["event_type"]["allowed"].append("share")
        fields["country"]["pattern"] = "^[A-Za-z]{2}$"

    grown, _ = _variant(tmp_path / "v2", suffix, allow)
    catalog_arg = ("--catalog", str(grown.source))

    # bad input: one line, exit 2, nothing written
    for args, said in (
        (("nope",), "no stream named 'nope'"),
        ((name, "--reason", "not_a_code"), "not a quarantine reason code"),
        ((name, "--since", "2026-12-04", "--until", "2026-12-01"), "empty range"),
        ((name, "--since", "2999-01-01"), "in the future"),
    ):
        wrong = _conveyor("replay", *args, *catalog_arg)
        assert (wrong.returncode, wrong.stdout) == (2, ""), wrong.stderr
        assert said in wrong.stderr and "Traceback" not in wrong.stderr
        assert len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr

    before = _version(settings, first, name, Layer.QUARANTINE)
    planned = replay(
        spark, settings, grown, name, replay_selection(["not_allowed"], None, None), dry_run=True
    )
    assert planned.by_reason == {"not_allowed": {"silver": 10, "duplicate": 2}}
    assert _version(settings, first, name, Layer.QUARANTINE) == before

    # killed right after its silver commit, before it marked quarantine
    killed = _conveyor(
        "replay", name, "--reason", "not_allowed", *catalog_arg,
        env={KILL_POINT_ENV: "replay-after-silver"},
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr[-2000:]
    silver_ids = Counter(r["event_id"] for r in _rows(settings, first, name, Layer.SILVER))
    assert all(silver_ids[e["event_id"]] == 1 for e in shared)
    quarantine = _rows(settings, first, name, Layer.QUARANTINE)
    assert all(r["replay_outcome"] is None for r in quarantine)

    # the rerun takes over the dead run's lease, lands nothing twice and marks the records
    rerun = _conveyor("replay", name, "--reason", "not_allowed", "--json", *catalog_arg)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    outcome = json.loads(rerun.stdout)
    assert outcome["by_reason"] == {"not_allowed": {"already_landed": 10, "duplicate": 2}}
    assert (outcome["silver"], outcome["duplicates"]) == (0, 2)
    marks = Counter(
        (r["reason_code"], r["replay_outcome"])
        for r in _rows(settings, first, name, Layer.QUARANTINE)
    )
    assert marks == {
        ("not_allowed", "silver"): 10,
        ("not_allowed", "duplicate"): 2,
        ("pattern_mismatch", None): 5,
        ("malformed_json", None): 3,
    }
    again = replay(spark, settings, grown, name, replay_selection(["not_allowed"], None, None))
    assert (again.read, again.silver) == (0, 0)
    _assert_conserved(settings, first, name)

    # beside the running stream, which receives the same five events again meanwhile
    failures: list[BaseException] = []

    def stream() -> None:
        try:
            ingest_stream(spark, settings, grown, name)
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    runner = threading.Thread(target=stream)
    runner.start()
    try:
        send_events(settings, topic, [encode(e, "user_id") for e in lowercase])
        moved = replay(
            spark, settings, grown, name, replay_selection(["pattern_mismatch"], None, None)
        )
        assert moved.silver + moved.duplicates == 5 and moved.still_failing == 0
        landed = eventually(
            lambda: len(_rows(settings, first, name, Layer.BRONZE)),
            lambda n: n == 65 or not runner.is_alive(),
            "the stream to land the five events sent again",
            timeout=180,
        )
        assert landed == 65, failures
    finally:
        for query in spark.streams.active:
            query.stop()
        runner.join(120)
    assert not failures, failures
    silver_ids = Counter(r["event_id"] for r in _rows(settings, first, name, Layer.SILVER))
    assert all(silver_ids[e["event_id"]] == 1 for e in lowercase)
    assert len(silver_ids) == 55  # 40 + 10 shared + 5 lowercase
    _assert_conserved(settings, first, name)

    ledger = read_rows(
        ledger_uri(settings),
        ["kind", "silver_rows", "duplicates_dropped", "rework", "event_dates"],
        partitions=[("stream", "=", name)],
    )
    replays = [r for r in ledger if r["kind"] == "replay"]
    assert sorted(
        (r["rework"]["reasons"], r["silver_rows"] + r["duplicates_dropped"]) for r in replays
    ) == [(["not_allowed"], 0), (["not_allowed"], 2), (["pattern_mismatch"], 5)]
    assert [r["rework"]["already_landed"] for r in replays if r["duplicates_dropped"] == 2] == [10]


def test_rebuild_moves_exactly_the_rows_a_tightened_rule_refuses(
    settings: Settings, spark: Any, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:8]
    first, name = _variant(tmp_path / "v1", suffix)
    provision(settings, first)
    topic = first.stream(name).topic.name
    today = datetime.now(UTC).date()
    day_a, day_b = today - timedelta(days=3), today - timedelta(days=2)
    older = list(click_events(30, seed=70, start=datetime.combine(day_a, time(9), UTC)))
    newer = list(click_events(30, seed=71, start=datetime.combine(day_b, time(9), UTC)))
    for event in newer[::3]:
        event["country"] = "XX"  # fine today, refused by the tightened pattern
    repeated = [{**newer[1], "url": "/again"}]  # a duplicate of an event id
    send_events(settings, topic, [encode(e, "user_id") for e in (*older, *newer, *repeated)])
    ingest_stream(spark, settings, first, name, available_now=True)
    assert len(_rows(settings, first, name, Layer.SILVER)) == 60
    for day in (day_a, day_b):  # analytics computed both days before the rule changed
        now = datetime.now(UTC)
        record_run(spark, settings, DayRun("t", name, None, day, "requested", now, now, 30, 1, 0))

    def tighten(fields: dict[str, Any]) -> None:
        fields["country"]["pattern"] = "^(?!XX)[A-Z]{2}$"

    tightened, _ = _variant(tmp_path / "v2", suffix, tighten)
    offending = {e["event_id"] for e in newer[::3]}
    span = rebuild_range(today.isoformat(), today.isoformat(), False)
    versions = {
        layer: _version(settings, first, name, layer) for layer in (Layer.SILVER, Layer.QUARANTINE)
    }
    planned = rebuild(spark, settings, tightened, name, span, dry_run=True)
    assert (planned.silver_before, planned.silver, planned.quarantined) == (60, 50, 10)
    assert planned.event_dates == [day_b]
    assert versions == {
        layer: _version(settings, first, name, layer) for layer in (Layer.SILVER, Layer.QUARANTINE)
    }

    done = rebuild(spark, settings, tightened, name, span)
    assert (done.read, done.silver, done.quarantined, done.duplicates) == (61, 50, 10, 1)
    assert done.event_dates == [day_b]
    silver = _rows(settings, first, name, Layer.SILVER)
    quarantine = _rows(settings, first, name, Layer.QUARANTINE)
    assert {r["event_id"] for r in silver} == {e["event_id"] for e in (*older, *newer)} - offending
    assert {json.loads(r["value"])["event_id"] for r in quarantine} == offending
    assert {r["reason_code"] for r in quarantine} == {"pattern_mismatch"}
    _assert_conserved(settings, first, name)
    # analytics --with-late recomputes the day the rebuild changed, and only it
    stale = stale_days(
        spark,
        settings,
        clicks_stream=name,
        clicks_silver=table_uri(settings, first.stream(name).table(Layer.SILVER)),
        logs_stream=None,
        gold_sessions=table_uri(settings, f"_test_no_gold_{suffix}"),
        session_gap=timedelta(minutes=30),
    )
    assert stale == [day_b]

    # a rerun derives the same rows and writes nothing
    after = {
        layer: _version(settings, first, name, layer) for layer in (Layer.SILVER, Layer.QUARANTINE)
    }
    rerun = rebuild(spark, settings, tightened, name, span)
    assert rerun.event_dates == [] and (rerun.silver, rerun.quarantined) == (50, 10)
    assert after == {
        layer: _version(settings, first, name, layer) for layer in (Layer.SILVER, Layer.QUARANTINE)
    }
    ledger = read_rows(
        ledger_uri(settings), ["kind", "event_dates", "rework"], partitions=[("stream", "=", name)]
    )
    rebuilds = [r for r in ledger if r["kind"] == "rebuild"]
    assert sorted(len(r["event_dates"]) for r in rebuilds) == [0, 1]
    assert all(r["rework"]["from_date"] == today == r["rework"]["to_date"] for r in rebuilds)

    wrong = _conveyor(
        "rebuild", name, "--from", "2026-01-02", "--to", "2026-01-01",
        "--catalog", str(tightened.source),
    )  # fmt: skip
    assert wrong.returncode == 2 and "empty range" in wrong.stderr, wrong.stderr


@pytest.fixture(autouse=True)
def _no_kill_point() -> None:
    assert KILL_POINT_ENV not in os.environ


def _dag(dag_id: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    from tests.conftest import REPO

    bag = DagBag(dag_folder=str(REPO / "dags" / f"{dag_id}.py"))
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


def test_replay_and_rebuild_dags_run_with_their_params(
    settings: Settings, spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suffix = uuid.uuid4().hex[:8]
    first, name = _variant(tmp_path / "v1", suffix)
    provision(settings, first)
    shared = _events(80, 6, event_type="share")
    send_events(
        settings,
        first.stream(name).topic.name,
        [encode(e, "user_id") for e in (*_events(81, 10), *shared)],
    )
    ingest_stream(spark, settings, first, name, available_now=True)

    def allow(fields: dict[str, Any]) -> None:
        fields["event_type"]["allowed"].append("share")

    grown, _ = _variant(tmp_path / "v2", suffix, allow)
    monkeypatch.setenv("CONVEYOR_CATALOG", str(grown.source))

    replay_dag = _dag("conveyor_replay")
    assert replay_dag.max_active_runs == 1
    assert set(replay_dag.params.get_param("stream").schema["enum"]) == set(grown.stream_names)
    run = replay_dag.test(run_conf={"stream": name, "reasons": ["not_allowed"]})
    assert run.state == "success"
    silver_ids = {r["event_id"] for r in _rows(settings, first, name, Layer.SILVER)}
    assert {e["event_id"] for e in shared} <= silver_ids
    assert Counter(r["replay_outcome"] for r in _rows(settings, first, name, Layer.QUARANTINE)) == {
        "silver": 6
    }

    versions = [_version(settings, first, name, layer) for layer in Layer]
    rebuild_dag = _dag("conveyor_rebuild")
    assert rebuild_dag.max_active_runs == 1
    run = rebuild_dag.test(run_conf={"stream": name, "all": True, "dry_run": True})
    assert run.state == "success"
    assert [_version(settings, first, name, layer) for layer in Layer] == versions
