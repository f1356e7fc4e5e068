"""Event log (pandas) -> figures: propagation, retry storms, rollback oracle, price
consistency, funding and SLO verdicts. Reads records only, never live objects.

The names below load on first use (PEP 562): importing a light submodule such as
``harness.metrics.keys`` (the scenario loader does, to check SLO metric paths) must not
import pandas, which ``promoharness run`` leaves to its report workers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.metrics.frame import read_events, to_frame, write_events
    from harness.metrics.slo import SLO, evaluate_slos
    from harness.metrics.summary import SUMMARY_KEYS, series, summarise, summary_json

_HOME = {
    "read_events": "frame",
    "to_frame": "frame",
    "write_events": "frame",
    "SLO": "slo",
    "evaluate_slos": "slo",
    "SUMMARY_KEYS": "summary",
    "series": "summary",
    "summarise": "summary",
    "summary_json": "summary",
}

__all__ = [
    "SLO",
    "SUMMARY_KEYS",
    "evaluate_slos",
    "read_events",
    "series",
    "summarise",
    "summary_json",
    "to_frame",
    "write_events",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # once: later lookups are plain
    return value
