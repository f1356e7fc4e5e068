"""FAULTY POS adapter: taxes the undiscounted price (dialect ``discount-after-tax``).

Expected to fail only the ``pricing_reference`` check: net baskets pay tax on the discount,
gross baskets report an overstated tax.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapter_kit import adapter_profile, create_adapter_app, main
from fastapi import FastAPI

from harness.domain.dialects import compose
from simulators.pos import PosStore


def create_app(token: str = "secret") -> FastAPI:
    """A POS adapter that computes tax before the discount."""
    store = PosStore(
        "store-0001",
        region="FR-IDF",
        timezone="Europe/Paris",
        link=adapter_profile(),
        dialect=compose("discount-after-tax"),
    )
    return create_adapter_app(store, token=token)


if __name__ == "__main__":
    main(create_app)
