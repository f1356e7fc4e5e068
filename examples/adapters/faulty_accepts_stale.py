"""FAULTY ecommerce adapter: accepts stale versions (profile ``accept_stale=True``).

An older version arriving after a newer one replaces it. Expected to fail ``ordering`` and
``faults_redelivery``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapter_kit import adapter_profile, create_adapter_app, main
from fastapi import FastAPI

from simulators.ecommerce import EcommerceSite


def create_app(token: str = "secret") -> FastAPI:
    """An asynchronous storefront adapter that lets an older version win."""
    site = EcommerceSite("web", link=adapter_profile(ack_delay=0.2, accept_stale=True))
    return create_adapter_app(site, token=token)


if __name__ == "__main__":
    main(create_app)
