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
