"""harness.runtime (see docs/architecture.md layout)."""
