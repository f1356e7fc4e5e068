"""Reference marketplace adapter: a seller account (``Marketplace``) answering 202; the
offer goes live 0.3 s later and the adapter turns that activation into an ack webhook.

Run: ``python examples/adapters/reference_marketplace.py --port 8084 --token secret``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapter_kit import adapter_profile, create_adapter_app, main
from fastapi import FastAPI

from simulators.marketplace import Marketplace


def create_app(token: str = "secret", **faults: object) -> FastAPI:
    """A reference marketplace adapter (asynchronous: 202 + ack webhook on activation)."""
    account = Marketplace("mkt-amazon", link=adapter_profile(ack_delay=0.3, **faults))  # type: ignore[arg-type]
    return create_adapter_app(account, token=token)


if __name__ == "__main__":
    main(create_app)
