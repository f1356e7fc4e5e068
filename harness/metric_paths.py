"""Which dotted summary.json paths a run can have, so an SLO's metric is checked at load time.

An SLO names a figure of summary.json ("propagation.by_channel.pos.t95"). A typo there
would otherwise be found only after the whole simulation (the SLO fails with value None),
so the scenario loader asks ``unknown_metric`` first. The shape comes from the code, not
from a copy: ``summarise`` of an empty event log gives every fixed key; the parts keyed by
data (a channel, a promotion id, a rollback's index) are described here by what may stand
in them, and the rest of the path is checked against the entry they hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

__all__ = ["unknown_metric"]

CHANNEL_KEYS = ("erp", "pos", "ecommerce", "loyalty", "marketplace")
_ANY = object()  # from here on, any path (lists of examples, per-pair tables)


@cache
def _template() -> dict[str, Any]:
    """summary.json's shape, with each data-keyed part replaced by a rule."""
    from harness.metrics import summarise

    empty = summarise([], scenario="x", seed=0, mode="sim", budgets={"P": 1.0}, starts={"P": 0})
    stats = empty["propagation"]["overall"]
    promo = {
        **stats,
        "publishes": 0,
        "by_channel": ("channel", stats),
        "late_for_start": {"start": 0, "count": 0, "endpoints": _ANY},
    }
    shape = dict(empty)
    shape["propagation"] = {
        "overall": stats,
        "by_channel": ("channel", stats),
        "by_promo": ("promo", promo),
    }
    shape["funding"] = ("promo", empty["funding"]["P"])
    shape["rollbacks"] = ("rollback", _ANY)  # an entry's fields exist only with a rollback
    shape["slos"] = ("index", _ANY)
    consistency = dict(empty["price_consistency"])
    consistency["by_channel_pair"] = _ANY
    shape["price_consistency"] = consistency
    return shape


def unknown_metric(metric: str, promos: Sequence[str], rollbacks: int) -> str | None:
    """None when ``metric`` can exist in a run's summary, else the reason it cannot.

    ``promos``: the promotion ids a run reports; ``rollbacks``: how many rollback entries
    the run can have at most.
    """
    parts = metric.split(".")
    node: Any = _template()
    i = 0
    while i < len(parts):
        if node is _ANY:
            return None
        if isinstance(node, tuple):
            kind, entry = node
            taken, problem = _key(kind, parts[i:], promos, rollbacks)
            if problem:
                return f"{problem} in {metric!r}"
            node, i = entry, i + taken
            continue
        if not isinstance(node, dict):
            return f"{'.'.join(parts[:i])!r} is a single figure; {metric!r} goes past it"
        if parts[i] not in node:
            known = ", ".join(sorted(node))
            return f"no figure {'.'.join(parts[: i + 1])!r} in summary.json (there: {known})"
        node = node[parts[i]]
        i += 1
    return None


def _key(
    kind: str, rest: list[str], promos: Sequence[str], rollbacks: int
) -> tuple[int, str | None]:
    """How many path parts the data key takes, or why it is not one."""
    if kind == "channel":
        if rest[0] in CHANNEL_KEYS:
            return 1, None
        return 0, f"unknown channel {rest[0]!r} (one of {', '.join(CHANNEL_KEYS)})"
    if kind == "promo":
        # Promotion ids may hold dots ("bf.2024"): the longest id that matches, as resolve().
        for n in range(len(rest), 0, -1):
            if ".".join(rest[:n]) in promos:
                return n, None
        return 0, f"unknown promotion {rest[0]!r}"
    if rest[0].lstrip("-").isdigit():
        if kind == "rollback" and not -rollbacks <= int(rest[0]) < rollbacks:
            return 0, f"rollback index {rest[0]}, but the timeline rolls back {rollbacks} times"
        return 1, None
    return 0, f"{rest[0]!r} is not a list index"
