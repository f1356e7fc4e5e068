"""harness.report (see docs/architecture.md layout): a run's figures -> report.html
(self-contained), PNG plots, events.parquet, summary.json and junit.xml.

``write_report`` loads on first use (PEP 562): ``harness.report.pool`` is imported by
``promoharness run`` before it forks its workers, and must not bring pandas with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.report.write import write_report

__all__ = ["write_report"]


def __getattr__(name: str) -> Any:
    if name != "write_report":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from harness.report.write import write_report

    globals()[name] = write_report
    return write_report
