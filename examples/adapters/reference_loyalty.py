"""Reference loyalty adapter: the points service (``LoyaltyService``), answers 200.

Run: ``python examples/adapters/reference_loyalty.py --port 8083 --token secret``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapter_kit import adapter_profile, create_adapter_app, main
from fastapi import FastAPI

from simulators.loyalty import LoyaltyService


def create_app(token: str = "secret", **faults: object) -> FastAPI:
    """A reference loyalty adapter (synchronous)."""
    service = LoyaltyService("loyalty", link=adapter_profile(**faults))  # type: ignore[arg-type]
    return create_adapter_app(service, token=token)


if __name__ == "__main__":
    main(create_app)
