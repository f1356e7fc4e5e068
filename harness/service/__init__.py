"""harness.service (see ../shared/DESIGN.md layout).

The orchestrator's HTTP API (FastAPI): ``create_app(runtime, keys)`` maps HTTP onto
orchestrator events and read-only views; ``KeyRing`` / ``Principal`` hold the API keys
and their roles (``auth.py`` lists what each role may do).
"""

from harness.service.app import create_app
from harness.service.auth import DEMO_KEYS, ROLES, KeyRing, Principal, RateLimiter

__all__ = ["DEMO_KEYS", "ROLES", "KeyRing", "Principal", "RateLimiter", "create_app"]
