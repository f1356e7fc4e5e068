"""harness.certify (see ../shared/DESIGN.md layout)."""
