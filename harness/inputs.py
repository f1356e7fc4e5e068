"""Reading user files at the edge: YAML/JSON with line numbers, errors that name file, line, field.

Every file a user hands to promoharness (baskets, promotions, scenarios) goes through
``load_model``: the document is composed with PyYAML so that each value keeps the line it
came from (JSON is read the same way, being YAML), validated with pydantic, and any
problem becomes one ``InputError`` whose message reads
``scenarios/x.yaml:14: promotions.0.benefit.percent: Input should be less than or equal to 100``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")
Location = tuple[str | int, ...]


class InputError(Exception):
    """Bad input from a user file or argument; the CLI prints it on one line and exits 2."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        where = ""
        if self.path:
            where = self.path + (f":{line}" if line else "") + ": "
        super().__init__(f"{where}{field + ': ' if field else ''}{message}")


def _construct(node: yaml.Node, loc: Location, lines: dict[Location, int]) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = (
                yaml.safe_load(yaml.serialize(key_node))
                if not isinstance(key_node, yaml.ScalarNode)
                else key_node.value
            )
            if key in out:
                raise InputError(
                    f"duplicate key {key!r}",
                    line=key_node.start_mark.line + 1,
                    field=_dotted((*loc, key)),
                )
            out[key] = _construct(value_node, (*loc, key), lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    # Scalars: let PyYAML's safe resolver type them (ints, floats, bools, null, strings).
    return (
        yaml.safe_load(yaml.serialize(node)) if node.tag != "tag:yaml.org,2002:str" else node.value
    )


def _dotted(loc: Location) -> str:
    return ".".join(str(part) for part in loc)


def parse_text(text: str, path: str | Path = "<string>") -> tuple[Any, dict[Location, int]]:
    """Parse YAML or JSON text, returning the data and a map from location to line number."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError(
            f"not valid YAML/JSON: {exc.problem or exc}", path=path, line=line
        ) from exc
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML raises Marked errors in practice
        raise InputError(f"not valid YAML/JSON: {exc}", path=path) from exc
    if node is None:
        raise InputError("the file is empty", path=path)
    lines: dict[Location, int] = {}
    try:
        data = _construct(node, (), lines)
    except InputError as exc:
        raise InputError(exc.reason, path=path, line=exc.line, field=exc.field) from None
    return data, lines


def read_document(path: str | Path) -> tuple[Any, dict[Location, int]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path=path) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", path=path) from None
    return parse_text(text, path)


def nearest_line(lines: dict[Location, int], loc: Location) -> int | None:
    """The line of ``loc`` or of its closest ancestor present in the document."""
    for cut in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:cut]))
        if line is not None:
            return line
    return None


def _clean_loc(loc: tuple[Any, ...], data: Any) -> Location:
    """Drop pydantic's union-member tags (e.g. 'percent_off') that are not keys of the data."""
    out: list[str | int] = []
    node = data
    for part in loc:
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        )
        if present:
            out.append(part)
            node = node[part]  # type: ignore[index]
        elif isinstance(node, dict | list):
            # A tag pydantic added (discriminated union member, function validator): skip it,
            # unless it is a missing/extra key the user has to hear about.
            if isinstance(part, str) and isinstance(node, dict) and not _is_union_tag(part, node):
                out.append(part)
                node = None
        else:
            out.append(part)
    return tuple(out)


def _is_union_tag(part: str, node: dict) -> bool:
    return node.get("type") == part


def validation_error(
    exc: ValidationError, path: str | Path, data: Any, lines: dict[Location, int]
) -> InputError:
    """Turn the first pydantic error into an InputError naming file, line and field."""
    first = exc.errors(include_url=False)[0]
    loc = _clean_loc(tuple(first["loc"]), data)
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key (not part of the schema)"
    more = exc.error_count() - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return InputError(
        message, path=path, line=nearest_line(lines, loc), field=_dotted(loc) or "(document)"
    )


def validate_data(kind: Any, data: Any, path: str | Path, lines: dict[Location, int]) -> Any:
    adapter = kind if isinstance(kind, TypeAdapter) else TypeAdapter(kind)
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise validation_error(exc, path, data, lines) from None


def load_model(kind: type[T] | Any, path: str | Path) -> T:
    """Read ``path`` (YAML or JSON) and validate it as ``kind`` (a model or a type)."""
    data, lines = read_document(path)
    return validate_data(kind, data, path, lines)
