"""`stack up --with cdc`: Postgres and Kafka Connect join the running stack, and only they start."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import psycopg

from conveyor.settings import Settings
from conveyor.stack.change_capture import CDC_COMPONENTS, DEBEZIUM_POSTGRES, connector_plugins
from conveyor.stack.local import LocalStack
from conveyor.stack.process import group_members, wait_until
from tests.integration.conftest import CdcStack


def _conveyor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor.cli", *args], capture_output=True, text=True, check=False
    )


def _pgids() -> dict[str, int]:
    return {c["name"]: c["pgid"] for c in LocalStack(Settings()).status()["components"]}


def test_with_cdc_starts_only_postgres_and_connect(stack: dict[str, object]) -> None:
    before = _pgids()
    result = _conveyor("stack", "up", "--with", "cdc")
    assert result.returncode == 0, result.stdout + result.stderr

    after = _pgids()
    core = {name: pgid for name, pgid in before.items() if name not in CDC_COMPONENTS}
    assert {name: after[name] for name in core} == core, "a running component was restarted"
    assert set(after) == set(core) | set(CDC_COMPONENTS)
    status = json.loads(_conveyor("stack", "status", "--json").stdout)
    assert all(c["state"] == "running" for c in status["components"])
    assert status["connect_url"].startswith("http://127.0.0.1:")
    assert status["postgres_host"] == "127.0.0.1"
    assert (status["postgres_database"], status["postgres_user"]) == ("conveyor", "conveyor")
    assert int(status["postgres_port"]) in next(
        c["ports"] for c in status["components"] if c["name"] == "postgres"
    )
    state = json.loads(Settings().state_file.read_text())
    assert state["with"] == ["cdc"]


def test_a_plain_up_keeps_the_cdc_components(cdc_stack: CdcStack) -> None:
    before = _pgids()
    again = LocalStack(Settings()).up()
    assert {c["name"]: c["pgid"] for c in again["components"]} == before
    assert set(CDC_COMPONENTS) <= set(before)


def test_postgres_takes_the_password_from_its_file_only(cdc_stack: CdcStack) -> None:
    connection = cdc_stack.postgres
    with psycopg.connect(**connection.conninfo(), connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT current_database(), current_setting('wal_level'), rolreplication, rolsuper"
            " FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert row == ("conveyor", "logical", True, True)

    status = LocalStack(Settings()).status()
    password_file = Path(status["postgres_password_file"])
    assert password_file == cdc_stack.settings.home / "postgres" / "password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text().strip() == connection.password
    assert connection.password not in Settings().state_file.read_text()
    assert connection.password not in connection.describe()
    # nor on any command line or in any environment of the stack's processes
    for component in status["components"]:
        for pid in group_members(component["pgid"]):
            for view in ("cmdline", "environ"):
                seen = Path(f"/proc/{pid}/{view}").read_bytes().decode(errors="replace")
                assert connection.password not in seen, f"{component['name']} {view}"


def test_a_wrong_password_is_refused(cdc_stack: CdcStack) -> None:
    conninfo = {**cdc_stack.postgres.conninfo(), "password": "not-the-password"}
    try:
        psycopg.connect(**conninfo, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc)
    else:
        raise AssertionError("Postgres let a wrong password in")


def test_connect_offers_debezium_postgres(cdc_stack: CdcStack) -> None:
    assert DEBEZIUM_POSTGRES in connector_plugins(cdc_stack.connect_url)
    assert cdc_stack.connect_url == LocalStack(Settings()).status()["connect_url"]


def test_connect_comes_back_after_a_kill(cdc_stack: CdcStack) -> None:
    killed = _conveyor("stack", "kill", "connect")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    status = LocalStack(Settings()).status()
    assert {c["name"]: c["state"] for c in status["components"]}["connect"] == "stopped"
    assert connector_plugins(cdc_stack.connect_url) == []

    started = _conveyor("stack", "start", "connect")
    assert started.returncode == 0, started.stdout + started.stderr
    # `stack start` returns once the worker is healthy: no waiting here
    assert DEBEZIUM_POSTGRES in connector_plugins(cdc_stack.connect_url)
    wait_until(
        lambda: LocalStack(Settings()).status()["running"], 10, what="every component running"
    )
    assert os.environ["CONVEYOR_HOME"] == str(cdc_stack.settings.home)
