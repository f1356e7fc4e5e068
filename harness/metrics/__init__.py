"""Event log (pandas) -> figures: propagation, retry storms, rollback oracle, price
consistency, funding and SLO verdicts. Reads records only, never live objects."""

from harness.metrics.frame import read_events, to_frame, write_events
from harness.metrics.slo import SLO, evaluate_slos
from harness.metrics.summary import SUMMARY_KEYS, series, summarise, summary_json

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
