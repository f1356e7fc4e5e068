"""Reference ecommerce adapter: a storefront (``EcommerceSite``) answering 202, then acking
by webhook 0.2 s later.

Run: ``python examples/adapters/reference_ecommerce.py --port 8082 --token secret``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapter_kit import adapter_profile, create_adapter_app, main
from fastapi import FastAPI

from simulators.ecommerce import EcommerceSite


def create_app(token: str = "secret", **faults: object) -> FastAPI:
    """A reference ecommerce adapter (asynchronous: 202 + ack webhook)."""
    site = EcommerceSite("web", link=adapter_profile(ack_delay=0.2, **faults))  # type: ignore[arg-type]
    return create_adapter_app(site, token=token)


if __name__ == "__main__":
    main(create_app)
