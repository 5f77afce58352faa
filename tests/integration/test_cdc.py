"""Database change streams end to end: a real PostgreSQL table, Debezium's Postgres connector on
a real Kafka Connect worker, the real broker, HDFS and Spark. After a scripted workload (rows
before the connector starts, inserts, updates to NULL and back, primary-key updates, deletes,
re-inserts, one transaction of many rows) silver equals `SELECT * FROM source ORDER BY id`,
every column compared by type, read back by delta-rs (not Spark). With the ingest killed -9
three times and the Connect worker restarted, silver still equals the source and the scd2
history holds each version once, checked against an audit trigger's record of every version.
"""

from __future__ import annotations

import contextlib
import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conveyor.catalog import Catalog, CdcTable, Layer, table_uri
from conveyor.debezium import apply_connectors, connector_name, plan_connectors
from conveyor.delta_rs import read_rows
from conveyor.ingest.stream import ingest_stream
from conveyor.settings import Settings, project_root
from conveyor.stack.process import wait_until
from tests.catalogs import catalog_variant, provision
from tests.integration.conftest import CdcStack
from tests.jobs import kill_group, start_ingest_job

EXAMPLE = project_root() / "examples/conveyor.cdc.yaml"
COLUMNS = (
    "id",
    "account",
    "balance",
    "name",
    "code",
    "active",
    "updated_at",
    "born",
    "attrs",
    "avatar",
    "version",
)


def _ddl(table: str) -> str:
    return f"""
    CREATE TABLE {table} (
        id int PRIMARY KEY, account bigint NOT NULL, balance numeric(12,2), name text NOT NULL,
        code varchar(8), active boolean NOT NULL, updated_at timestamptz, born date,
        attrs jsonb, avatar bytea, version int NOT NULL
    );
    CREATE TABLE {table}_audit (
        seq bigserial PRIMARY KEY, id int NOT NULL, version int, gone boolean NOT NULL,
        image jsonb
    );
    CREATE FUNCTION {table}_audit() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.id <> NEW.id) THEN
            INSERT INTO {table}_audit (id, version, gone) VALUES (OLD.id, OLD.version, true);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO {table}_audit (id, version, gone, image)
            VALUES (NEW.id, NEW.version, false, to_jsonb(NEW));
        END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql;
    CREATE TRIGGER {table}_audit AFTER INSERT OR UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION {table}_audit();
    """


class Source:
    """The source table and a workload on it; every write bumps `version` (unique per run)."""

    def __init__(self, cdc: CdcStack, table: str, seed: int) -> None:
        import psycopg

        self.conn = psycopg.connect(**cdc.postgres.conninfo(), autocommit=True)
        self.table = table
        self.rng = random.Random(seed)
        self.version = 0
        self.conn.execute(_ddl(table))

    def _values(self, key: int) -> dict[str, Any]:
        rng = self.rng
        self.version += 1
        maybe = rng.random() < 0.2  # some NULLs in every nullable column
        return {
            "id": key,
            "account": rng.randrange(-(2**62), 2**62),
            "balance": None if maybe else Decimal(rng.randrange(-(10**9), 10**9)) / 100,
            "name": rng.choice(["Ada", "Grace", "Zoë", "O'Brien", "名前", ""]),
            "code": None if maybe else "".join(rng.choices("ABCDEF0123", k=rng.randint(0, 8))),
            "active": rng.random() < 0.5,
            "updated_at": None
            if maybe
            else datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**14)),
            "born": None if maybe else date(1950, 1, 1) + timedelta(days=rng.randrange(25_000)),
            "attrs": None if maybe else json.dumps({"tier": rng.randint(1, 3), "tags": ["a"]}),
            "avatar": None if maybe else rng.randbytes(rng.randint(0, 40)),
            "version": self.version,
        }

    def insert(self, key: int) -> None:
        values = self._values(key)
        names = ", ".join(values)
        marks = ", ".join(["%s"] * len(values))
        self.conn.execute(
            f"INSERT INTO {self.table} ({names}) VALUES ({marks})", list(values.values())
        )

    def update(self, key: int) -> None:
        values = self._values(key)
        del values["id"]
        sets = ", ".join(f"{name} = %s" for name in values)
        self.conn.execute(f"UPDATE {self.table} SET {sets} WHERE id = %s", [*values.values(), key])

    def execute(self, sql: str, *args: Any) -> None:
        self.conn.execute(sql.format(t=self.table), args or None)

    def keys(self) -> list[int]:
        return [r[0] for r in self.conn.execute(f"SELECT id FROM {self.table}").fetchall()]

    def rows(self) -> list[dict[str, Any]]:
        cursor = self.conn.execute(f"SELECT {', '.join(COLUMNS)} FROM {self.table} ORDER BY id")
        return [dict(zip(COLUMNS, row, strict=True)) for row in cursor.fetchall()]

    def versions(self) -> dict[int, list[tuple[bool, int | None]]]:
        """Each key's versions in order (a deletion is (True, None)), a repeat of the version
        before it (a no-op update) left out: what the history must hold."""
        out: dict[int, list[tuple[bool, int | None]]] = {}
        last: dict[int, Any] = {}
        cursor = self.conn.execute(
            f"SELECT id, version, gone, image FROM {self.table}_audit ORDER BY seq"
        )
        for key, version, gone, image in cursor.fetchall():
            state = (gone, None if gone else json.dumps(image, sort_keys=True))
            if last.get(key) == state:
                continue
            last[key] = state
            out.setdefault(key, []).append((gone, None if gone else version))
        return out

    def workload(self, steps: int, first_key: int) -> None:
        """Inserts, updates (of non-key columns, to NULL and back, of the key itself), no-op
        updates, deletes, re-inserts of deleted keys and one transaction of many rows."""
        rng = self.rng
        deleted: list[int] = []
        next_key = first_key
        for step in range(steps):
            keys = self.keys()
            roll = rng.random()
            if roll < 0.25 or not keys:
                self.insert(next_key)
                next_key += 1
            elif roll < 0.55:
                self.update(rng.choice(keys))
            elif roll < 0.6:
                key = rng.choice(keys)
                self.version += 1
                self.execute(
                    "UPDATE {t} SET code = NULL, version = %s WHERE id = %s", self.version, key
                )
                self.version += 1
                self.execute(
                    "UPDATE {t} SET code = 'BACK', version = %s WHERE id = %s", self.version, key
                )
            elif roll < 0.65:
                self.execute("UPDATE {t} SET name = name WHERE id = %s", rng.choice(keys))
            elif roll < 0.72:
                key = rng.choice(keys)
                self.version += 1
                self.execute(
                    "UPDATE {t} SET id = %s, version = %s WHERE id = %s",
                    next_key,
                    self.version,
                    key,
                )
                next_key += 1
            elif roll < 0.85:
                key = rng.choice(keys)
                self.execute("DELETE FROM {t} WHERE id = %s", key)
                deleted.append(key)
            elif deleted:
                self.insert(deleted.pop(rng.randrange(len(deleted))))
            if step == steps // 2:
                with self.conn.transaction():
                    for key in self.keys()[:40]:
                        self.update(key)
                    self.insert(next_key)
                    next_key += 1


def _normal(row: dict[str, Any]) -> dict[str, Any]:
    """A row as compared: jsonb by its value, bytes as bytes, timestamps aware UTC."""
    out = dict(row)
    if out["attrs"] is not None and isinstance(out["attrs"], str):
        out["attrs"] = json.loads(out["attrs"])
    if isinstance(out["avatar"], memoryview):
        out["avatar"] = bytes(out["avatar"])
    if isinstance(out["updated_at"], datetime):
        out["updated_at"] = out["updated_at"].astimezone(UTC)
    return out


def _silver(settings: Settings, catalog: Catalog, name: str) -> list[dict[str, Any]]:
    uri = table_uri(settings, catalog.stream(name).table(Layer.SILVER))
    rows = read_rows(uri, COLUMNS)
    return sorted((_normal(r) for r in rows), key=lambda r: r["id"])


def _history(
    settings: Settings, catalog: Catalog, name: str
) -> dict[int, list[tuple[bool, int | None]]]:
    rows = read_rows(
        f"{settings.lake_uri}/{catalog.stream(name).table(CdcTable.HISTORY).path}",
        ["id", "version", "_op", "_lsn", "offset"],
    )
    out: dict[int, list[tuple[bool, int | None]]] = {}
    for r in sorted(rows, key=lambda r: (r["id"], r["_lsn"], r["offset"])):
        gone = r["_op"] == "d"
        out.setdefault(r["id"], []).append((gone, None if gone else r["version"]))
    return out


def _assert_history(settings: Settings, catalog: Catalog, name: str, source: Source) -> None:
    """The history holds each version of each key once, in order; on a difference, the change
    records of the first differing key (from bronze) say why."""
    expected, history = source.versions(), _history(settings, catalog, name)
    if history == expected:
        return
    key = next(k for k in sorted(set(expected) | set(history)) if expected.get(k) != history.get(k))
    records = []
    for r in read_rows(
        table_uri(settings, catalog.stream(name).table(Layer.BRONZE)),
        ["partition", "offset", "value"],
    ):
        if not r["value"]:
            continue
        change = json.loads(r["value"])
        image = change.get("after") or change.get("before") or {}
        if image.get("id") == key:
            records.append(
                (
                    r["partition"],
                    r["offset"],
                    change["op"],
                    change["source"]["lsn"],
                    image.get("version"),
                )
            )
    pytest.fail(
        f"key {key}: history {history.get(key)} != audit {expected.get(key)}; change records "
        f"(partition, offset, op, lsn, version): {sorted(records)}"
    )


@pytest.fixture
def mirrored(cdc_stack: CdcStack, tmp_path: Path) -> Iterator[tuple[Catalog, str, Source]]:
    """A fresh source table with 30 rows, its cdc stream's topic, no connector yet."""
    suffix = uuid.uuid4().hex[:8]
    table = f"customers_{suffix}"

    def edit(data: dict[str, Any]) -> None:
        for spec in data["streams"].values():
            spec["cdc"]["source_table"] = f"public.{table}"

    catalog = catalog_variant(tmp_path, suffix=suffix, edit=edit, source=EXAMPLE)
    name = f"customers_{suffix}"
    source = Source(cdc_stack, table, seed=int(suffix, 16))
    for key in range(1, 31):
        source.insert(key)
    provision(cdc_stack.settings, catalog)
    try:
        yield catalog, name, source
    finally:
        _drop_connector(cdc_stack, catalog.stream(name))
        source.conn.close()


def _drop_connector(cdc: CdcStack, stream: Any) -> None:
    """Delete the connector and, once its task let go of it, its replication slot (Postgres
    keeps WAL for a slot until it is dropped)."""
    import urllib.request

    from conveyor.debezium import slot_name

    request = urllib.request.Request(
        f"{cdc.connect_url}/connectors/{connector_name(stream)}", method="DELETE"
    )
    with contextlib.suppress(OSError):
        urllib.request.urlopen(request, timeout=30).close()
    import psycopg

    with psycopg.connect(**cdc.postgres.conninfo(), autocommit=True) as conn:

        def dropped() -> bool:
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                (slot_name(stream),),
            ).fetchone()
            if row is None:
                return True
            if row[0]:
                return False
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot_name(stream),))
            return True

        wait_until(dropped, 60, what="the connector's replication slot to be released")


def _connect(settings: Settings, catalog: Catalog, name: str, source: Source) -> None:
    """Register the connector and wait until its snapshot of the table is in the topic, so
    the workload's first changes come after it (a row changed before the snapshot reads it
    would skip a version the audit holds)."""
    from conveyor.kafka.offsets import kafka_bounds

    apply_connectors(settings, catalog, [name])
    rows = len(source.keys())
    topic = catalog.stream(name).topic.name

    def held() -> int:
        return sum(end - start for start, end in kafka_bounds(settings, topic).values())

    wait_until(lambda: held() >= rows, 120, what=f"the snapshot's {rows} rows in {topic}")


def _catch_up(spark: Any, settings: Settings, catalog: Catalog, name: str, source: Source) -> None:
    """Ingest (available-now) until silver holds what the source holds, with a deadline."""

    def equal() -> bool:
        ingest_stream(spark, settings, catalog, name, available_now=True)
        return _silver(settings, catalog, name) == [_normal(r) for r in source.rows()]

    wait_until(equal, 240, what="silver to equal the source table", interval_s=1)


def test_silver_mirrors_the_source_table_exactly(
    cdc_stack: CdcStack, spark: Any, mirrored: tuple[Catalog, str, Source]
) -> None:
    catalog, name, source = mirrored
    settings = cdc_stack.settings
    plan = plan_connectors(settings, catalog, [name])
    assert [c.action for c in plan.changes] == ["create"]
    assert plan.changes[0].replica_identity == "default"
    _connect(settings, catalog, name, source)
    again = plan_connectors(settings, catalog, [name])
    assert [(c.action, c.replica_identity) for c in again.changes] == [("unchanged", "full")]
    assert not again.pending

    source.workload(250, first_key=1000)
    _catch_up(spark, settings, catalog, name, source)
    expected = [_normal(r) for r in source.rows()]
    silver = _silver(settings, catalog, name)
    assert silver == expected  # every column, every row, by type
    assert len(silver) > 20
    assert any(r["balance"] is None for r in silver) and any(r["code"] == "BACK" for r in silver)
    assert isinstance(silver[0]["balance"], Decimal | None)

    ledger = [
        r
        for r in read_rows(
            settings.lake_uri + "/_conveyor/ledger", ["stream", "kind", "rows_read", "cdc"]
        )
        if r["stream"] == name and r["kind"] == "batch"
    ]
    counts = {k: sum(r["cdc"][k] for r in ledger) for k in ledger[0]["cdc"]}
    audit = source.conn.execute(
        f"SELECT count(*) FILTER (WHERE NOT gone), count(*) FILTER (WHERE gone) FROM {source.table}_audit"
    ).fetchone()
    assert counts["deletes"] == audit[1]
    assert counts["inserts"] + counts["updates"] + counts["noops"] == audit[0]
    assert counts["noops"] > 0 and counts["tombstones"] == counts["deletes"]
    bronze = read_rows(table_uri(settings, catalog.stream(name).table(Layer.BRONZE)), ["offset"])
    assert sum(r["rows_read"] for r in ledger) == len(bronze)
    _assert_history(settings, catalog, name, source)


def test_kill_nine_and_a_connect_restart_lose_and_double_nothing(
    cdc_stack: CdcStack, spark: Any, mirrored: tuple[Catalog, str, Source], tmp_path: Path
) -> None:
    from conveyor.stack.local import LocalStack

    catalog, name, source = mirrored
    settings = cdc_stack.settings
    _connect(settings, catalog, name, source)
    log = tmp_path / "job.log"
    rng = random.Random(7)
    stack = LocalStack(Settings())

    def landed() -> int:
        rows = read_rows(settings.lake_uri + "/_conveyor/ledger", ["stream", "kind"])
        return sum(1 for r in rows if r["stream"] == name and r["kind"] == "batch")

    # two kill -9s of the ingest at a random moment inside a batch; before the second, the
    # Connect worker is killed and restarted too (it re-sends from its last flushed offset)
    for kill in range(2):
        job = start_ingest_job(
            settings, catalog, name, log, {"CONVEYOR_TRIGGER_INTERVAL": "1 second"}
        )
        try:
            before = landed()
            source.workload(60, first_key=1000 + 1000 * kill)
            wait_until(
                lambda b=before, j=job: landed() > b or j.poll() is not None,
                240,
                what=f"a landed batch before kill {kill + 1}",
            )
            assert job.poll() is None, log.read_text()[-3000:]
            if kill == 1:  # the Connect worker dies mid-stream and comes back: it re-sends
                stack.kill_component("connect")
                source.workload(30, first_key=5000)
                stack.start_component("connect")
            source.workload(20, first_key=7000 + 100 * kill)
            time.sleep(rng.uniform(0.0, 2.0))  # a random moment inside a batch, not a wait
        finally:
            kill_group(job)
    _catch_up(spark, settings, catalog, name, source)
    assert _silver(settings, catalog, name) == [_normal(r) for r in source.rows()]
    _assert_history(settings, catalog, name, source)
    # no batch committed twice to any table the MERGE path writes (Delta's log, read by Spark)
    stream = catalog.stream(name)
    for ref in stream.all_tables():
        if ref.layer in (Layer.BRONZE, Layer.QUARANTINE):
            continue  # appends: Delta's own app transactions
        path = ref.path
        log_rows = spark.read.json(f"{settings.lake_uri}/{path}/_delta_log/*.json")
        per_batch = log_rows.where("txn IS NOT NULL").groupBy("txn.appId", "txn.version").count()
        assert per_batch.where("count > 1").count() == 0, f"{path}: a batch committed twice"
    ledger = read_rows(
        settings.lake_uri + "/_conveyor/ledger", ["stream", "kind", "app_id", "batch_id"]
    )
    ids = [
        (r["app_id"], r["batch_id"]) for r in ledger if r["stream"] == name and r["kind"] == "batch"
    ]
    assert len(ids) == len(set(ids))


def test_malformed_change_events_go_to_quarantine(
    cdc_stack: CdcStack, spark: Any, mirrored: tuple[Catalog, str, Source]
) -> None:
    from conveyor.produce import Event, send_events

    catalog, name, source = mirrored
    settings = cdc_stack.settings
    _connect(settings, catalog, name, source)
    topic = catalog.stream(name).topic.name
    bad = [
        (b'{"id": 1}', b"not json"),
        (b'{"id": 2}', json.dumps({"op": "x", "after": {"id": 2}, "source": {"lsn": 1}}).encode()),
        (
            b'{"id": 3}',
            json.dumps({"op": "c", "after": {"name": "no key"}, "source": {"lsn": 1}}).encode(),
        ),
    ]
    send_events(settings, topic, (Event(key, value) for key, value in bad))
    _catch_up(spark, settings, catalog, name, source)
    quarantine = read_rows(
        table_uri(settings, catalog.stream(name).table(Layer.QUARANTINE)), ["reason_code", "reason"]
    )
    assert sorted(r["reason_code"] for r in quarantine) == [
        "malformed_envelope",
        "missing_key",
        "unknown_op",
    ]


def test_a_column_added_in_postgres_is_kept_until_declared(
    cdc_stack: CdcStack, spark: Any, mirrored: tuple[Catalog, str, Source]
) -> None:
    from conveyor.ingest.monitor import stream_status

    catalog, name, source = mirrored
    settings = cdc_stack.settings
    _connect(settings, catalog, name, source)
    source.execute("ALTER TABLE {t} ADD COLUMN loyalty text")
    source.version += 1
    source.execute("UPDATE {t} SET loyalty = 'gold', version = %s WHERE id = 5", source.version)
    plan = plan_connectors(settings, catalog, [name])
    assert any("'loyalty' is not in the catalog" in n for n in plan.changes[0].notes)
    _catch_up(spark, settings, catalog, name, source)
    uri = table_uri(settings, catalog.stream(name).table(Layer.SILVER))
    kept = {r["id"]: r["_unknown"] for r in read_rows(uri, ["id", "_unknown"])}
    assert json.loads(kept[5]) == {"loyalty": "gold"}
    assert kept[6] is None  # not changed since the snapshot, taken before the column existed
    # status counts this stream's changes of the last hour from the ledger
    changes = stream_status(settings, catalog.stream(name)).changes_last_hour
    assert changes == {"inserts": 30, "updates": 1, "deletes": 0, "noops": 0}
