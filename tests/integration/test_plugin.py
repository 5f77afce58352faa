"""The Airflow plugin against the running embedded stack: it loads, the Conveyor page's API
returns the numbers of a pipeline with known data (and refuses anonymous callers), the lake hook
reads the real lake, the watermark sensor defers and wakes up, and a real browser logs into the
Airflow UI and sees the page.

The known data goes through the shipped catalog's own streams (`clicks`, `app_logs`), because
the api-server reads the shipped catalog; no other test writes to them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conveyor.catalog import Catalog, Layer, ledger_uri, load_catalog, table_uri
from conveyor.evolution import Change, SchemaChange, record
from conveyor.ingest.stream import ingest_stream
from conveyor.maintenance import CompactOptions, compact_table
from conveyor.produce import (
    BAD_KINDS,
    Event,
    bad_event,
    click_events,
    encode,
    log_events,
    send_events,
)
from conveyor.settings import Settings
from tests.catalogs import SHIPPED_CATALOG, provision
from tests.integration.test_airflow import airflow_token

CLICKS, LOGS = 300, 60
# bad kinds whose quarantine reason differs from their name
REASON_OF = {"tombstone": "empty_value"}
MARKUP_URL = "/<b>bold</b>"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _get(url: str, token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def known(stack: dict[str, Any], spark: Any) -> dict[str, Any]:
    """The shipped streams with known data landed: CLICKS good clicks plus one record of every
    bad kind, LOGS log lines; several micro-batches; clicks_silver compacted once."""
    settings = Settings()
    catalog = load_catalog(SHIPPED_CATALOG)
    provision(settings, catalog)
    clicks = catalog.stream("clicks")
    good = list(click_events(CLICKS, seed=900))
    good[0]["url"] = MARKUP_URL  # the bad records built from it carry markup to the page
    bad = [
        Event(
            key=f"bad-{kind}".encode(),
            value=bad_event(
                kind,
                good[0],
                event_time="ts",
                required="user_id",
                max_bytes=clicks.event_schema.max_event_bytes,
            ),
        )
        for kind in BAD_KINDS
    ]
    send_events(settings, clicks.topic.name, [*(encode(e, "user_id") for e in good), *bad])
    send_events(
        settings,
        catalog.stream("app_logs").topic.name,
        (encode(e, None) for e in log_events(LOGS, seed=901)),
    )
    for name in catalog.stream_names:
        ingest_stream(
            spark, settings, catalog, name, available_now=True, max_offsets_per_trigger=100
        )
    compact_table(
        spark,
        settings,
        catalog,
        clicks.table(Layer.SILVER),
        CompactOptions(force=True, include_open=True),
    )
    # a schema change's ledger row, as `conveyor schema apply` writes it (tests/integration/
    # test_schema_evolution.py applies real ones; the shipped catalog's tables stay as declared)
    record(
        settings,
        SchemaChange(
            "clicks", "clicks_silver", "campaign", Change.ADD_FIELD, None, "string", True, "test"
        ),
        7,
        datetime.now(UTC),
    )
    reasons = Counter(REASON_OF.get(kind, kind) for kind in BAD_KINDS)
    return {"catalog": catalog, "settings": settings, "reasons": dict(reasons)}


def test_plugin_loads_with_its_page(stack: dict[str, Any]) -> None:
    probe = (
        "import json\n"
        "from airflow import plugins_manager\n"
        "plugins_manager.ensure_plugins_loaded()\n"
        "info = plugins_manager.get_plugin_info()\n"
        "print(json.dumps({'errors': plugins_manager.get_import_errors(), 'plugins': info},"
        " default=str))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == {}
    (plugin,) = report["plugins"]
    assert plugin["name"] == "conveyor"
    assert [a["url_prefix"] for a in plugin["fastapi_apps"]] == ["/conveyor"]
    assert [(v["name"], v["href"]) for v in plugin["external_views"]] == [("Conveyor", "conveyor/")]


def test_page_and_api_refuse_anonymous_callers(stack: dict[str, Any]) -> None:
    base = f"{stack['airflow_url']}/conveyor"
    for url, token in ((f"{base}/api/overview", None), (f"{base}/", None)):
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(url, token)
        assert refused.value.code == 401, url
    with pytest.raises(urllib.error.HTTPError) as forged:
        _get(f"{base}/api/overview", "not-a-jwt")
    assert forged.value.code in (401, 403)


def test_api_returns_the_numbers_of_the_known_pipeline(
    stack: dict[str, Any], spark: Any, known: dict[str, Any]
) -> None:
    catalog: Catalog = known["catalog"]
    settings: Settings = known["settings"]
    data = _get(f"{stack['airflow_url']}/conveyor/api/overview", airflow_token(stack))

    streams = {s["stream"]: s for s in data["streams"]}
    assert set(streams) == {"clicks", "app_logs"}
    clicks = streams["clicks"]
    assert clicks["total_lag"] == 0
    assert clicks["lag"] == {str(p): 0 for p in range(catalog.stream("clicks").topic.partitions)}
    assert clicks["quarantined_last_hour"] == len(BAD_KINDS)
    top = [(r["reason"], r["count"]) for r in clicks["top_reasons"]]
    assert len(top) == 5 and top[0] == ("empty_value", 2)  # the empty value and the tombstone
    assert all(known["reasons"][reason] == count for reason, count in top), top
    assert clicks["rows_per_second"] > 0
    assert 0 <= clicks["last_batch_age_s"] < 3600
    assert streams["app_logs"]["quarantined_last_hour"] == 0

    # table figures against Spark's own view of the same tables
    tables = {t["table"]: t for t in data["tables"]}
    for ref in catalog.tables():
        uri = table_uri(settings, ref)
        frame = spark.read.format("delta").load(uri)
        history = spark.sql(f"DESCRIBE HISTORY delta.`{uri}` LIMIT 1").first()
        assert tables[ref.name]["exists"] is True
        assert tables[ref.name]["files"] == len(frame.inputFiles()), ref.name
        assert tables[ref.name]["version"] == history["version"], ref.name
    assert tables["clicks_silver"]["files"] == 1
    assert tables["clicks_silver"]["last_compaction"] is not None
    assert tables["clicks_silver"]["small_share"] == 1.0

    # the 24-hour series adds up to what the ledger holds
    ledger = spark.read.format("delta").load(ledger_uri(settings))
    landed = ledger.where("stream = 'clicks' AND kind = 'batch'").agg({"rows_read": "sum"})
    total = landed.first()[0]
    assert total == CLICKS + len(BAD_KINDS)
    series = data["series"]["clicks"]
    assert len(series) == 24 * 4 + 1
    assert round(sum(b["rows_per_s"] * data["bucket_s"] for b in series)) == total
    largest = ledger.where("stream = 'clicks'").agg({"backlog": "max"}).first()[0]
    assert largest > 0  # 100 records per micro-batch: the first batches left a backlog
    assert max(b["backlog"] or 0 for b in series) == largest
    assert "conveyor_ingest" in data["dags"]
    assert [
        (c["stream"], c["table"], c["field"], c["change"], c["new_type"], c["version"])
        for c in data["schema_changes"]
    ] == [("clicks", "clicks_silver", "campaign", "add_field", "string", 7)]

    # the quarantine panel: counts by reason, the newest records as text, cut when long
    panels = {p["stream"]: p for p in data["quarantine"]}
    assert panels["app_logs"]["reasons"] == []
    reasons = {r["reason"]: r for r in panels["clicks"]["reasons"]}
    assert {code: r["count"] for code, r in reasons.items()} == known["reasons"]
    assert all(1 <= len(r["samples"]) <= min(3, r["count"]) for r in reasons.values())
    (oversized,) = reasons["oversized"]["samples"]
    assert oversized["truncated"] and len(oversized["value"]) == 201
    (not_allowed,) = reasons["not_allowed"]["samples"]
    assert '"event_type": "no-such-value"' in not_allowed["value"]
    assert not_allowed["topic"] == "clicks" and not_allowed["offset"] >= 0
    assert "not_allowed" not in not_allowed["reason"] and "no-such-value" in not_allowed["reason"]
    assert data["replay_dag"] == "conveyor_replay" and "conveyor_replay" in data["dags"]


def test_lake_hook_reads_the_real_lake(stack: dict[str, Any], known: dict[str, Any]) -> None:
    from airflow.sdk import Connection

    from conveyor.provider.hooks.lake import (
        ConveyorLakeHook,
        LakeConnectionInvalid,
        settings_from_connection,
    )

    hook = ConveyorLakeHook()
    assert hook.settings.lake_uri == known["settings"].lake_uri
    ok, message = hook.test_connection()
    assert ok and "ledger at version" in message, message
    reports = {r.table: r for r in hook.table_reports(known["catalog"])}
    assert reports["clicks_silver"].files == 1
    batches = hook.ledger_batches("clicks")
    assert sum(b["rows_read"] for b in batches) == CLICKS + len(BAD_KINDS)
    assert len(batches) >= 3  # 100 records per micro-batch
    assert [b["batch_id"] for b in batches] == sorted(b["batch_id"] for b in batches)

    with pytest.raises(LakeConnectionInvalid, match="'broken_lake': no host"):
        settings_from_connection(Connection(conn_id="broken_lake", conn_type="hdfs"))


def test_a_browser_logs_in_and_sees_the_conveyor_page(
    stack: dict[str, Any], known: dict[str, Any], artifacts_dir: Path
) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "Debian's chromium is missing: `make setup` installs it"
    base = str(stack["airflow_url"])
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"{base}/")
            page.get_by_label("Username").fill(str(stack["airflow_user"]))
            page.get_by_label("Password").fill(str(stack["airflow_password"]))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{base}/", timeout=60_000)
            page.goto(f"{base}/plugin/conveyor")
            frame = page.frame_locator("iframe")
            frame.locator("body[data-loaded=true]").wait_for(timeout=60_000)
            row = frame.locator("tr[data-stream=clicks]")
            assert row.locator("[data-metric=quarantined]").inner_text() == str(len(BAD_KINDS))
            assert row.locator("[data-metric=lag]").inner_text() == "0"
            silver = frame.locator("tr[data-table=clicks_silver]")
            assert silver.locator("[data-metric=files]").inner_text() == "1"
            rate = frame.locator("#rate-chart polyline[data-series=clicks]")
            assert rate.count() == 1
            assert len(rate.get_attribute("points").split()) == 24 * 4 + 1  # type: ignore[union-attr]
            assert frame.locator("#dags a", has_text="conveyor_ingest").count() == 1
            change = frame.locator('tr[data-change="clicks_silver.campaign"]')
            assert change.locator("[data-metric=change]").inner_text() == "add_field"
            assert change.locator("[data-metric=new-type]").inner_text() == "string"
            panel = frame.locator("#quarantine [data-stream=clicks] tr[data-reason=not_allowed]")
            assert panel.locator("[data-metric=count]").inner_text() == "1"
            sample = panel.locator("[data-metric=sample]").inner_text()
            assert MARKUP_URL in sample  # shown as text, never as markup
            assert frame.locator("#quarantine b").count() == 0
            replay = panel.locator("a[data-metric=replay]")
            assert (replay.get_attribute("href") or "").endswith("/dags/conveyor_replay")
            page.screenshot(path=str(artifacts_dir / "conveyor-page.png"), full_page=True)
        finally:
            browser.close()
    assert (artifacts_dir / "conveyor-page.png").stat().st_size > 10_000
