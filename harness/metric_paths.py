"""Which dotted summary.json paths a run can have, so an SLO's metric is checked at load time.

An SLO names a figure of summary.json ("propagation.by_channel.pos.t95"). A typo there
would otherwise be found only after the whole simulation (the SLO fails with value None),
so the scenario loader asks ``unknown_metric`` first. The shape is not declared here: it
is ``harness.metrics.keys.KEYS`` (the summary.json reference, held against real
summaries by its tests) folded into a tree. Its placeholders say what may stand in a
data-keyed part: ``<channel>`` a delivery channel, ``<promo>`` one of the run's promotion
ids (which may hold dots), ``[]`` a list index (bounded for ``rollbacks`` by the
timeline), ``<pair>`` and ``<reason>`` any one key.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from harness.domain.promotion import CHANNELS

__all__ = ["CHANNEL_KEYS", "RUN_ONLY", "unknown_metric"]

# by_channel keys: every channel an endpoint can belong to, the system of record included.
CHANNEL_KEYS: tuple[str, ...] = ("erp", *CHANNELS)
# Top-level keys only `promoharness load`, `live --sut` or a live run (the harness's own
# headroom) write: a scenario's SLOs are judged on every run of it (`run`, `sweep`,
# `live`), where they would be null in some. A campaign's gates read them instead.
RUN_ONLY = frozenset({"load", "sut", "not_measured", "harness", "live"})
_ANY_KEY = ("<pair>", "<reason>")
Tree = dict[str, "Tree"]


@cache
def _tree() -> Tree:
    """``KEYS`` as nested dicts, one level per path segment; a figure is an empty dict."""
    from harness.metrics.keys import KEYS

    root: Tree = {}
    for key in KEYS:
        if key.path[0] in RUN_ONLY:
            continue
        node = root
        for segment in key.path:
            node = node.setdefault(segment, {})
    return root


def _rule(node: Tree) -> str | None:
    """The placeholder a data-keyed level holds (it is then the level's only child)."""
    if len(node) == 1:
        (segment,) = node
        if segment.startswith("<") or segment == "[]":
            return segment
    return None


def unknown_metric(metric: str, promos: Sequence[str], rollbacks: int) -> str | None:
    """None when ``metric`` can exist in a run's summary, else the reason it cannot.

    ``promos``: the promotion ids a run reports; ``rollbacks``: how many rollback entries
    the run can have at most. A path to a group of figures ("propagation.overall") exists.
    """
    parts = metric.split(".")
    node = _tree()
    i = 0
    while i < len(parts):
        if not node:
            return f"{'.'.join(parts[:i])!r} is a single figure; {metric!r} goes past it"
        rule = _rule(node)
        if rule is not None:
            bounded = rollbacks if parts[:i] == ["rollbacks"] else None
            taken, problem = _key(rule, parts[i:], promos, bounded)
            if problem:
                return f"{problem} in {metric!r}"
            node, i = node[rule], i + taken
            continue
        if parts[i] not in node:
            known = ", ".join(sorted(node))
            return f"no figure {'.'.join(parts[: i + 1])!r} in summary.json (there: {known})"
        node = node[parts[i]]
        i += 1
    return None


def _key(
    rule: str, rest: list[str], promos: Sequence[str], bound: int | None
) -> tuple[int, str | None]:
    """How many path parts the data key takes, or why it is not one."""
    if rule == "<channel>":
        if rest[0] in CHANNEL_KEYS:
            return 1, None
        return 0, f"unknown channel {rest[0]!r} (one of {', '.join(CHANNEL_KEYS)})"
    if rule == "<promo>":
        # Promotion ids may hold dots ("bf.2024"): the longest id that matches, as resolve().
        for n in range(len(rest), 0, -1):
            if ".".join(rest[:n]) in promos:
                return n, None
        return 0, f"unknown promotion {rest[0]!r}"
    if rule in _ANY_KEY:
        return 1, None
    if rest[0].lstrip("-").isdigit():
        if bound is not None and not -bound <= int(rest[0]) < bound:
            return 0, f"rollback index {rest[0]}, but the timeline rolls back {bound} times"
        return 1, None
    return 0, f"{rest[0]!r} is not a list index"


def _placeholders_stand_alone() -> list[str]:
    """Levels where a placeholder shares its level with a named key (``_rule`` would miss
    it); empty for the ``KEYS`` shipped, and a test keeps it so."""
    bad = []

    def walk(node: Tree, path: list[str]) -> None:
        wild = [s for s in node if s.startswith("<") or s == "[]"]
        if wild and len(node) > 1:
            bad.append(".".join(path) or "(top)")
        for segment, child in node.items():
            walk(child, [*path, segment])

    walk(_tree(), [])
    return bad
