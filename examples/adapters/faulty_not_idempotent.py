"""FAULTY POS adapter: not idempotent (profile ``idempotent=False``).

A delivery received twice (same Idempotency-Key) is applied twice: the promotion is held
(and priced) twice. Expected to fail ``idempotency`` and ``faults_redelivery``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapter_kit import adapter_profile, create_adapter_app, main
from fastapi import FastAPI

from simulators.pos import PosStore


def create_app(token: str = "secret") -> FastAPI:
    """A POS adapter that applies a replayed delivery again."""
    store = PosStore(
        "store-0001",
        region="FR-IDF",
        timezone="Europe/Paris",
        link=adapter_profile(idempotent=False),
    )
    return create_adapter_app(store, token=token)


if __name__ == "__main__":
    main(create_app)
