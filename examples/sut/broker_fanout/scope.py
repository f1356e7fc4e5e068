"""Which endpoints a publish or a rollback reaches: docs/scope.md's rules, stated here
again because this system is independent of promoharness.

A scope is three lists (channels, regions, stores); an empty list is no filter. Endpoints
come from the estate's listing (``GET /estate/endpoints``): a store has a ``store`` and a
``region``, the ERP, web shop, loyalty and marketplace have neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

SYSTEM_OF_RECORD = ("erp",)
Scope = Mapping[str, Sequence[str]]


def covers(
    scope: Scope, channel: str, region: str | None, store: str | None, *, publish: bool
) -> bool:
    """True when the endpoint of ``channel`` (at ``store`` in ``region``) is in ``scope``."""
    channels = scope.get("channels") or []
    regions = scope.get("regions") or []
    stores = scope.get("stores") or []
    if channels and channel not in channels:
        return False
    if not (store or region):
        # A region or store list alone means the stores there, not the web shop...
        if channels or not (regions or stores):
            return True
        # ...but a publish always reaches the system of record (the ERP price book).
        return publish and channel in SYSTEM_OF_RECORD
    if store and stores:
        return store in stores  # a listed store decides over regions
    if region and regions:
        return region in regions
    return True


def targets(
    endpoints: Iterable[Mapping[str, Any]], own: Scope, sub: Scope, *, op: str
) -> list[Mapping[str, Any]]:
    """The endpoints an ``op`` ("apply" | "revoke") of a promotion whose own scope is ``own``
    reaches with the operator's sub-scope ``sub``."""
    out = []
    for ep in endpoints:
        channel, region, store = ep["channel"], ep.get("region"), ep.get("store")
        sellable = channel in SYSTEM_OF_RECORD or covers(own, channel, region, store, publish=False)
        if sellable and covers(sub, channel, region, store, publish=op == "apply"):
            out.append(ep)
    return out


def unknown_members(scope: Scope, endpoints: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(field, name) for every channel, region or store the estate does not have: a typo
    must be refused, never match nothing (or, worse, everything)."""
    known = {
        "channels": {ep["channel"] for ep in endpoints},
        "regions": {ep["region"] for ep in endpoints if ep.get("region")},
        "stores": {ep["store"] for ep in endpoints if ep.get("store")},
    }
    return [
        (field, name)
        for field in ("channels", "regions", "stores")
        for name in scope.get(field) or []
        if name not in known[field]
    ]
