"""SLO verdicts: a scenario's thresholds checked against a run's summary.

An SLO names any figure of summary.json by a dotted path ("propagation.overall.t95",
"rollbacks.0.verdict") and a comparison; a run passes an SLO when the figure exists, is
not None and satisfies the comparison (docs/architecture.md, "Metrics — definitions").
A missing figure fails the SLO instead of crashing the run, so a typo in a scenario
shows up as a failed threshold with value None.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["OPS", "SLO", "evaluate_slos", "resolve"]

OPS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True, slots=True)
class SLO:
    """A threshold: passes when ``<value at metric> <op> threshold`` holds."""

    name: str
    metric: str
    op: str
    threshold: Any

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"SLO {self.name!r}: op must be one of {list(OPS)}, not {self.op!r}")
        if not self.metric:
            raise ValueError(f"SLO {self.name!r}: metric must be a dotted path, not empty")


_MISSING = object()


def _walk(node: Any, parts: list[str]) -> Any:
    if not parts:
        return node
    if isinstance(node, Mapping):
        # Keys may contain dots (promotion ids like "bf.2024"): prefer the longest key that
        # matches, so "by_promo.bf.2024.t95" finds the promotion "bf.2024".
        for n in range(len(parts), 0, -1):
            key = ".".join(parts[:n])
            if key in node:
                found = _walk(node[key], parts[n:])
                if found is not _MISSING:
                    return found
        return _MISSING
    if isinstance(node, list | tuple):
        try:
            index = int(parts[0])
        except ValueError:
            return _MISSING
        if -len(node) <= index < len(node):
            return _walk(node[index], parts[1:])
    return _MISSING


def resolve(summary: Mapping[str, Any], metric: str) -> Any:
    """The value at a dotted path in the summary (list items by index); None if missing."""
    found = _walk(summary, metric.split("."))
    return None if found is _MISSING else found


def evaluate_slos(
    summary: Mapping[str, Any], slos: Sequence[SLO | Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Check each SLO against ``summary``: ``{name, metric, op, threshold, value, passed}``.

    ``value`` is the figure at ``metric`` (None when the path does not exist); ``passed``
    is False when the value is None or the comparison is False or cannot be made (e.g. a
    string against a number). SLOs may be given as mappings with the same four fields.
    """
    results: list[dict[str, Any]] = []
    for item in slos:
        slo = item if isinstance(item, SLO) else SLO(**item)
        value = resolve(summary, slo.metric)
        passed = False
        if value is not None:
            try:
                passed = bool(OPS[slo.op](value, slo.threshold))
            except (TypeError, ValueError):
                passed = False
        results.append(
            {
                "name": slo.name,
                "metric": slo.metric,
                "op": slo.op,
                "threshold": slo.threshold,
                "value": value,
                "passed": passed,
            }
        )
    return results
