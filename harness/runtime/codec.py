"""Orchestrator events <-> JSON, for the live runtime's journal (replayed after a crash).

Every event is a frozen dataclass; its JSON is ``{"type": <class name>, ...fields}`` with
a canonical promotion as its pydantic JSON and a ``TargetScope`` as a dict of lists.
Decoding gives back an equal object, so replaying the journal through a fresh
orchestrator rebuilds exactly the state it had.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from harness.domain.promotion import Promotion
from harness.orchestrator import events as ev

EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        ev.CreateDraft,
        ev.Submit,
        ev.Validate,
        ev.Approve,
        ev.Reject,
        ev.Schedule,
        ev.Publish,
        ev.Pause,
        ev.Resume,
        ev.Rollback,
        ev.End,
        ev.Settle,
        ev.Reconcile,
        ev.ReplayDeadLetters,
        ev.ValidationResult,
        ev.DeliveryResult,
        ev.Ack,
        ev.TimerFired,
    )
}


def _plain(value: Any) -> Any:
    if isinstance(value, Promotion):
        return {"$promotion": value.model_dump(mode="json", by_alias=True)}
    if isinstance(value, ev.TargetScope):
        return {"$scope": [list(value.channels), list(value.regions), list(value.stores)]}
    if isinstance(value, tuple):
        return {"$tuple": [_plain(v) for v in value]}
    return value


def _typed(value: Any) -> Any:
    if isinstance(value, dict):
        if "$promotion" in value:
            return Promotion.model_validate(value["$promotion"])
        if "$scope" in value:
            channels, regions, stores = value["$scope"]
            return ev.TargetScope(tuple(channels), tuple(regions), tuple(stores))
        if "$tuple" in value:
            return tuple(_typed(v) for v in value["$tuple"])
    return value


def encode(event: Any) -> str:
    name = type(event).__name__
    if name not in EVENT_TYPES:
        raise TypeError(f"not an orchestrator event: {event!r}")
    body = {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event)}
    return json.dumps({"type": name, **body}, separators=(",", ":"), sort_keys=True)


def decode(text: str) -> Any:
    data = json.loads(text)
    cls = EVENT_TYPES[data.pop("type")]
    return cls(**{key: _typed(value) for key, value in data.items()})
