"""The live runtime's side of the wire: where each endpoint is served, what an answer
means (status -> outcome, Retry-After), and a place in the delivery window.
Split out of ``harness/runtime/live.py`` (re-exported there).
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from typing import Any


@dataclass
class EndpointDirectory:
    """Where each endpoint is served (simulators/apps.py routes)."""

    base_url: str
    polled: frozenset[str] = frozenset()  # endpoints learned by polling (marketplace)

    def delivery_url(self, endpoint: str) -> str:
        return f"{self.base_url}/endpoints/{endpoint}/deliveries"

    def poll_url(self, promo: str) -> str:
        return f"{self.base_url}/marketplace/offers/{promo}"

    def validate_url(self) -> str:
        return f"{self.base_url}/erp/validate"


def outcome_of(status: int) -> str:
    """HTTP status -> delivery outcome (events.DeliveryResult)."""
    if status == 200:
        return "ok"
    if status == 202:
        return "accepted"
    if status == 429:
        return "throttled"
    if status == 503:
        return "unavailable"
    if status >= 500:
        return "error"
    return "rejected"


def retry_after_of(headers: Any, body: Any) -> float | None:
    """The endpoint's Retry-After (body first, then header); None unless a finite delay."""
    value = body.get("retry_after") if isinstance(body, dict) else None
    if not isinstance(value, int | float) or isinstance(value, bool):
        value = headers.get("Retry-After")
    try:
        seconds = float(value) if value is not None else None
    except (ValueError, OverflowError):
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def json_of(body: bytes) -> Any:
    """A response body's JSON; None for an empty one. Raises ``ValueError`` (not JSON,
    not UTF-8)."""
    return json.loads(body) if body.strip() else None


class _Slot:
    """A place in the delivery window, given back once (answered or WINDOW_HOLD passed)."""

    __slots__ = ("held", "window")

    def __init__(self, window: asyncio.Semaphore) -> None:
        self.window = window
        self.held = True

    def free(self) -> None:
        if self.held:
            self.held = False
            self.window.release()
