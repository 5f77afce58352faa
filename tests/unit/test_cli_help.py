"""The CLI's help reads cleanly in a terminal: every command and option says what it does, and
a docstring's line breaks do not show inside the help boxes mid-sentence."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer.main
from typer.testing import CliRunner

from conveyor.cli import app


def _commands(command: Any, path: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    group = getattr(command, "commands", None)
    if group is None:
        yield " ".join(path), command
        return
    for name, sub in group.items():
        yield from _commands(sub, (*path, name))


def test_every_command_and_option_has_help_in_paragraphs() -> None:
    root = typer.main.get_command(app)
    for name, command in _commands(root, ("conveyor",)):
        assert command.help, f"{name} has no help"
        assert not re.search(r"(?<!\n)\n(?!\n)", command.help), f"{name}: a hard line break"
        for param in command.params:
            if param.param_type_name == "option" and param.name != "help":
                assert getattr(param, "help", None), f"{name} {param.name} has no help"


def test_the_command_list_wraps_at_the_terminals_width() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"}, terminal_width=100)
    assert result.exit_code == 0
    lines = [" ".join(line.strip("│ ").split()) for line in result.output.splitlines()]
    # the docstring breaks after "hour;": in the box the sentence runs on at the box's width
    assert any("hour; for cdc streams" in line for line in lines), result.output
