"""harness.report (see docs/architecture.md layout): a run's figures -> report.html
(self-contained), PNG plots, events.parquet, summary.json and junit.xml."""

from harness.report.write import write_report

__all__ = ["write_report"]
