"""Reference POS adapter: a realtime store till (``PosStore``, Europe/Paris), answers 200.

Run: ``python examples/adapters/reference_pos.py --port 8081 --token secret``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapter_kit import adapter_profile, create_adapter_app, main
from fastapi import FastAPI

from simulators.pos import PosStore


def create_app(token: str = "secret", **faults: object) -> FastAPI:
    """A reference POS adapter (store-0001, region FR-IDF, Europe/Paris)."""
    store = PosStore(
        "store-0001",
        region="FR-IDF",
        timezone="Europe/Paris",
        link=adapter_profile(**faults),  # type: ignore[arg-type]
    )
    return create_adapter_app(store, token=token)


if __name__ == "__main__":
    main(create_app)
