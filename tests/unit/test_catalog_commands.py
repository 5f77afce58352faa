"""`conveyor catalog check|show`: the catalog on its own, no service touched (CliRunner)."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from conveyor.cli import app
from conveyor.settings import project_root

EXAMPLE = project_root() / "conveyor.yaml"


def test_check_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    text = text.replace("partitions: 4", "partitions: three", 1)
    text = text.replace("late_tolerance:", "late_tolerance: soon\n      _was:", 1)
    broken = tmp_path / "broken.yaml"
    broken.write_text(text)
    result = CliRunner().invoke(app, ["catalog", "check", "--catalog", str(broken)])
    assert result.exit_code == 2, result.output
    lines = text.splitlines()
    partitions = next(i for i, line in enumerate(lines, 1) if "partitions: three" in line)
    assert f"broken.yaml:{partitions}: streams.clicks.topic.partitions: must be" in result.output
    tolerance = next(i for i, line in enumerate(lines, 1) if "late_tolerance: soon" in line)
    assert (
        f"broken.yaml:{tolerance}: streams.clicks.schema.late_tolerance: must be" in result.output
    )
    assert f"broken.yaml:{tolerance + 1}: streams.clicks.schema._was: unknown key" in result.output
    assert "3 problem(s)" in result.output
    assert "Traceback" not in result.output


def test_check_passes_a_good_catalog_and_show_fills_in_defaults(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["catalog", "check", "--catalog", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert "no problems" in result.output
    shown = CliRunner().invoke(app, ["catalog", "show", "clicks", "--catalog", str(EXAMPLE)])
    assert shown.exit_code == 0, shown.output
    clicks = yaml.safe_load(shown.output)["clicks"]
    assert clicks["kind"] == "append"  # a default the file does not spell out
    assert clicks["tables"]["silver"]["name"] == "clicks_silver"
    assert clicks["tables"]["maintenance"]["min_small_files"] == 10
    resolved = clicks["tables"]["resolved"]["clicks_silver"]
    assert resolved["properties"]["delta.checkpointInterval"] == "1000"
    unknown = CliRunner().invoke(app, ["catalog", "show", "nope", "--catalog", str(EXAMPLE)])
    assert unknown.exit_code != 0 and "no stream named 'nope'" in unknown.output
