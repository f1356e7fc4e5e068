"""Builds the simulated estate — regions, stores, channels, catalog — from a seed.

The default estate is a US national retailer: six regions on the US time zones (Eastern,
Central, Mountain, Pacific, Alaska, Hawaii), 600 stores spread by regional weight, each
region with its own mix of POS releases (some batch-only) and link qualities, plus one
cloud ERP, one web shop, one loyalty service and one marketplace.

Shares are honoured exactly (largest-remainder apportionment, then a seeded shuffle), not
drawn at random: "15 % of the east is batch-only" means 31 stores of 204, for every seed.
Faker (seeded per instance; ``use_weighting=False``, ten times faster and the names are as
plausible) names cities, vendors and products; everything else comes from
``random.Random`` seeded from the same seed, so an estate is a pure function of its inputs.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from faker import Faker

from simulators.ecommerce import EcommerceSite
from simulators.endpoint import EndpointModel
from simulators.erp import Erp, Product
from simulators.loyalty import LoyaltyService
from simulators.marketplace import Marketplace
from simulators.pos import POS_VERSIONS, PosStore, PosVersion
from simulators.profiles import PROFILES, Outage

Shares = tuple[tuple[str, float], ...]


def _shares(value: Mapping[str, float] | Shares) -> Shares:
    items = tuple(value.items()) if isinstance(value, Mapping) else tuple(value)
    if not items or any(w < 0 for _, w in items) or sum(w for _, w in items) <= 0:
        raise ValueError(f"shares must be non-negative with a positive sum: {items}")
    return tuple((str(k), float(w)) for k, w in items)


@dataclass(frozen=True, slots=True)
class RegionSpec:
    """A region: its IANA zone, its weight in the store count, its POS-release and
    link-quality mixes (name -> share; shares need not sum to 1)."""

    name: str
    timezone: str
    weight: float = 1.0
    versions: Mapping[str, float] | Shares = (("v7-realtime", 1.0),)
    links: Mapping[str, float] | Shares = (("healthy-pos", 1.0),)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"region {self.name!r}: unknown time zone {self.timezone!r}") from exc
        if self.weight <= 0:
            raise ValueError(f"region {self.name!r}: weight must be > 0")
        object.__setattr__(self, "versions", _shares(self.versions))
        object.__setattr__(self, "links", _shares(self.links))
        unknown = [name for name, _ in self.links if name not in PROFILES]  # type: ignore[misc]
        if unknown:
            raise ValueError(f"region {self.name!r}: unknown link profiles {unknown}")

    def batch_share(self, versions: Mapping[str, PosVersion] = POS_VERSIONS) -> float:
        pairs: Shares = self.versions  # type: ignore[assignment]
        total = sum(w for _, w in pairs)
        return sum(w for v, w in pairs if not versions[v].realtime) / total


DEFAULT_REGIONS: tuple[RegionSpec, ...] = (
    RegionSpec(
        "east",
        "America/New_York",
        0.34,
        {"v7-realtime": 0.60, "v6-realtime": 0.25, "v5-batch": 0.15},
        {"healthy-pos": 0.90, "flaky-link": 0.10},
    ),
    RegionSpec(
        "central",
        "America/Chicago",
        0.28,
        {"v7-realtime": 0.50, "v6-realtime": 0.25, "v5-batch": 0.25},
        {"healthy-pos": 0.85, "flaky-link": 0.15},
    ),
    RegionSpec(
        "mountain",
        "America/Denver",
        0.10,
        {"v7-realtime": 0.40, "v5-batch": 0.40, "v4-batch": 0.20},
        {"healthy-pos": 0.75, "flaky-link": 0.20, "satellite-link": 0.05},
    ),
    RegionSpec(
        "pacific",
        "America/Los_Angeles",
        0.22,
        {"v7-realtime": 0.70, "v6-realtime": 0.20, "v5-batch": 0.10},
        {"healthy-pos": 0.90, "flaky-link": 0.10},
    ),
    RegionSpec(
        "alaska",
        "America/Anchorage",
        0.03,
        {"v6-realtime": 0.40, "v5-batch": 0.30, "v4-batch": 0.30},
        {"flaky-link": 0.50, "satellite-link": 0.50},
    ),
    RegionSpec(
        "hawaii",
        "Pacific/Honolulu",
        0.03,
        {"v7-realtime": 0.50, "v5-batch": 0.50},
        {"healthy-pos": 0.50, "flaky-link": 0.30, "satellite-link": 0.20},
    ),
)


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split ``total`` by ``weights`` exactly (largest remainder; ties to the first)."""
    s = sum(weights)
    quotas = [total * w / s for w in weights]
    counts = [int(q) for q in quotas]
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - counts[i]), i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _spread(total: int, shares: Shares, rng: random.Random) -> list[str]:
    counts = apportion(total, [w for _, w in shares])
    labels = [name for (name, _), n in zip(shares, counts, strict=True) for _ in range(n)]
    rng.shuffle(labels)
    return labels


# --- catalog -----------------------------------------------------------------------------

# (category, share, tax rate, low, high, nouns). US sales tax: groceries exempt.
_CATEGORIES: tuple[tuple[str, float, str, float, float, tuple[str, ...]], ...] = (
    ("grocery", 0.20, "0", 1, 12, ("Pasta", "Rice", "Cereal", "Coffee", "Soup", "Granola")),
    ("produce", 0.06, "0", 0.5, 6, ("Apples", "Bananas", "Avocados", "Spinach", "Berries")),
    ("dairy", 0.06, "0", 1, 9, ("Milk", "Yogurt", "Cheddar", "Butter", "Eggs")),
    ("beverages", 0.08, "0.0725", 1, 20, ("Soda", "Sparkling Water", "Juice", "Cold Brew")),
    ("household", 0.10, "0.0725", 2, 30, ("Detergent", "Paper Towels", "Dish Soap", "Bleach")),
    ("beauty", 0.07, "0.0725", 3, 45, ("Shampoo", "Lotion", "Sunscreen", "Body Wash")),
    ("electronics", 0.06, "0.0725", 10, 400, ("Headphones", "Charger", "Speaker", "Webcam")),
    ("apparel", 0.08, "0.0725", 6, 90, ("T-Shirt", "Hoodie", "Jeans", "Socks", "Jacket")),
    ("home", 0.07, "0.0725", 5, 150, ("Lamp", "Throw Pillow", "Candle", "Cookware Set")),
    ("toys", 0.05, "0.0725", 5, 80, ("Puzzle", "Building Set", "Plush", "Board Game")),
    ("private-label", 0.12, "0", 1, 20, ("Pasta", "Cereal", "Coffee", "Snacks", "Detergent")),
    ("gift-cards", 0.02, "0", 10, 100, ("Gift Card",)),
    ("bundles", 0.03, "0.0725", 15, 60, ("BBQ Bundle", "Snack Bundle", "Movie Night Bundle")),
)
_NON_DISCOUNTABLE = frozenset({"gift-cards", "bundles"})
_PREFIX = {"private-label": "PL", "gift-cards": "GC", "bundles": "BD"}
HOUSE_BRAND = "house-brand"
_CENTS = (Decimal("0.99"), Decimal("0.49"), Decimal("0.29"), Decimal("0.79"))
_GIFT_CARDS = (Decimal("10.00"), Decimal("25.00"), Decimal("50.00"), Decimal("100.00"))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def build_catalog(n_products: int = 500, seed: int = 0, *, n_vendors: int = 30) -> list[Product]:
    """``n_products`` products over the categories above; deterministic for a seed."""
    fake = Faker("en_US", use_weighting=False)
    fake.seed_instance(seed)
    rng = random.Random(f"{seed}:catalog")
    vendors: list[tuple[str, str]] = []
    seen: set[str] = set()
    while len(vendors) < n_vendors:
        company = fake.company()
        slug = _slug(company)
        if slug not in seen:
            seen.add(slug)
            vendors.append((slug, re.split(r"[ ,-]", company)[0]))
    kinds = _spread(n_products, tuple((c[0], c[1]) for c in _CATEGORIES), rng)
    spec = {c[0]: c for c in _CATEGORIES}
    products: list[Product] = []
    for i, category in enumerate(kinds, start=1):
        _, _, tax, low, high, nouns = spec[category]
        private = category == "private-label"
        if private:
            vendor, brand = HOUSE_BRAND, "Northstar"
        else:
            vendor, brand = rng.choice(vendors)
        if category == "gift-cards":
            price = rng.choice(_GIFT_CARDS)
        else:
            dollars = int(rng.uniform(low, high))
            price = Decimal(dollars) + rng.choice(_CENTS)
        noun = rng.choice(nouns)
        products.append(
            Product(
                sku=f"{_PREFIX.get(category, 'SKU')}-{i:05d}",
                name=f"{brand} {fake.word().title()} {noun}",
                category=category,
                price=price,
                tax_rate=Decimal(tax),
                vendor=vendor,
                private_label=private,
                non_discountable=category in _NON_DISCOUNTABLE,
            )
        )
    return products


# --- estate ------------------------------------------------------------------------------


@dataclass
class Estate:
    """Everything the orchestrator delivers to, and what the shoppers buy."""

    seed: int
    regions: tuple[RegionSpec, ...]
    stores: tuple[PosStore, ...]
    catalog: tuple[Product, ...]
    erp: Erp
    web: EcommerceSite
    loyalty: LoyaltyService
    marketplace: Marketplace
    _by_id: dict[str, EndpointModel] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {e.id: e for e in self.endpoints()}

    def endpoints(self) -> list[EndpointModel]:
        """ERP, every store (id order), web shop, loyalty, marketplace."""
        return [self.erp, *self.stores, self.web, self.loyalty, self.marketplace]

    def endpoint(self, id: str) -> EndpointModel:
        return self._by_id[id]

    def stores_in(self, region: str) -> list[PosStore]:
        return [s for s in self.stores if s.region == region]

    def products(self) -> dict[str, Product]:
        return {p.sku: p for p in self.catalog}


def build_estate(
    stores: int = 600,
    regions: Sequence[RegionSpec] | None = None,
    seed: int = 0,
    *,
    n_products: int = 500,
    versions: Mapping[str, PosVersion] | None = None,
    horizon: float = 86_400.0,
    erp_quota: float | None = None,
    erp_maintenance: Outage | None = None,
) -> Estate:
    """The estate for ``seed``: same inputs, same estate (ids, zones, versions, catalog)."""
    specs = tuple(regions) if regions is not None else DEFAULT_REGIONS
    if not specs:
        raise ValueError("an estate needs at least one region")
    table = dict(versions) if versions is not None else POS_VERSIONS
    for spec in specs:
        missing = [v for v, _ in spec.versions if v not in table]  # type: ignore[misc]
        if missing:
            raise ValueError(f"region {spec.name!r}: unknown POS versions {missing}")
    rng = random.Random(f"{seed}:estate")
    fake = Faker("en_US", use_weighting=False)
    fake.seed_instance(seed)

    counts = apportion(stores, [s.weight for s in specs])
    if stores >= len(specs):
        # Every region gets a store even when its weight rounds to none.
        for i, n in enumerate(counts):
            if n == 0:
                counts[counts.index(max(counts))] -= 1
                counts[i] = 1
    labels = [spec.name for spec, n in zip(specs, counts, strict=True) for _ in range(n)]
    rng.shuffle(labels)  # store numbers do not follow regions, as in a real estate
    by_name = {spec.name: spec for spec in specs}
    numbers: dict[str, list[int]] = {spec.name: [] for spec in specs}
    for number, region in enumerate(labels, start=1):
        numbers[region].append(number)

    built: dict[int, PosStore] = {}
    for spec in specs:
        ids = numbers[spec.name]
        region_versions = _spread(len(ids), spec.versions, rng)  # type: ignore[arg-type]
        region_links = _spread(len(ids), spec.links, rng)  # type: ignore[arg-type]
        for number, vname, link in zip(ids, region_versions, region_links, strict=True):
            version = table[vname]
            offset = 0.0 if version.realtime else round(rng.uniform(0, version.poll_interval), 1)
            built[number] = PosStore(
                f"S{number:04d}",
                region=spec.name,
                timezone=by_name[spec.name].timezone,
                version=version,
                link=link,
                poll_offset=offset,
                seed=seed,
                horizon=horizon,
            )
    store_list = tuple(built[n] for n in sorted(built))
    for store in store_list:  # cities in id order, so they do not depend on region order
        store.city = fake.city()

    catalog = tuple(build_catalog(n_products, seed))
    vendors = sorted({p.vendor for p in catalog})
    erp = Erp(
        catalog,
        regions=[s.name for s in specs],
        stores=[s.id for s in store_list],
        vendor_budgets={v: Decimal(rng.randrange(50, 501) * 1000) for v in vendors},
        quota=erp_quota,
        maintenance=erp_maintenance,
        seed=seed,
        horizon=horizon,
    )
    return Estate(
        seed=seed,
        regions=specs,
        stores=store_list,
        catalog=catalog,
        erp=erp,
        web=EcommerceSite("web", seed=seed, horizon=horizon),
        loyalty=LoyaltyService("loyalty", seed=seed, horizon=horizon),
        marketplace=Marketplace("mkt-amazon", seed=seed, horizon=horizon),
    )
