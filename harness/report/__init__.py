"""harness.report (see ../shared/DESIGN.md layout)."""
