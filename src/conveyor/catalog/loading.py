"""Reading a catalog file: YAML (duplicate keys caught), pydantic, cross-checks; one line
per problem."""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from conveyor.catalog.checks import Problem, check_streams
from conveyor.catalog.models import Catalog, CatalogError, Spec, StreamSpec, shown_path, with_name

if TYPE_CHECKING:
    from conveyor.settings import Settings


def resolve_catalog(settings: Settings, path: Path | str | None = None) -> Catalog:
    """The catalog a command, job or task works from: `path` when given (a `--catalog`
    option, a DAG's parameter), else the settings' (`CONVEYOR_CATALOG`, else conveyor.yaml)."""
    return load_catalog(Path(path) if path else settings.catalog)


def load_catalog(path: Path) -> Catalog:
    """Read and validate a catalog file; raises CatalogError listing every problem found."""
    shown = shown_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(
            [f"{shown}: file not found (set CONVEYOR_CATALOG or pass --catalog)"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError([f"{shown}: cannot be read: {exc}"]) from None
    data, problems = _parse_yaml(text, shown)
    catalog, more = _validate(data)
    problems += more
    if problems or catalog is None:
        raise CatalogError(
            [f"{shown}: {where}: {what}" for where, what in problems],
            places=[(_line_of(text, where), where, what) for where, what in problems],
        )
    catalog._source = path
    return catalog


def _line_of(text: str, where: str) -> int | None:
    """The line of the key a problem's path names, else of its nearest ancestor in the file
    (a key that is missing is reported where its parent is)."""
    try:
        node = yaml.SafeLoader(text).get_single_node()
    except yaml.YAMLError:
        return None
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key_node, value in node.value:
                key = f"{path}.{key_node.value}" if path else str(key_node.value)
                lines.setdefault(key, key_node.start_mark.line + 1)
                walk(value, key)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                key = f"{path}.{index}"
                lines.setdefault(key, item.start_mark.line + 1)
                walk(item, key)

    if node is not None:
        walk(node, "")
    parts = where.split(".")
    for end in range(len(parts), 0, -1):
        line = lines.get(".".join(parts[:end]))
        if line is not None:
            return line
    return None


def _parse_yaml(text: str, shown: str) -> tuple[Any, list[Problem]]:
    """The document and its duplicate keys; raises CatalogError when it is not YAML at all."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        problems = list(_duplicate_keys(node, (), set()))
        return loader.construct_document(node), problems
    except yaml.MarkedYAMLError as exc:
        raise CatalogError([f"{shown}: {_yaml_error(exc)}"]) from None
    except yaml.YAMLError as exc:
        raise CatalogError([f"{shown}: (document): invalid YAML: {exc}"]) from None
    finally:
        loader.dispose()


def _yaml_error(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(document)"
    what = exc.problem or "cannot be parsed"
    if exc.context:
        started = exc.context_mark
        what += f" ({exc.context}"
        if started is not None and started is not mark:
            what += f" started on line {started.line + 1}, column {started.column + 1}"
        what += ")"
    return f"{where}: invalid YAML: {what}"


def _duplicate_keys(node: yaml.Node, path: tuple[str, ...], seen: set[int]) -> Iterator[Problem]:
    """Keys given twice in one mapping, which YAML loaders otherwise silently overwrite."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in first_line and key != "<<":
                what = {"streams": "stream name", "fields": "field name"}.get(
                    path[-1] if path else "", "key"
                )
                yield (
                    ".".join((*path, key)),
                    f"duplicate {what} {key!r} on line {line} (first defined on line "
                    f"{first_line[key]})",
                )
            first_line.setdefault(key, line)
            yield from _duplicate_keys(value_node, (*path, key), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, str(index)), seen)


def _validate(data: Any) -> tuple[Catalog | None, list[Problem]]:
    if data is None:
        return None, [("(document)", "is empty; expected a mapping with a 'streams' key")]
    if not isinstance(data, dict):
        return None, [("(document)", f"must be a mapping with a 'streams' key, got {_shown(data)}")]
    problems: list[Problem] = []
    catalog: Catalog | None = None
    try:
        catalog = Catalog.model_validate(data)
    except ValidationError as exc:
        problems += _translate(exc)
    streams = catalog.streams if catalog is not None else _valid_streams(data.get("streams"))
    if isinstance(data.get("streams"), dict):
        for name, raw in data["streams"].items():
            if isinstance(raw, dict) and "name" in raw:
                problems.append(
                    (f"streams.{name}.name", "unknown key (a stream is named by its key)")
                )
    problems += check_streams(streams)
    return catalog, problems


def _valid_streams(raw_streams: Any) -> dict[str, StreamSpec]:
    """The streams that validate on their own, so their cross-checks still run."""
    valid: dict[str, StreamSpec] = {}
    if isinstance(raw_streams, dict):
        for name, raw in raw_streams.items():
            try:
                valid[str(name)] = StreamSpec.model_validate(with_name(name, raw))
            except ValidationError:
                continue
    return valid


# --- translating pydantic's errors -------------------------------------------------------------

_TYPE_MESSAGES = {
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping",
    "mapping_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _translate(exc: ValidationError) -> list[Problem]:
    errors = exc.errors(include_url=False)
    # A stream with a bad name also fails every name derived from it; say it once.
    bad_streams = {
        e["loc"][:2] for e in errors if e["loc"][:1] == ("streams",) and e["loc"][2:] == ("[key]",)
    }
    problems: list[Problem] = []
    for error in errors:
        if error["loc"][:2] in bad_streams and error["loc"][2:] != ("[key]",):
            continue
        loc = tuple(part for part in error["loc"] if part != "[key]")
        path = ".".join(str(part) for part in loc) or "(document)"
        problems.append((path, _describe(error, loc)))
    return problems


def _describe(error: Any, loc: tuple[str | int, ...]) -> str:
    kind: str = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown key" + _expected_keys(loc[:-1])
    if kind == "conveyor_plain":
        return str(ctx["reason"])
    if kind == "conveyor":
        what = str(ctx["reason"])
    elif kind in _TYPE_MESSAGES:
        what = _TYPE_MESSAGES[kind]
    elif kind == "literal_error":
        what = f"must be one of {ctx['expected']}"
    elif kind == "too_short":
        what = f"must have at least {ctx['min_length']} entry"
    else:
        message = str(error["msg"])
        what = message[:1].lower() + message[1:]
    return f"{what}, got {_shown(error.get('input'))}"


def _shown(value: Any) -> str:
    """A value as the YAML author wrote it (short)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _expected_keys(loc: tuple[str | int, ...]) -> str:
    model = _model_at(loc)
    if model is None:
        return ""
    keys = sorted(
        (info.alias or name)
        for name, info in model.model_fields.items()
        if name not in model._internal_keys
    )
    return f" (expected one of: {', '.join(keys)})"


def _model_at(loc: tuple[str | int, ...]) -> type[Spec] | None:
    """The model class that validates the mapping at `loc` in the document."""
    current: Any = Catalog
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {(info.alias or name): info for name, info in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[part].annotation
        elif get_origin(current) in (dict, Mapping):
            current = get_args(current)[1]
        elif get_origin(current) in (list, tuple):
            current = get_args(current)[0]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, Spec) else None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation
