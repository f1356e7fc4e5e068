"""harness.service (see ../shared/DESIGN.md layout)."""
