"""harness.metrics (see ../shared/DESIGN.md layout)."""
