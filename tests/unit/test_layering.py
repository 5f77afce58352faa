"""The package's layering, checked from its source (every import, lazy ones too): no import
circles, no module importing another's private names, and the ingest's batch core importing
no landing. Pure: the modules are parsed, not imported."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from conveyor.settings import project_root

SOURCE = project_root() / "src"
CORE = "conveyor.ingest.core"
LANDINGS = "conveyor.ingest.landings"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SOURCE / "conveyor").rglob("*.py")):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, str, int]]:
    """(module imported, name taken from it or "", line) for every import in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, "", node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield base, alias.name, node.lineno


def _edges() -> dict[str, set[str]]:
    """Module -> the Conveyor modules it imports (a name that is itself a module counts as
    that module; a package's own __init__ importing its submodules does not count)."""
    edges: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for module, taken, _ in _imports(name, path):
            target = f"{module}.{taken}" if f"{module}.{taken}" in MODULES else module
            if target not in MODULES or target == name:
                continue
            if path.name == "__init__.py" and target.startswith(name + "."):
                continue
            edges[name].add(target)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    assert _cycles(_edges()) == []


def test_no_module_imports_another_modules_private_names() -> None:
    offenders = [
        f"{name}:{line} imports {taken} from {module}"
        for name, path in MODULES.items()
        for module, taken, line in _imports(name, path)
        if module.startswith("conveyor")
        and module != name
        and taken.startswith("_")
        and not taken.startswith("__")
    ]
    assert offenders == []


def test_the_batch_core_imports_no_landing() -> None:
    assert CORE in MODULES, "the ingest's batch core moved: update this test"
    reached, todo = set(), [CORE]
    edges = _edges()
    while todo:
        for nxt in edges[todo.pop()] - reached:
            reached.add(nxt)
            todo.append(nxt)
    assert sorted(m for m in reached if m.startswith(LANDINGS)) == []


def test_the_check_sees_a_circle() -> None:
    """The check itself can fail: a made-up circle is found."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


MAX_FUNCTION_LINES = 60


def _long_functions(path: Path, root: Path = SOURCE) -> Iterator[str]:
    """`file:line name (n lines)` of every function in `path` longer than the limit."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                yield f"{path.relative_to(root)}:{node.lineno} {node.name} ({lines} lines)"


def test_every_function_fits_a_screen() -> None:
    too_long = [found for path in MODULES.values() for found in _long_functions(path)]
    assert too_long == [], f"over {MAX_FUNCTION_LINES} lines (split them): {too_long}"


def test_the_length_check_finds_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    source = tmp_path / "long.py"
    source.write_text(f"def short() -> None:\n    pass\n\n\ndef long() -> None:\n{body}\n")
    assert list(_long_functions(source, tmp_path)) == [
        f"long.py:5 long ({MAX_FUNCTION_LINES + 1} lines)"
    ]
