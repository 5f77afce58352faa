"""Generate the reference pages from the code at build time (mkdocs-gen-files runs this), so
they cannot drift: the CLI from the typer app, the catalog's keys from its pydantic models, the
settings from `Settings`, the ledger's columns, the DAGs with their params, and the operators.

A thing without a description (a setting, a catalog key, a ledger column) fails the build."""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
import tempfile
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import mkdocs_gen_files
from pydantic import BaseModel, TypeAdapter
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]


class Undocumented(RuntimeError):
    """Something the reference lists has no description in the code."""


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# --- the CLI -----------------------------------------------------------------------------------


def cli_page() -> str:
    import typer.main

    from conveyor.cli import app

    root = typer.main.get_command(app)
    out = [
        "# CLI reference\n",
        "Every `conveyor` command and option, generated from the CLI itself. "
        "`conveyor COMMAND --help` prints the same in a terminal.\n",
    ]
    for path, command in _commands(root, ("conveyor",)):
        out.append(_command_section(path, command))
    return "\n".join(out)


def _commands(command: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf command under `command` (typer vendors its own click, so by shape)."""
    group = getattr(command, "commands", None)
    if group is not None:
        for name in sorted(group):
            sub = group[name]
            if sub.hidden:
                continue
            yield from _commands(sub, (*path, name))
    elif len(path) > 1:
        yield path, command


def _command_section(path: tuple[str, ...], command: Any) -> str:
    ctx = command.context_class(command, info_name=" ".join(path))
    usage = " ".join(command.collect_usage_pieces(ctx))
    text = [f"## {' '.join(path[1:])}\n", f"```\n{' '.join(path)} {usage}\n```\n"]
    if command.help:
        text.append(inspect.cleandoc(command.help).split("\f")[0].strip() + "\n")
    rows = []
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, helptext = record
        if param.param_type_name == "argument":
            kind = "argument" if param.required else "argument, optional"
            rows.append((f"`{param.name.upper()}`", kind, helptext))
        else:
            rows.append((f"`{names}`", "option", helptext))
    if rows:
        text.append(_table(("name", "kind", "what"), rows))
    return "\n".join(text)


# --- the catalog -------------------------------------------------------------------------------

VALUE_KINDS: dict[str, str] = {
    "Duration": "a duration: `30s`, `15m`, `2h`, `7d`",
    "Retention": "a duration, a number of milliseconds, or `-1` (for ever)",
    "Size": "a size: `1048576`, `512KiB`, `128MiB`, `1GiB`",
    "Count": "a whole number, at least 1",
    "FieldType": "a field type (see `type`)",
    "Names": "a list of names (one name is a list of one)",
    "Principals": "a list of Kafka principals (`User:` implied)",
    "StreamName": "a stream name: lower case letters, digits and `_`",
    "FieldName": "a field name",
    "TableName": "a table name",
    "TablePath": "a folder relative to the lake",
    "TopicName": "a Kafka topic name",
}


def catalog_page() -> str:
    from conveyor.catalog import models, values

    aliases = {name: getattr(values, name) for name in VALUE_KINDS}
    out = [
        "# Catalog reference\n",
        "Every key of `conveyor.yaml`, generated from the catalog's models: its type, its "
        "default (none: the key is required) and what it does. `conveyor catalog check` "
        "validates a catalog; `conveyor catalog show STREAM` prints a stream with the "
        "defaults filled in.\n",
    ]
    for model in _models(models.Catalog):
        out.append(f"## {model.__name__}\n")
        out.append(inspect.cleandoc(model.__doc__ or "") + "\n")
        hints = typing.get_type_hints(model, include_extras=True)
        rows = []
        for name, info in model.model_fields.items():
            if name in getattr(model, "_internal_keys", frozenset()):
                continue
            if not info.description:
                raise Undocumented(f"catalog key {model.__name__}.{name} has no docstring")
            key = info.alias or name
            rows.append(
                (
                    f"`{key}`",
                    _type_text(hints[name], aliases),
                    "from the stream's name"
                    if name in getattr(model, "_derived_keys", frozenset())
                    else _default_text(info, hints[name]),
                    info.description,
                )
            )
        out.append(_table(("key", "type", "default", "what"), rows))
    out.append("## Value types\n")
    out.append(_table(("type", "written as"), [(k, v) for k, v in VALUE_KINDS.items()]))
    return "\n".join(out)


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []

    def walk(model: type[BaseModel]) -> None:
        if model in found:
            return
        found.append(model)
        for hint in typing.get_type_hints(model, include_extras=True).values():
            for inner in _inner_types(hint):
                walk(inner)

    walk(root)
    return found


def _inner_types(hint: Any) -> Iterator[type[BaseModel]]:
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        yield hint
    for arg in typing.get_args(hint):
        yield from _inner_types(arg)


def _type_text(hint: Any, aliases: Mapping[str, Any]) -> str:
    for name, alias in aliases.items():
        if hint == alias:
            return name
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return _type_text(args[0], aliases)
    if origin in (typing.Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        text = " or ".join(_type_text(a, aliases) for a in kept)
        return text + (" (optional)" if len(kept) < len(args) else "")
    if origin is typing.Literal:
        return " | ".join(f"`{a}`" for a in args)
    if origin is tuple:
        return f"list of {_type_text(args[0], aliases)}"
    if origin in (dict, Mapping, typing.Mapping):
        return f"map of {_type_text(args[0], aliases)} to {_type_text(args[1], aliases)}"
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        return f"[{hint.__name__}](#{hint.__name__.lower()})"
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    return simple.get(hint, getattr(hint, "__name__", str(hint)))


def _default_text(info: Any, hint: Any) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    value = info.default_factory() if info.default_factory is not None else info.default
    if isinstance(value, BaseModel) or value is None or value in ((), {}, ""):
        return "—"
    shown = TypeAdapter(hint).dump_python(value, mode="json")
    return f"`{shown}`"


# --- settings ----------------------------------------------------------------------------------


def settings_page() -> str:
    from conveyor.settings import Settings

    rows = []
    for name, info in Settings.model_fields.items():
        if not info.description:
            raise Undocumented(f"setting {name} has no docstring")
        variable = f"`CONVEYOR_{name.upper()}`"
        kind = _setting_type(info.annotation)
        if info.default_factory is not None:
            default = "see what"
        elif info.default is None:
            default = "unset"
        else:
            default = f"`{info.default}`"
        rows.append((variable, kind, default, info.description))
    return "\n".join(
        [
            "# Settings reference\n",
            "Every `CONVEYOR_*` environment variable Conveyor reads, generated from "
            "`conveyor.settings.Settings`. Unset endpoints come from the embedded stack "
            "(`conveyor stack up`); on a cluster set them.\n",
            _table(("variable", "type", "default", "what"), rows),
        ]
    )


def _setting_type(hint: Any) -> str:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return _setting_type(args[0])
    if typing.get_origin(hint) is typing.Literal:
        return " | ".join(f"`{a}`" for a in typing.get_args(hint))
    names = {str: "string", bool: "boolean", int: "integer", float: "number", Path: "path"}
    if typing.get_origin(hint) is dict:
        return "JSON object"
    return names.get(hint, getattr(hint, "__name__", str(hint)).replace("SecretStr", "secret"))


# --- the ledger --------------------------------------------------------------------------------


def ledger_page() -> str:
    from conveyor.ledger import COLUMN_DOCS, LEDGER_FIELDS

    rows = []
    for name, kind in LEDGER_FIELDS:
        if name not in COLUMN_DOCS:
            raise Undocumented(f"ledger column {name} has no entry in COLUMN_DOCS")
        rows.append((f"`{name}`", f"`{kind}`", COLUMN_DOCS[name]))
    return "\n".join(
        [
            "# Ledger reference\n",
            "The ledger (`<lake>/_conveyor/ledger`, a Delta table partitioned by `stream`) "
            "holds one row per micro-batch of every stream, and one per gap, schema change, "
            "replay and rebuild. Its columns, generated from the code:\n",
            _table(("column", "Spark type", "what"), rows),
        ]
    )


# --- DAGs and operators ------------------------------------------------------------------------


def _import_file(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"_docs_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module.__name__] = module
    spec.loader.exec_module(module)
    return module


def _dags_of(path: Path) -> list[Any]:
    """The DAGs a file defines, collected as Airflow's own parser does (a DAG built by a
    decorated function called at module level is registered, not assigned)."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    name = f"_docs_{path.stem}"
    DagContext.current_autoregister_module_name = name
    try:
        module = _import_file(path)
    finally:
        DagContext.current_autoregister_module_name = None
    return sorted(
        (dag for dag, mod in DagContext.autoregistered_dags if mod is module),
        key=lambda dag: dag.dag_id,
    )


def dags_page() -> str:
    out = [
        "# DAG reference\n",
        "Every DAG in `dags/`, generated by importing it: its schedule and the params its "
        "trigger form offers. The DAGs read the catalog when Airflow parses them only to build "
        "their forms (a stream's or table's choices); their tasks read it again when they run.\n",
    ]
    for path in sorted((ROOT / "dags").glob("conveyor_*.py")):
        for dag in _dags_of(path):
            out.append(f"## {dag.dag_id}\n")
            schedule = _schedule(dag)
            out.append(f"`dags/{path.name}` · schedule `{schedule}`\n")
            doc = (dag.doc_md or "").strip()
            if doc:
                out.append(doc + "\n")
            rows = []
            for name, param in dag.params.items():
                schema = dict(getattr(param, "schema", {}) or {})
                what = getattr(param, "description", None) or schema.get("title") or ""
                choices = schema.get("enum")
                kind = schema.get("type", "")
                if isinstance(kind, list):
                    kept = [k for k in kind if k != "null"]
                    kind = " or ".join(kept) + (" (optional)" if len(kept) < len(kind) else "")
                if choices:
                    kind = "one of " + ", ".join(f"`{c}`" for c in choices)
                rows.append((f"`{name}`", str(kind), f"`{param.value}`", str(what)))
            if rows:
                out.append(_table(("param", "type", "default", "what"), rows))
    return "\n".join(out)


def _schedule(dag: Any) -> str:
    if dag.schedule is None:
        return "triggered only"
    if isinstance(dag.schedule, str | timedelta):
        return f"every {dag.schedule}" if isinstance(dag.schedule, timedelta) else dag.schedule
    return str(getattr(dag.timetable, "summary", None) or dag.schedule)


def operators_page() -> str:
    from airflow.sdk import BaseOperator

    out = [
        "# Operators, sensors and hooks\n",
        "The Airflow building blocks of the `conveyor.provider` package, generated from their "
        "docstrings and signatures. Each reads the catalog when it runs, not when its DAG is "
        "parsed.\n",
    ]
    for folder in ("operators", "sensors", "hooks", "triggers"):
        for path in sorted((ROOT / "src/conveyor/provider" / folder).glob("*.py")):
            if path.name == "__init__.py":
                continue
            module = importlib.import_module(f"conveyor.provider.{folder}.{path.stem}")
            for name, cls in sorted(vars(module).items()):
                if not _public_class_of(cls, module, name):
                    continue
                if folder in ("operators", "sensors") and not issubclass(cls, BaseOperator):
                    continue
                out.append(f"## {name}\n")
                out.append(f"`conveyor.provider.{folder}.{path.stem}` ({folder[:-1]})\n")
                out.append(inspect.cleandoc(cls.__doc__ or "") + "\n")
                arguments = _arguments(cls.__init__)
                if arguments:
                    out.append(f"```python\n{name}({arguments})\n```\n")
    return "\n".join(out)


def _public_class_of(value: Any, module: types.ModuleType, name: str) -> bool:
    return (
        inspect.isclass(value) and value.__module__ == module.__name__ and not name.startswith("_")
    )


def _arguments(init: Callable[..., Any]) -> str:
    shown = []
    for param in inspect.signature(init).parameters.values():
        if param.name == "self" or param.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        default = "" if param.default is inspect.Parameter.empty else f"={param.default!r}"
        shown.append(f"{param.name}{default}")
    return ", ".join(shown)


# --- modules -----------------------------------------------------------------------------------


def modules_page() -> str:
    """Every module of the package with the first paragraph of its docstring: its one job."""
    import ast

    rows = []
    source = ROOT / "src"
    for path in sorted((source / "conveyor").rglob("*.py")):
        parts = list(path.relative_to(source).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        doc = ast.get_docstring(ast.parse(path.read_text()))
        if not doc:
            if path.name == "__init__.py" and path.stat().st_size < 200:
                continue  # an empty package marker
            raise Undocumented(f"module {'.'.join(parts)} has no docstring")
        rows.append((f"`{'.'.join(parts)}`", doc.split("\n\n")[0]))
    return "\n".join(
        [
            "# Modules\n",
            "Every module of the `conveyor` package and its one job, from its docstring. "
            "The layering is checked in `make check` (`tests/unit/test_layering.py`): no import "
            "circle, no module importing another's private names, and the ingest's batch core "
            "(`conveyor.ingest.core`) reaching no landing.\n",
            _table(("module", "its job"), rows),
        ]
    )


# --- build -------------------------------------------------------------------------------------

PAGES: dict[str, Callable[[], str]] = {
    "reference/cli.md": cli_page,
    "reference/catalog.md": catalog_page,
    "reference/settings.md": settings_page,
    "reference/ledger.md": ledger_page,
    "reference/dags.md": dags_page,
    "reference/operators.md": operators_page,
    "reference/modules.md": modules_page,
}


def main() -> None:
    sys.path.insert(0, str(ROOT / "plugins"))
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="conveyor-docs-airflow-"))
    os.environ.setdefault("CONVEYOR_HOME", tempfile.mkdtemp(prefix="conveyor-docs-home-"))
    for path, make in PAGES.items():
        with mkdocs_gen_files.open(path, "w") as page:
            page.write(make())
    with mkdocs_gen_files.open("reference/index.md", "w") as page:
        page.write(
            "# Reference\n\nGenerated from the code at every build, so it cannot drift:\n\n"
            + "\n".join(f"- [{p.split('/')[-1][:-3]}]({p.split('/')[-1]})" for p in PAGES)
            + "\n- [versions](versions.md)\n"
        )


main()
