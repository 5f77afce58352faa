"""Render the Kafka and Hadoop configuration files from the templates shared with docker-compose.

`conveyor stack up` and the compose images render the same files; only hosts, ports and data
folders differ, so the two stacks cannot drift apart.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template


def render(name: str, values: dict[str, object]) -> str:
    """Render one template; raises KeyError naming a placeholder that has no value."""
    text = resources.files("conveyor.stack").joinpath("templates", name).read_text()
    return Template(text).substitute({k: str(v) for k, v in values.items()})


def placeholders(name: str) -> set[str]:
    text = resources.files("conveyor.stack").joinpath("templates", name).read_text()
    return {m.group("named") or m.group("braced") for m in Template.pattern.finditer(text)} - {None}


def write(name: str, values: dict[str, object], target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(name, values))
    return target
