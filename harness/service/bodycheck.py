"""Numbers no request body may carry: NaN, ±Infinity, and integers beyond signed 64 bits.

Python's JSON parser takes ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON at all) and
integers of any size; a non-finite number then cannot be written back into a JSON error
answer, and a huge integer overflows SQLite's INTEGER or Python's own digit limit (4,300
digits: a parse error rather than a field error). So the guard middleware reads every JSON
body once more, before the app does, with parser hooks that mark such numbers instead of
building them, and answers 422 in FastAPI's own shape with ``loc`` naming each field.
Bodies are small (the size limit comes first), so the second parse costs little.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["INT64_MAX", "INT64_MIN", "bad_numbers", "is_json"]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_SHOWN = 40  # characters of a refused number echoed back as its "input"


class _Bad:
    """A refused number, kept as its text, in place of its value."""

    __slots__ = ("kind", "text")

    def __init__(self, kind: str, text: str) -> None:
        self.kind = kind
        self.text = text


def _constant(text: str) -> _Bad:  # NaN, Infinity, -Infinity
    return _Bad("finite_number", text)


def _float(text: str) -> float | _Bad:
    value = float(text)  # 1e999 is inf
    return value if math.isfinite(value) else _Bad("finite_number", text)


def _int(text: str) -> int | _Bad:
    # Length first: int() of a 5,000-digit string raises, and 20 digits already exceed
    # the range whatever the sign.
    if len(text.lstrip("-")) > 19:
        return _Bad("int_range", text)
    value = int(text)
    return value if INT64_MIN <= value <= INT64_MAX else _Bad("int_range", text)


_MESSAGES = {
    "finite_number": "Input should be a finite number",
    "int_range": f"Input should be an integer from {INT64_MIN} to {INT64_MAX} (64-bit signed)",
}


def is_json(content_type: bytes | None) -> bool:
    """Whether FastAPI will parse a body of this Content-Type as JSON."""
    if not content_type:
        return False  # FastAPI's strict content type: no header, no JSON parse
    media = content_type.split(b";", 1)[0].strip().lower()
    maintype, _, subtype = media.partition(b"/")
    return maintype == b"application" and (subtype == b"json" or subtype.endswith(b"+json"))


def bad_numbers(body: bytes) -> list[dict[str, Any]]:
    """FastAPI-style 422 entries, one per refused number; [] if none or not JSON at all
    (the app's own parser then answers as it always does)."""
    try:
        doc = json.loads(body, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError included
        return []
    found: list[dict[str, Any]] = []
    _walk(doc, ["body"], found)
    return found


def _walk(node: Any, loc: list[str | int], found: list[dict[str, Any]]) -> None:
    # Iterative would avoid deep recursion, but json.loads itself refuses nesting this
    # walk could not follow (RecursionError above), so the depth is already bounded.
    if isinstance(node, _Bad):
        text = node.text if len(node.text) <= _SHOWN else node.text[:_SHOWN] + "..."
        found.append({"type": node.kind, "loc": loc, "msg": _MESSAGES[node.kind], "input": text})
    elif isinstance(node, dict):
        for key, value in node.items():
            _walk(value, [*loc, key], found)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(value, [*loc, i], found)
