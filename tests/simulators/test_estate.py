"""The estate builder: deterministic for a seed, shares honoured, fast enough to rebuild."""

from __future__ import annotations

import time
from collections import Counter
from decimal import Decimal

import pytest

from harness.domain.promotion import Promotion
from simulators.estate import (
    DEFAULT_REGIONS,
    Estate,
    RegionSpec,
    apportion,
    build_catalog,
    build_estate,
)
from simulators.pos import POS_VERSIONS


def fingerprint(e: Estate) -> list[tuple]:
    stores = [
        (
            s.id,
            s.region,
            s.timezone,
            s.version.name,
            s.profile.name,
            s.poll_offset,
            s.city,
            s.outages.windows,
        )
        for s in e.stores
    ]
    return [stores, [e.id for e in e.endpoints()], list(e.catalog)]


@pytest.fixture(scope="module")
def estate() -> Estate:
    return build_estate(seed=42)


def test_same_seed_same_estate(estate: Estate) -> None:
    assert fingerprint(build_estate(seed=42)) == fingerprint(estate)


def test_different_seed_different_estate(estate: Estate) -> None:
    other = build_estate(seed=43)
    a, b = fingerprint(estate), fingerprint(other)
    assert a[0] != b[0]
    assert a[2] != b[2]
    # ... but the shape holds: same store count per region.
    assert Counter(s.region for s in estate.stores) == Counter(s.region for s in other.stores)


def test_default_estate_shape(estate: Estate) -> None:
    assert len(estate.stores) == 600
    assert [s.id for s in estate.stores] == [f"S{i:04d}" for i in range(1, 601)]
    by_region = Counter(s.region for s in estate.stores)
    assert set(by_region) == {r.name for r in DEFAULT_REGIONS}
    assert all(n > 0 for n in by_region.values())
    assert sum(by_region.values()) == 600
    zones = {s.region: s.timezone for s in estate.stores}
    assert zones == {r.name: r.timezone for r in DEFAULT_REGIONS}
    assert all(s.city for s in estate.stores)
    ids = [e.id for e in estate.endpoints()]
    assert len(ids) == len(set(ids)) == 604
    assert ids[0] == "erp" and ids[-3:] == ["web", "loyalty", "mkt-amazon"]
    assert {e.channel for e in estate.endpoints()} == {
        "erp",
        "pos",
        "ecommerce",
        "loyalty",
        "marketplace",
    }
    assert estate.endpoint("S0042").id == "S0042"


def test_batch_share_per_region_as_configured(estate: Estate) -> None:
    for spec in DEFAULT_REGIONS:
        stores = estate.stores_in(spec.name)
        batch = sum(not s.realtime for s in stores)
        assert abs(batch - spec.batch_share() * len(stores)) < 1, spec.name
        for s in stores:
            assert dict(spec.versions)[s.version.name] > 0  # type: ignore[arg-type]
            if not s.realtime:
                assert 0 <= s.poll_offset < s.poll_interval
                assert s.mode == "batch" and s.ack_via == "push"


def test_custom_regions() -> None:
    regions = [
        RegionSpec("north", "Europe/Paris", 3, {"v7-realtime": 1, "v5-batch": 1}),
        RegionSpec("south", "Europe/Madrid", 1, {"v4-batch": 1}, {"flaky-link": 1}),
    ]
    e = build_estate(stores=40, regions=regions, seed=1)
    assert Counter(s.region for s in e.stores) == {"north": 30, "south": 10}
    assert sum(not s.realtime for s in e.stores_in("north")) == 15
    assert all(s.version.name == "v4-batch" for s in e.stores_in("south"))
    assert all(s.profile.name == "flaky-link" for s in e.stores_in("south"))
    assert e.erp.regions == {"north", "south"}


def test_every_region_gets_a_store() -> None:
    regions = [RegionSpec("big", "UTC", 1000), RegionSpec("tiny", "UTC", 0.001)]
    e = build_estate(stores=5, regions=regions, seed=0)
    assert Counter(s.region for s in e.stores) == {"big": 4, "tiny": 1}


def test_bad_specs() -> None:
    with pytest.raises(ValueError):
        RegionSpec("x", "Mars/Olympus")
    with pytest.raises(ValueError):
        RegionSpec("x", "UTC", links={"no-such-link": 1})
    with pytest.raises(ValueError):
        build_estate(stores=3, regions=[RegionSpec("x", "UTC", versions={"v99": 1})])


def test_apportion_is_exact() -> None:
    assert apportion(600, [0.34, 0.28, 0.10, 0.22, 0.03, 0.03]) == [204, 168, 60, 132, 18, 18]
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert sum(apportion(7, [0.2, 0.5, 0.3])) == 7


def test_catalog() -> None:
    catalog = build_catalog(500, seed=3)
    assert catalog == build_catalog(500, seed=3)
    assert catalog != build_catalog(500, seed=4)
    assert len(catalog) == len({p.sku for p in catalog}) == 500
    categories = Counter(p.category for p in catalog)
    assert categories["private-label"] == 60
    assert all(p.private_label for p in catalog if p.category == "private-label")
    assert not any(p.private_label for p in catalog if p.category != "private-label")
    assert all(p.non_discountable for p in catalog if p.category in ("gift-cards", "bundles"))
    assert all(p.price > 0 and p.price == p.price.quantize(Decimal("0.01")) for p in catalog)
    line = catalog[0].to_line(2)
    assert (line.sku, line.quantity, line.unit_price) == (catalog[0].sku, 2, catalog[0].price)


def test_erp_knows_the_catalog(estate: Estate) -> None:
    skus = [p.sku for p in estate.catalog[:3]]
    promotion = Promotion.model_validate(
        {
            "id": "FLASH",
            "name": "flash",
            "validity": {
                "start": "2026-11-27T09:00:00",
                "end": "2026-11-27T10:00:00",
                "timezone": "America/New_York",
            },
            "scope": {"channels": ["pos"], "regions": ["east"], "stores": ["S0001"]},
            "conditions": {"skus": skus},
            "benefit": {"type": "percent_off", "percent": "20"},
        }
    )
    assert estate.erp.validate(promotion) == (True, ())


def test_versions_table_is_used() -> None:
    assert not POS_VERSIONS["v5-batch"].realtime and POS_VERSIONS["v7-realtime"].realtime


def test_building_600_stores_is_fast() -> None:
    build_estate(seed=0)  # imports and zone data warm
    best = min(_timed(seed) for seed in range(3))
    assert best < 0.5


def _timed(seed: int) -> float:
    t0 = time.perf_counter()
    build_estate(seed=seed)
    return time.perf_counter() - t0


def test_endpoint_info_builds_the_orchestrators_view(estate: Estate) -> None:
    from harness.orchestrator.state import EndpointInfo

    infos = [EndpointInfo(**e.endpoint_info()) for e in estate.endpoints()]
    batch = next(s for s in estate.stores if not s.realtime)
    info = infos[[e.id for e in estate.endpoints()].index(batch.id)]
    assert (info.realtime, info.batch_offset, info.store) == (False, batch.poll_offset, batch.id)
    assert infos[0].channel == "erp" and infos[0].capacity > 0
