"""Settings read the embedded stack's endpoints from its state file at each use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.settings import EndpointNotConfigured, Settings


def _record(home: Path, **endpoints: str) -> None:
    (home / "stack.json").write_text(json.dumps({"endpoints": endpoints}))


def test_a_restarted_stack_is_seen_by_settings_already_made(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    with pytest.raises(EndpointNotConfigured, match="kafka_bootstrap"):
        _ = settings.kafka_servers
    _record(tmp_path, kafka_bootstrap="127.0.0.1:40001")
    assert settings.kafka_servers == "127.0.0.1:40001"
    _record(tmp_path, kafka_bootstrap="127.0.0.1:40002")  # up again on another free port
    assert settings.kafka_servers == "127.0.0.1:40002"


def test_an_explicit_endpoint_wins_over_the_state_file(tmp_path: Path) -> None:
    _record(tmp_path, kafka_bootstrap="127.0.0.1:40001")
    assert Settings(home=tmp_path, kafka_bootstrap="broker:9093").kafka_servers == "broker:9093"


def test_a_refused_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from conveyor.settings import SettingsError, get_settings

    monkeypatch.setenv("CONVEYOR_SPARK_JIT", "fast")
    with pytest.raises(SettingsError) as caught:
        get_settings()
    message = str(caught.value)
    assert "CONVEYOR_SPARK_JIT='fast'" in message and "'tiered' or 'c1'" in message
    assert "\n" not in message and caught.value.exit_code == 2
    monkeypatch.setenv("CONVEYOR_SPARK_JIT", "c1")
    assert get_settings().spark_jit == "c1"


def test_connect_rest_falls_back_to_the_stack(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    with pytest.raises(EndpointNotConfigured, match="connect_url"):
        _ = settings.connect_rest
    _record(tmp_path, connect_url="http://127.0.0.1:40003")
    assert settings.connect_rest == "http://127.0.0.1:40003"
    assert Settings(home=tmp_path, connect_url="http://connect:8083").connect_rest == (
        "http://connect:8083"
    )


def test_postgres_connection_falls_back_to_the_stack_and_its_password_file(
    tmp_path: Path,
) -> None:
    settings = Settings(home=tmp_path)
    with pytest.raises(EndpointNotConfigured, match="postgres_host"):
        settings.postgres_connection()
    password = tmp_path / "postgres" / "password"
    password.parent.mkdir()
    password.write_text("s3cret-from-file\n")
    _record(
        tmp_path,
        postgres_host="127.0.0.1",
        postgres_port="40004",
        postgres_database="conveyor",
        postgres_user="conveyor",
        postgres_password_file=str(password),
    )
    connection = settings.postgres_connection()
    assert (connection.host, connection.port, connection.database, connection.user) == (
        "127.0.0.1",
        40004,
        "conveyor",
        "conveyor",
    )
    assert connection.password == "s3cret-from-file"
    assert connection.describe() == "conveyor@127.0.0.1:40004/conveyor"
    assert "s3cret" not in repr(connection)


def test_explicit_postgres_settings_ignore_the_stack(tmp_path: Path) -> None:
    from conveyor.settings import SettingsError

    _record(tmp_path, postgres_host="127.0.0.1", postgres_port="40004")
    secret = tmp_path / "pg-password"
    secret.write_text("other")
    explicit = Settings(
        home=tmp_path,
        postgres_host="db",
        postgres_database="shop",
        postgres_user="reader",
        postgres_password_file=secret,
    ).postgres_connection()
    assert explicit.describe() == "reader@db:5432/shop"
    assert explicit.password == "other"
    with pytest.raises(SettingsError, match="CONVEYOR_POSTGRES_PASSWORD_FILE"):
        Settings(home=tmp_path, postgres_host="db").postgres_connection()
