"""`stack up --with`: which optional components a stack gets, refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.settings import Settings
from conveyor.stack.change_capture import optional_components
from conveyor.stack.local import LocalStack
from conveyor.stack.process import ComponentStartError


def test_cdc_is_postgres_then_connect() -> None:
    assert optional_components(["cdc"]) == ["postgres", "connect"]
    assert optional_components([]) == []


def test_an_unknown_set_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ComponentStartError, match=r"no optional components named 'cdd'.*cdc"):
        LocalStack(Settings(home=tmp_path, stack_with="cdd")).up()
    assert not (tmp_path / "stack.json").exists()


def test_cdc_on_a_secured_stack_is_one_clear_refusal(tmp_path: Path) -> None:
    stack = LocalStack(Settings(home=tmp_path, stack_secure=True, stack_with="cdc"))
    with pytest.raises(ComponentStartError) as caught:
        stack.up()
    message = str(caught.value)
    assert "plaintext stack only" in message
    assert "\n" not in message
    assert stack.status()["components"] == []
