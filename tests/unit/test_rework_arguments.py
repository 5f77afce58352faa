"""Replay's and rebuild's arguments: what they choose, what they refuse (exit 2), and the job
arguments the DAGs build from their params."""

from __future__ import annotations

import importlib.util
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from conveyor.catalog import load_catalog
from conveyor.commands import rework as rework_commands
from conveyor.commands.rework import job_arguments
from conveyor.rework import (
    REPLAYED_BY_DEFAULT,
    ReworkArgumentError,
    rebuild,
    rebuild_range,
    replay,
    replay_selection,
    reworkable,
)
from conveyor.settings import Settings, project_root

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)


def test_replay_chooses_every_reason_but_too_late_unless_named() -> None:
    chosen = replay_selection([], None, None, NOW)
    assert "too_late" not in chosen.reasons and "not_allowed" in chosen.reasons
    assert chosen.reasons == REPLAYED_BY_DEFAULT
    named = replay_selection(["too_late", "not_allowed", "too_late"], None, None, NOW)
    assert named.reasons == ("too_late", "not_allowed")


def test_replay_window_takes_dates_and_timestamps() -> None:
    chosen = replay_selection([], "2026-12-01", "2026-12-03", NOW)
    assert chosen.since == datetime(2026, 12, 1, tzinfo=UTC)
    assert chosen.until == datetime(2026, 12, 4, tzinfo=UTC)  # to the end of the day
    exact = replay_selection([], "2026-12-01T09:30:00+01:00", None, NOW)
    assert exact.since == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reasons", "since", "until", "said"),
    [
        (["nope"], None, None, "--reason 'nope': not a quarantine reason code"),
        ([], "yesterday", None, "--since 'yesterday': not an ISO-8601"),
        ([], "2026-12-04", "2026-12-02", "empty range"),
        ([], "2026-12-04T10:00:00Z", "2026-12-04T10:00:00Z", "empty range"),
        ([], "2026-12-06", None, "in the future"),
    ],
)
def test_replay_refuses_wrong_arguments(
    reasons: list[str], since: str | None, until: str | None, said: str
) -> None:
    with pytest.raises(ReworkArgumentError, match=said.replace("(", r"\(")) as refused:
        replay_selection(reasons, since, until, NOW)
    assert refused.value.exit_code == 2


def test_rebuild_range() -> None:
    assert rebuild_range("2026-12-01", "2026-12-01", False, NOW) == (
        date(2026, 12, 1),
        date(2026, 12, 1),
    )
    assert rebuild_range(None, None, True, NOW) is None
    for args, said in (
        (("2026-12-02", "2026-12-01", False), "empty range"),
        ((None, "2026-12-01", False), "give --from DATE and --to DATE"),
        (("2026-12-01", None, True), "without --from/--to"),
        (("2026-12-07", "2026-12-08", False), "in the future"),
        (("12/01/2026", "2026-12-02", False), "--from '12/01/2026': not an ISO-8601 date"),
    ):
        with pytest.raises(ReworkArgumentError, match=said):
            rebuild_range(*args, NOW)  # type: ignore[arg-type]


def test_dag_params_become_job_arguments() -> None:
    assert job_arguments(
        "replay",
        {"stream": "clicks", "reasons": ["not_allowed"], "since": "2026-12-01", "until": None,
         "dry_run": True},
    ) == ["replay", "clicks", "--reason", "not_allowed", "--since", "2026-12-01", "--dry-run"]  # fmt: skip
    assert job_arguments("replay", {"stream": "clicks", "reasons": []}) == ["replay", "clicks"]
    assert job_arguments(
        "rebuild", {"stream": "clicks", "from": "2026-12-01", "to": "2026-12-02", "all": False}
    ) == ["rebuild", "clicks", "--from", "2026-12-01", "--to", "2026-12-02"]
    assert job_arguments("rebuild", {"stream": "logs", "all": True, "dry_run": False}) == [
        "rebuild",
        "logs",
        "--all",
    ]


CDC_EXAMPLE = project_root() / "examples/conveyor.cdc.yaml"


def test_the_library_refuses_a_cdc_stream_before_spark() -> None:
    """Replay and rebuild apply to append streams: the library itself refuses a cdc stream in
    one line (the CLI exits 2 with it, a DAG's task fails with it), before touching Spark."""
    catalog = load_catalog(CDC_EXAMPLE)
    settings = Settings(catalog=CDC_EXAMPLE)
    selection = replay_selection([], None, None, NOW)
    said = "stream 'customers' is a cdc stream: replay and rebuild apply to append streams"
    with pytest.raises(ReworkArgumentError, match=said):
        replay(None, settings, catalog, "customers", selection)  # type: ignore[arg-type]
    with pytest.raises(ReworkArgumentError, match=said):
        rebuild(None, settings, catalog, "customers", None)  # type: ignore[arg-type]
    with pytest.raises(ReworkArgumentError, match="no stream named 'nope'"):
        reworkable(catalog, "nope")
    app = typer.Typer()
    rework_commands.register(app)
    for command in (["replay", "customers"], ["rebuild", "customers", "--all"]):
        result = CliRunner().invoke(app, [*command, "--catalog", str(CDC_EXAMPLE)])
        assert result.exit_code == 2 and said in result.output, result.output
        assert "Traceback" not in result.output


def test_the_dag_forms_offer_append_streams_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = yaml.safe_load((project_root() / "conveyor.yaml").read_text())
    mirrored = yaml.safe_load(CDC_EXAMPLE.read_text())["streams"]
    shipped["streams"].update(mirrored)
    path = tmp_path / "conveyor.yaml"
    path.write_text(yaml.safe_dump(shipped, sort_keys=False))
    catalog = load_catalog(path)
    assert "customers" in catalog.stream_names
    appended = list(catalog.append_stream_names)
    assert appended and "customers" not in appended
    monkeypatch.setenv("CONVEYOR_CATALOG", str(path))
    monkeypatch.syspath_prepend(str(project_root() / "plugins"))
    for dag_id in ("conveyor_replay", "conveyor_rebuild"):
        spec = importlib.util.spec_from_file_location(dag_id, project_root() / f"dags/{dag_id}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        form = getattr(module, dag_id)().params.get_param("stream")
        assert form.schema["enum"] == appended, dag_id
