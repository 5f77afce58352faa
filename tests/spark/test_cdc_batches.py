"""A cdc stream's batches over local files: Debezium envelopes -> silver by MERGE, delete
markers, scd2 history, quarantine, the ledger's counts, and a replayed batch changing nothing.
The envelopes are written as Debezium's JSON converter writes them (schemas disabled)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conveyor.catalog import CdcTable, Layer, load_catalog
from conveyor.debezium import UNAVAILABLE
from conveyor.ingest.core import RunState, StreamTarget, process_batch
from conveyor.ingest.landings import landing_for
from conveyor.settings import Settings

CATALOG = """
version: 1
streams:
  accounts:
    kind: cdc
    topic:
      partitions: 2
      replication_factor: 1
      configs: {{retention.ms: 7d, cleanup.policy: delete, min.insync.replicas: 1}}
    schema:
      fields:
        id: {{type: int, required: true}}
        name: {{type: string}}
        balance: {{type: "decimal(12,2)"}}
        opened: {{type: date}}
        seen: {{type: timestamp}}
        blob: {{type: bytes}}
    cdc:
      source_table: public.accounts
      primary_key: [id]
      deletes: {deletes}
      history: scd2
    tables: {{}}
    service_levels: {{max_downtime: 1d, backfill_window: 1d}}
"""


def envelope(op: str, lsn: int, before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    return json.dumps(
        {
            "before": before,
            "after": after,
            "source": {"connector": "postgresql", "lsn": lsn, "ts_ms": 1_765_000_000_000 + lsn},
            "op": op,
            "ts_ms": 1_765_000_000_000 + lsn,
        }
    )


def row(i: int, name: str | None = "a", balance: str | None = "1.50") -> dict[str, Any]:
    return {
        "id": i,
        "name": name,
        "balance": balance,
        "opened": 20000,
        "seen": 1_700_000_000_123_456,
        "blob": "AAE=",
    }


class Feed:
    """Kafka rows of one partition with increasing offsets, landed batch by batch."""

    def __init__(self, spark: Any, settings: Settings, deletes: str, folder: Path) -> None:
        (folder / "catalog.yaml").write_text(CATALOG.format(deletes=deletes))
        self.catalog = load_catalog(folder / "catalog.yaml")
        self.stream = self.catalog.stream("accounts")
        self.spark = spark
        self.settings = settings
        self.target = StreamTarget.resolve(settings, self.stream, "app-1")
        self.offset = 0

    def batch(self, values: list[str | None], batch_id: int) -> Any:
        rows = []
        for value in values:
            key = None
            if value is not None:
                try:
                    parsed = json.loads(value)
                    image = parsed.get("after") or parsed.get("before") or {}
                    key = json.dumps({"id": image.get("id")}).encode()
                except (ValueError, AttributeError):
                    key = None
            rows.append(
                (
                    key,
                    value.encode() if value is not None else None,
                    None,
                    "accounts",
                    0,
                    self.offset,
                    datetime(2026, 12, 6, tzinfo=UTC),
                )
            )
            self.offset += 1
        frame = self.spark.createDataFrame(
            rows,
            "key BINARY, value BINARY, headers ARRAY<STRUCT<key: STRING, value: BINARY>>, "
            "topic STRING, partition INT, offset BIGINT, timestamp TIMESTAMP",
        )
        state = RunState(self.settings)
        landing = landing_for(self.stream)
        return process_batch(self.spark, self.target, frame, batch_id, state, landing)

    def table(self, path: str) -> list[dict[str, Any]]:
        uri = self.settings.lake_uri + "/" + path
        return [r.asDict() for r in self.spark.read.format("delta").load(uri).collect()]

    def silver(self) -> dict[int, dict[str, Any]]:
        return {r["id"]: r for r in self.table(self.stream.table(Layer.SILVER).path)}


def test_hard_deletes_ordering_markers_history_and_replay(
    spark: Any, lake: Settings, tmp_path: Path
) -> None:
    feed = Feed(spark, lake, "hard", tmp_path)
    # batch 0: snapshot of 1 and 2, then 3 created and updated twice in the same batch
    first = feed.batch(
        [
            envelope("r", 10, None, row(1)),
            envelope("r", 10, None, row(2, balance="2.00")),
            envelope("c", 20, None, row(3, name="x")),
            envelope("u", 21, row(3, name="x"), row(3, name="y")),
            envelope("u", 22, row(3, name="y"), row(3, name=None)),
        ],
        0,
    )
    assert first is not None and first.cdc is not None
    assert (first.cdc.inserts, first.cdc.updates, first.cdc.deletes) == (3, 2, 0)
    silver = feed.silver()
    assert sorted(silver) == [1, 2, 3]
    assert silver[3]["name"] is None and silver[3]["_lsn"] == 22
    assert str(silver[2]["balance"]) == "2.00"
    assert silver[1]["opened"].isoformat() == "2024-10-04"
    assert silver[1]["blob"] == bytearray(b"\x00\x01")

    # batch 1: delete 2 (and its tombstone), a no-op update of 1, an older change of 3
    # re-sent (lower LSN: ignored), a PK update 1 -> 10 (delete + create), malformed input
    mixed = [
        envelope("d", 30, row(2, balance="2.00"), None),
        None,
        envelope("u", 31, row(1), row(1)),
        envelope("u", 21, row(3, name="x"), row(3, name="y")),
        envelope("d", 32, row(1), None),
        envelope("c", 32, None, row(10)),
        "not json",
        envelope("t", 33, None, None),
        envelope("u", 34, row(4), {**row(4), "id": None}),
        envelope("c", 35, None, {**row(5), "balance": "abc"}),
        envelope("u", 36, None, {**row(6), "name": UNAVAILABLE}),
    ]
    second = feed.batch(mixed, 1)
    assert second is not None and second.cdc is not None
    counts = second.cdc
    assert (counts.deletes, counts.tombstones, counts.noops, counts.updates) == (2, 1, 1, 1)
    assert second.quarantined == 5 and second.rows_read == 11
    silver = feed.silver()
    assert sorted(silver) == [3, 10]
    assert silver[3]["name"] is None  # the re-sent older update did not win
    quarantine = {r["offset"]: r["reason_code"] for r in feed.table("accounts/quarantine")}
    assert sorted(quarantine.values()) == [
        "malformed_envelope",
        "malformed_envelope",
        "missing_key",
        "unknown_op",
        "wrong_type",
    ]
    markers = {
        r["id"]: r["_lsn"] for r in feed.table(feed.stream.table(CdcTable.DELETE_MARKERS).path)
    }
    assert markers == {2: 30, 1: 32}

    # batch 2: a Connect restart re-sends 2's creation (older than its delete): no resurrection;
    # then 2 is inserted again, later than the delete
    feed.batch([envelope("r", 10, None, row(2, balance="2.00"))], 2)
    assert sorted(feed.silver()) == [3, 10]
    feed.batch([envelope("c", 40, None, row(2, balance="9.99"))], 3)
    silver = feed.silver()
    assert sorted(silver) == [2, 3, 10] and str(silver[2]["balance"]) == "9.99"
    # a marker older than its key's row is harmless; maintenance drops it past the horizon

    # the history: each version once, the current one open
    history = feed.table(feed.stream.table(CdcTable.HISTORY).path)
    of_2 = sorted((r for r in history if r["id"] == 2), key=lambda r: r["_lsn"])
    assert [(r["_op"], r["_lsn"], r["_is_current"]) for r in of_2] == [
        ("r", 10, False),
        ("d", 30, False),
        ("c", 40, True),
    ]
    assert of_2[0]["_valid_to"] == of_2[1]["_valid_from"]
    of_1 = [r for r in history if r["id"] == 1]
    assert sorted(r["_op"] for r in of_1) == ["d", "r"]  # the no-op added no version
    assert [r["_is_current"] for r in history if r["id"] == 3] == [False, False, True]

    # a replayed batch id commits nothing anywhere
    def versions() -> list[int]:
        from conveyor.spark.jvm import delta_version

        paths = [feed.stream.table(layer).path for layer in Layer] + [
            feed.stream.table(CdcTable.DELETE_MARKERS).path,
            feed.stream.table(CdcTable.HISTORY).path,
            "_conveyor/ledger",
        ]
        return [delta_version(spark, lake.lake_uri + "/" + p) or -1 for p in paths]

    before = versions()
    feed.offset -= len(mixed)
    feed.batch(mixed, 1)
    assert versions() == before
    assert sorted(feed.silver()) == [2, 3, 10]

    # markers past the retention (7 days after the deletes' commit time) are dropped: not
    # before it; then by the vacuum of the markers' table, which the CLI and the DAG both run
    from conveyor.maintenance import vacuum_table
    from conveyor.maintenance.markers import prune_markers

    deleted_at = datetime.fromtimestamp(1_765_000_000, UTC)
    assert prune_markers(spark, lake, feed.stream, now=deleted_at) == 0
    assert len(feed.table(feed.stream.table(CdcTable.DELETE_MARKERS).path)) == 2
    markers = feed.stream.table(CdcTable.DELETE_MARKERS)
    assert markers in feed.catalog.tables()
    run = vacuum_table(spark, lake, feed.catalog, markers)  # now is a year past the deletes
    assert run.message.startswith("dropped 2 delete marker(s) past the retention"), run.message
    assert feed.table(markers.path) == []


def test_soft_deletes_keep_the_row_flagged(spark: Any, lake: Settings, tmp_path: Path) -> None:
    feed = Feed(spark, lake, "soft", tmp_path)
    feed.batch([envelope("c", 5, None, row(1)), envelope("c", 6, None, row(2))], 0)
    feed.batch([envelope("d", 7, row(1), None), envelope("u", 6, row(2), row(2, name="z"))], 1)
    silver = feed.silver()
    assert silver[1]["_deleted"] is True and silver[1]["_deleted_at"] is not None
    assert silver[2]["_deleted"] is False and silver[2]["name"] == "a"
    feed.batch([envelope("c", 8, None, row(1, name="back"))], 2)
    silver = feed.silver()
    assert silver[1]["_deleted"] is False and silver[1]["name"] == "back"
    assert silver[1]["_deleted_at"] is None


@pytest.mark.parametrize("deletes", ["hard"])
def test_created_and_deleted_in_one_batch_never_lands(
    spark: Any, lake: Settings, tmp_path: Path, deletes: str
) -> None:
    feed = Feed(spark, lake, deletes, tmp_path)
    feed.batch([envelope("c", 5, None, row(1))], 0)
    feed.batch([envelope("c", 6, None, row(2)), envelope("d", 7, row(2), None)], 1)
    assert sorted(feed.silver()) == [1]
