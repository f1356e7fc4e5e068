"""Reading user files at the edge: YAML/JSON with line numbers, errors that name file, line, field.

Every file a user hands to promoharness (baskets, promotions, scenarios) goes through
``load_model``: the document is composed with PyYAML so that each value keeps the line it
came from (JSON is read the same way, being YAML), validated with pydantic, and any
problem becomes one ``InputError`` whose message reads
``scenarios/x.yaml:14: promotions.0.benefit.percent: Input should be less than or equal to 100``.

A document is bounded before it is built, so a hostile or mistaken file fails fast with
the limit named instead of eating memory: ``MAX_DOCUMENT_BYTES``, ``MAX_DEPTH`` (nesting),
``MAX_ALIASES`` (YAML ``*alias`` uses) and ``MAX_VALUES`` (values after aliases expand, the
"billion laughs" guard).
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

T = TypeVar("T")
Location = tuple[str | int, ...]

# Limits on one user document; each error message names the limit it hit.
MAX_DOCUMENT_BYTES = 4 * 1024 * 1024  # the largest shipped scenario is ~6 kB
MAX_DEPTH = 64  # nesting of mappings/lists; a scenario needs about 8
MAX_ALIASES = 200  # YAML *alias uses in one document
MAX_VALUES = 500_000  # values (mapping, list, scalar) once aliases are expanded


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
        # One line, whatever the parts hold (pydantic and pandas messages span lines).
        text = f"{where}{field + ': ' if field else ''}{message}"
        super().__init__(" ".join(text.split()))


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, counting depth and aliases while it composes the node graph.

    The composer recurses once per nesting level, so a deep document would otherwise end
    in RecursionError; the check runs before each level is entered.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise InputError(
                    f"more than {MAX_ALIASES} YAML aliases (limit MAX_ALIASES)",
                    line=mark.line + 1,
                )
            return super().compose_node(parent, index)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise InputError(
                f"nested deeper than {MAX_DEPTH} levels (limit MAX_DEPTH)", line=mark.line + 1
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _Builder:
    """Node graph -> plain data, recording each value's line and counting expanded values."""

    def __init__(self) -> None:
        self.lines: dict[Location, int] = {}
        self.values = 0
        self._scalars = yaml.SafeLoader("")  # its constructor types plain scalars

    def build(self, node: yaml.Node, loc: Location) -> Any:
        self.values += 1
        if self.values > MAX_VALUES:
            # Aliases re-use a node wherever they appear; "billion laughs" expands them.
            raise InputError(
                f"expands to more than {MAX_VALUES} values (limit MAX_VALUES; "
                "YAML aliases multiply)",
                line=node.start_mark.line + 1,
            )
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc)
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
        if node.tag == "tag:yaml.org,2002:str":
            return node.value
        try:
            # Plain scalars: ints, floats, bools, null, timestamps, as PyYAML's safe loader.
            return self._scalars.construct_object(node)
        except (ValueError, OverflowError, yaml.YAMLError) as exc:
            # e.g. an int over Python's 4300-digit conversion limit, a bad timestamp.
            raise InputError(
                f"cannot read {_short(node.value)!r}: {exc}",
                line=node.start_mark.line + 1,
                field=_dotted(loc) or None,
            ) from None

    def _mapping(self, node: yaml.MappingNode, loc: Location) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise InputError(
                    "a key must be a plain word or number, not a list or mapping",
                    line=key_node.start_mark.line + 1,
                    field=_dotted(loc) or None,
                )
            key = key_node.value
            if key in out:
                raise InputError(
                    f"duplicate key {key!r}",
                    line=key_node.start_mark.line + 1,
                    field=_dotted((*loc, key)),
                )
            out[key] = self.build(value_node, (*loc, key))
        return out


def _refuse_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose aliases expand past ``MAX_VALUES`` before building any of it.

    Sizes are counted once per node (aliases share nodes), so a "billion laughs" document
    costs as many steps as it has distinct nodes, not the values it would expand to.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # on the current path: an alias back to one never ends

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        if id(node) in open_nodes:
            raise InputError(
                "a YAML alias refers to a list or mapping that contains it",
                line=node.start_mark.line + 1,
            )
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(value) for _, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        if total > MAX_VALUES:
            raise InputError(
                f"expands to more than {MAX_VALUES} values (limit MAX_VALUES; "
                "YAML aliases multiply)",
                line=node.start_mark.line + 1,
            )
        open_nodes.discard(id(node))
        sizes[id(node)] = total
        return total

    size(root)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _dotted(loc: Location) -> str:
    return ".".join(str(part) for part in loc)


def parse_text(text: str, path: str | Path = "<string>") -> tuple[Any, dict[Location, int]]:
    """Parse YAML or JSON text, returning the data and a map from location to line number."""
    if len(text) > MAX_DOCUMENT_BYTES:
        raise InputError(
            f"larger than {MAX_DOCUMENT_BYTES} bytes (limit MAX_DOCUMENT_BYTES)", path=path
        )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except InputError as exc:
        raise InputError(exc.reason, path=path, line=exc.line, field=exc.field) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise InputError(
            f"not valid YAML/JSON: {exc.problem or exc}", path=path, line=line
        ) from None
    except yaml.YAMLError as exc:  # pragma: no cover - PyYAML raises Marked errors in practice
        raise InputError(f"not valid YAML/JSON: {exc}", path=path) from None
    finally:
        loader.dispose()
    if node is None:
        raise InputError("the file is empty", path=path)
    builder = _Builder()
    try:
        _refuse_expansion(node)
        data = builder.build(node, ())
    except InputError as exc:
        raise InputError(exc.reason, path=path, line=exc.line, field=exc.field) from None
    return data, builder.lines


def read_document(path: str | Path) -> tuple[Any, dict[Location, int]]:
    path = Path(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            raise InputError("not a regular file", path=path)
        size = info.st_size
        if size > MAX_DOCUMENT_BYTES:
            raise InputError(
                f"{size} bytes is larger than {MAX_DOCUMENT_BYTES} (limit MAX_DOCUMENT_BYTES)",
                path=path,
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except IsADirectoryError:
        raise InputError("is a directory, expected a file", path=path) from None
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text", path=path) from None
    except OSError as exc:  # permission denied, a FIFO, a name too long...
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
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


# A model validator that checks one field says so by starting its message with the field's
# dotted path ("timeline.4.promo: unknown promotion 'P9'"); the error then points there.
_FIELD_PREFIX = re.compile(r"^(?:Value error, )?([A-Za-z_][\w\-]*(?:\.[\w\-]+)*): (.+)$", re.S)


def _own_field(loc: Location, message: str, data: Any) -> tuple[Location, str]:
    match = _FIELD_PREFIX.match(message)
    if match is None:
        return loc, message.removeprefix("Value error, ")
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return loc, message.removeprefix("Value error, ")
    parts: Location = tuple(int(p) if p.isdigit() else p for p in match.group(1).split("."))
    head = parts[0]
    inside = (isinstance(node, dict) and head in node) or (
        isinstance(node, list) and isinstance(head, int) and head < len(node)
    )
    if not inside:
        return loc, message.removeprefix("Value error, ")
    return (*loc, *parts), match.group(2)


def error_at(
    message: str,
    loc: Location,
    path: str | Path,
    lines: dict[Location, int],
    origins: dict[Location, str] | None = None,
) -> InputError:
    """An InputError at ``loc``: the ``--set`` that put the value there, or the file's line.

    ``origins`` maps each overridden location to its option text ("--set foo=1"): a problem
    inside an overridden value names the option, not a line of the file it never was in.
    """
    field = _dotted(loc) or "(document)"
    for where, option in (origins or {}).items():
        if loc[: len(where)] == where:
            return InputError(f"{field}: {message}", field=option)
    for where, option in (origins or {}).items():
        if where[: len(loc)] == loc:
            message += f" (after {option})"
            break
    return InputError(message, path=path, line=nearest_line(lines, loc), field=field)


def validation_error(
    exc: ValidationError,
    path: str | Path,
    data: Any,
    lines: dict[Location, int],
    origins: dict[Location, str] | None = None,
) -> InputError:
    """Turn the first pydantic error into an InputError naming file, line and field."""
    first = exc.errors(include_url=False)[0]
    loc = _clean_loc(tuple(first["loc"]), data)
    loc, message = _own_field(loc, str(first["msg"]), data)
    if first["type"] == "extra_forbidden":
        message = "unknown key (not part of the schema)"
    more = exc.error_count() - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return error_at(message, loc, path, lines, origins)


def validate_data(
    kind: Any,
    data: Any,
    path: str | Path,
    lines: dict[Location, int],
    origins: dict[Location, str] | None = None,
) -> Any:
    adapter = kind if isinstance(kind, TypeAdapter) else TypeAdapter(kind)
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise validation_error(exc, path, data, lines, origins) from None


def parse_value(raw: str, option: str) -> Any:
    """A command-line value read as YAML (``10`` int, ``.5`` float, ``[a, b]`` list).

    Text that is not valid YAML stays text; a value over a document limit (``MAX_DEPTH``,
    a number over Python's digit limit) is an error naming ``option``.
    """
    if raw.strip() == "":
        return None if raw else ""
    try:
        data, _ = parse_text(raw, option)
    except InputError as exc:
        if exc.reason.startswith("not valid YAML"):
            return raw
        raise InputError(exc.reason, field=option) from None
    return data


def load_model(kind: type[T] | Any, path: str | Path) -> T:
    """Read ``path`` (YAML or JSON) and validate it as ``kind`` (a model or a type)."""
    data, lines = read_document(path)
    return validate_data(kind, data, path, lines)
