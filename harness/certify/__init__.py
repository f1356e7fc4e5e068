"""harness.certify (see docs/architecture.md layout)."""
