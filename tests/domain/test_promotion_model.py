"""The canonical promotion rejects bad definitions with errors that name the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from harness.domain.promotion import Promotion

VALID: dict[str, Any] = {
    "id": "PL-WEEKEND-20",
    "name": "Weekend: 20% off private label",
    "validity": {
        "start": "2026-11-28T09:00:00",
        "end": "2026-11-30T00:00:00",
        "timezone": "Europe/Paris",
    },
    "scope": {"channels": ["pos", "ecommerce"]},
    "benefit": {"type": "percent_off", "percent": "20"},
}


def with_change(path: str, value: Any) -> dict[str, Any]:
    """VALID with ``a.b.c`` set to ``value``."""
    body = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node = body
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return body


def error_locs(body: dict[str, Any]) -> list[tuple[str | int, ...]]:
    with pytest.raises(ValidationError) as info:
        Promotion.model_validate(body)
    return [tuple(err["loc"]) for err in info.value.errors()]


def test_valid_definition_passes() -> None:
    promo = Promotion.model_validate(VALID)
    assert promo.key == ("PL-WEEKEND-20", 1)


def test_percent_over_100_names_percent() -> None:
    locs = error_locs(with_change("benefit.percent", "120"))
    assert any("percent" in loc and loc[0] == "benefit" for loc in locs), locs


def test_window_end_before_start_names_end() -> None:
    locs = error_locs(with_change("validity.end", "2026-11-27T00:00:00"))
    assert ("validity", "end") in locs


def test_window_end_equal_to_start_names_end() -> None:
    locs = error_locs(with_change("validity.end", "2026-11-28T09:00:00"))
    assert ("validity", "end") in locs


def test_unknown_channel_names_channels() -> None:
    locs = error_locs(with_change("scope.channels", ["pos", "carrier-pigeon"]))
    assert any(loc[:2] == ("scope", "channels") for loc in locs), locs


def test_empty_scope_names_channels() -> None:
    locs = error_locs(with_change("scope.channels", []))
    assert ("scope", "channels") in locs


def test_unknown_time_zone_names_timezone() -> None:
    locs = error_locs(with_change("validity.timezone", "Europe/Atlantis"))
    assert ("validity", "timezone") in locs


def test_tier_without_benefit_names_the_tier() -> None:
    body = with_change("benefit", {"type": "tiered", "tiers": [{"threshold": "50"}]})
    locs = error_locs(body)
    assert any(loc[:4] == ("benefit", "tiered", "tiers", 0) for loc in locs), locs


def test_vendor_funding_without_vendor_names_funding() -> None:
    locs = error_locs(with_change("funding", {"source": "vendor"}))
    assert any(loc[0] == "funding" for loc in locs), locs


def test_unknown_field_is_named() -> None:
    with pytest.raises(ValidationError) as info:
        Promotion.model_validate(with_change("discount_pct", 20))
    errors = info.value.errors()
    assert [(tuple(e["loc"]), e["type"]) for e in errors] == [
        (("discount_pct",), "extra_forbidden")
    ]


def test_unknown_nested_field_is_named() -> None:
    locs = error_locs(with_change("scope.shops", ["S1"]))
    assert ("scope", "shops") in locs


def test_an_rfc3339_offset_is_read_as_wall_clock_time_in_the_zone() -> None:
    # The schema says date-time (RFC 3339): Z and offsets are accepted, and the instant is
    # kept as its wall-clock time in validity.timezone (Paris is +01:00 in November).
    for start in ("2026-11-28T09:00:00+01:00", "2026-11-28T08:00:00Z", "2026-11-28T03:00:00-05:00"):
        promo = Promotion.model_validate(with_change("validity.start", start))
        assert promo.validity.start.isoformat() == "2026-11-28T09:00:00", start
    # An offset past what a datetime can hold in the zone names the field.
    locs = error_locs(with_change("validity.start", "0001-01-01T00:30:00+05:00"))
    assert ("validity", "start") in locs
