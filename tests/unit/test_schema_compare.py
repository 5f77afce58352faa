"""`evolution.compare`: what silver needs to match the catalog, allowed or refused (pure)."""

from __future__ import annotations

from pathlib import Path

from conveyor.catalog import load_catalog
from conveyor.evolution import Change, compare
from conveyor.settings import project_root


def test_each_kind_of_change_is_found_and_judged(tmp_path: Path) -> None:
    stream = load_catalog(project_root() / "conveyor.yaml").stream("clicks")
    declared = {name: spec.type for name, spec in stream.event_schema.fields.items()}
    optional = next(n for n, f in stream.event_schema.fields.items() if not f.required)
    required = next(n for n, f in stream.event_schema.fields.items() if f.required)
    live = dict(declared)
    del live[optional], live[required]
    live["retired"] = "string"
    widened = next(n for n, t in declared.items() if t == "double" and n in live)
    live[widened] = "float"  # float -> double: every value fits
    changed = next(n for n, t in declared.items() if t == "string" and n in live)
    live[changed] = "long"  # long -> string: not in place
    found = {c.field: (c.kind, c.allowed) for c in compare(stream, live)}
    assert found == {
        optional: (Change.ADD_FIELD, True),
        required: (Change.ADD_REQUIRED_FIELD, False),
        widened: (Change.WIDEN_TYPE, True),
        changed: (Change.CHANGE_TYPE, False),
        "_unknown": (Change.ADD_FIELD, True),
        "retired": (Change.REMOVE_FIELD, False),
    }
    assert compare(stream, {**declared, "_unknown": "string"}) == []
