"""How the orchestrator's driver waits on the estate, the same under either clock.

Scenario seconds, shared by the SimPy and asyncio runtimes so that a simulated run and
a live run of one scenario poll and give up alike.
"""

from __future__ import annotations

# How often an asynchronous marketplace is polled for its offers' state.
POLL_SECONDS = 60.0
# How long a throttled or unavailable ERP is asked again to validate before giving up.
VALIDATION_PATIENCE = 600.0
