"""FAULTY marketplace adapter: keeps the promotion after a revoke (``keep_after_revoke``).

It answers 202 and acks the revoke, but the offer stays live. Expected to fail
``deactivation`` and ``ordering`` (a late older version after the ignored revoke is live).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adapter_kit import adapter_profile, create_adapter_app, main
from fastapi import FastAPI

from simulators.marketplace import Marketplace


def create_app(token: str = "secret") -> FastAPI:
    """An asynchronous marketplace adapter whose revokes never take effect."""
    account = Marketplace("mkt-amazon", link=adapter_profile(ack_delay=0.3, keep_after_revoke=True))
    return create_adapter_app(account, token=token)


if __name__ == "__main__":
    main(create_app)
