"""harness.runtime (see ../shared/DESIGN.md layout)."""
