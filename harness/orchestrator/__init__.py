"""PURE sans-I/O orchestrator: events in, commands out (see core.Orchestrator)."""
