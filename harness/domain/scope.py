"""Which endpoints a scope covers: the one place that decides it.

A scope is three lists, ``channels``, ``regions`` and ``stores``; an empty list means "no
filter of that kind". It is used twice: a promotion's own scope (where it may be sold; its
channel list is never empty) and an operator's sub-scope of a publish, schedule or
rollback. Both go through ``covers``; ``docs/scope.md`` has the table.

An endpoint has a *place* when it is a store (a store id and its region). The ERP price
book, the web shop, loyalty and the marketplace have none, and that is where the rules
differ from a naive filter:

- a region or store list reaches only endpoints that have a place, unless the endpoint's
  channel is named: ``{regions: [east]}`` is the stores of the east, not the web shop;
  ``{channels: [pos, ecommerce], regions: [east]}`` is the east's stores and the web shop;
- when an endpoint has a store and stores are listed, the store list decides (a listed
  store overrides regions, as in the canonical model); else a region list decides;
- the ERP price book is the system of record: a *publish* puts every promotion there
  unless its sub-scope names channels without ``erp``; a rollback takes it out only when
  its scope covers it by the rules above (a whole rollback, or one naming ``erp``).

Unknown names are errors, never empty matches: ``unknown_members`` lists them, and the
edges turn them into HTTP 422 or exit 2 naming the field.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Protocol

__all__ = [
    "SYSTEM_OF_RECORD_CHANNELS",
    "ScopeLike",
    "UnknownScopeMember",
    "covers",
    "unknown_members",
]

SYSTEM_OF_RECORD_CHANNELS = ("erp",)


class ScopeLike(Protocol):
    """Anything with the three scope lists (the canonical ``Scope``, ``TargetScope``...)."""

    @property
    def channels(self) -> Sequence[str]: ...

    @property
    def regions(self) -> Sequence[str]: ...

    @property
    def stores(self) -> Sequence[str]: ...


class UnknownScopeMember(ValueError):
    """A scope names a channel, region or store the estate does not have."""

    def __init__(self, field: str, value: str, known: Collection[str]) -> None:
        self.field = field
        self.value = value
        sample = sorted(known)
        shown = ", ".join(sample[:8]) + (", ..." if len(sample) > 8 else "")
        kind = field.rstrip("s")
        super().__init__(f"unknown {kind} {value!r} (the estate has: {shown or 'none'})")


def covers(
    scope: ScopeLike,
    channel: str,
    region: str | None = None,
    store: str | None = None,
    *,
    publish: bool = False,
) -> bool:
    """True when the endpoint of ``channel`` (at ``store`` in ``region``) is in ``scope``.

    ``publish``: the scope is a publish's sub-scope, so the system of record is reached
    whenever no channel is named.
    """
    channels = scope.channels
    if channels and channel not in channels:
        return False
    if not (store or region):
        if channels or not (scope.regions or scope.stores):
            return True
        return publish and channel in SYSTEM_OF_RECORD_CHANNELS
    if store and scope.stores:
        return store in scope.stores
    if region and scope.regions:
        return region in scope.regions
    return True


def unknown_members(
    scope: ScopeLike,
    *,
    channels: Iterable[str],
    regions: Iterable[str],
    stores: Iterable[str],
) -> list[UnknownScopeMember]:
    """Every name in ``scope`` that the estate (its channels, regions and stores) lacks."""
    known = {"channels": set(channels), "regions": set(regions), "stores": set(stores)}
    out: list[UnknownScopeMember] = []
    for field, names in (
        ("channels", scope.channels),
        ("regions", scope.regions),
        ("stores", scope.stores),
    ):
        out.extend(
            UnknownScopeMember(field, name, known[field])
            for name in names
            if name not in known[field]
        )
    return out
