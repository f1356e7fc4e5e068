"""Promotions compiled once to flat attributes and sets for the hot path (cached by identity)."""

from __future__ import annotations

from decimal import Decimal

from harness.domain.pricing.common import _CLASS_INDEX, _HUNDRED, _ONE, _QUANT
from harness.domain.pricing.steps import (
    _ship_amount,
    _ship_percent,
    _step_bundle,
    _step_bxgy,
    _step_fixed,
    _step_per_line,
    _step_percent,
    _step_points,
    _step_spread,
    _step_tiered,
)
from harness.domain.promotion import Promotion


class _Tier:
    __slots__ = ("amount", "factor", "threshold")

    def __init__(self, threshold: Decimal, factor: Decimal | None, amount: Decimal | None):
        self.threshold = threshold
        self.factor = factor
        self.amount = amount


class _Selection:
    """Which lines a promotion's conditions select and its exclusions keep out (rule 1).

    Interned: promotions with the same conditions and exclusions share one, so a pricing
    call selects lines once per distinct selection.
    """

    __slots__ = ("c_cats", "c_skus", "open", "x_cats", "x_nd", "x_skus")

    def __init__(
        self,
        c_skus: frozenset[str],
        c_cats: frozenset[str],
        x_skus: frozenset[str],
        x_cats: frozenset[str],
        x_nd: bool,
    ) -> None:
        self.c_skus, self.c_cats = c_skus, c_cats
        self.x_skus, self.x_cats, self.x_nd = x_skus, x_cats, x_nd
        self.open = not (c_skus or c_cats)  # no condition: every line not excluded


_SELECTIONS: dict[
    tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str], bool], _Selection
] = {}


def _selection(
    c_skus: frozenset[str],
    c_cats: frozenset[str],
    x_skus: frozenset[str],
    x_cats: frozenset[str],
    x_nd: bool,
) -> _Selection:
    key = (c_skus, c_cats, x_skus, x_cats, x_nd)
    found = _SELECTIONS.get(key)
    if found is None:
        if len(_SELECTIONS) >= _CACHE_MAX:
            _SELECTIONS.clear()
        found = _SELECTIONS[key] = _Selection(*key)
    return found


class _Promo:
    """A promotion flattened for the hot path: plain attributes, sets, precomputed keys."""

    __slots__ = (
        "amount",
        "buy",
        "by_quantity",
        "channels",
        "cheapest",
        "cls",
        "end",
        "even",
        "factor",
        "get",
        "gross_mode",
        "id",
        "key",
        "label",
        "loyalty_only",
        "max_occ",
        "min_qty",
        "min_value",
        "multiplier",
        "order",
        "price",
        "promo",
        "quantity",
        "ref",
        "regions",
        "reverse_order",
        "rnd",
        "selection",
        "selection_no_exclusions",
        "stacking",
        "start",
        "step",
        "store_local",
        "stores",
        "tiers",
        "unit",
        "version",
        "zone",
    )

    def __init__(self, promo: Promotion) -> None:
        self.promo = promo
        self.id = promo.id
        self.version = promo.version
        self.label = f"{promo.id}@{promo.version}"
        self.ref = (promo.id, promo.version)  # how the discount log names it
        self.key = (promo.priority, promo.id, promo.version)
        self.cls = _CLASS_INDEX[promo.promotion_class]
        self.order = (self.cls, promo.priority, promo.id, promo.version)
        self.reverse_order = (self.cls, -promo.priority, promo.id, promo.version)
        self.stacking = promo.stacking
        scope = promo.scope
        self.channels = frozenset(scope.channels)
        self.regions = frozenset(scope.regions)
        self.stores = frozenset(scope.stores)
        validity = promo.validity
        self.start = validity.start
        self.end = validity.end
        self.zone = validity.timezone
        self.store_local = validity.store_local
        cond = promo.conditions
        excl = promo.exclusions
        c_skus, c_cats = frozenset(cond.skus), frozenset(cond.categories)
        self.selection = _selection(
            c_skus, c_cats, frozenset(excl.skus), frozenset(excl.categories), excl.non_discountable
        )
        self.selection_no_exclusions = _selection(c_skus, c_cats, frozenset(), frozenset(), False)
        self.min_qty = cond.min_quantity
        self.min_value = cond.min_basket_value
        self.gross_mode = promo.price_mode == "gross"
        self.rnd = _QUANT[promo.rounding.mode]
        self.unit = promo.rounding.level == "unit"
        self.factor: Decimal | None = None
        self.amount: Decimal | None = None
        self.even = False
        self.price: Decimal | None = None
        self.buy = self.get = self.quantity = 0
        self.cheapest = True
        self.max_occ: int | None = None
        self.tiers: tuple[_Tier, ...] = ()
        self.by_quantity = False
        self.multiplier: Decimal = _ONE
        self.loyalty_only = False
        benefit = promo.benefit
        shipping = promo.promotion_class == "shipping"
        if benefit.type == "percent_off":
            self.factor = benefit.percent / _HUNDRED
            self.step = _ship_percent if shipping else _step_percent
        elif benefit.type == "amount_off":
            self.amount = benefit.amount
            self.even = benefit.spread == "even"
            if shipping:
                self.step = _ship_amount
            elif benefit.spread == "per_line":
                self.step = _step_per_line
            else:
                self.step = _step_spread
        elif benefit.type == "fixed_price":
            self.price = benefit.price
            self.step = _step_fixed
        elif benefit.type == "buy_x_get_y":
            self.buy, self.get = benefit.buy, benefit.get
            self.factor = benefit.percent / _HUNDRED
            self.cheapest = benefit.target == "cheapest"
            self.max_occ = _min_opt(benefit.max_occurrences, promo.limits.per_basket)
            self.step = _step_bxgy
        elif benefit.type == "bundle_price":
            self.quantity = benefit.quantity
            self.price = benefit.price
            self.max_occ = _min_opt(benefit.max_occurrences, promo.limits.per_basket)
            self.step = _step_bundle
        elif benefit.type == "tiered":
            self.by_quantity = benefit.basis == "quantity"
            self.tiers = tuple(
                _Tier(t.threshold, None if t.percent is None else t.percent / _HUNDRED, t.amount)
                for t in reversed(benefit.tiers)
            )
            self.step = _step_tiered
        else:
            self.multiplier = benefit.multiplier
            self.loyalty_only = True
            self.step = _step_points


def _min_opt(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


_COMPILED: dict[int, _Promo] = {}
_CACHE_MAX = 8192


def _compile(promo: Promotion) -> _Promo:
    # Keyed by identity (lists make promotions unhashable); the entry holds the promotion,
    # so its id cannot be reused while cached, and the identity check guards anyway.
    cp = _COMPILED.get(id(promo))
    if cp is not None and cp.promo is promo:
        return cp
    if not isinstance(promo, Promotion):
        raise TypeError(f"expected a Promotion, got {type(promo).__name__}")
    if len(_COMPILED) >= _CACHE_MAX:
        _COMPILED.clear()
    cp = _Promo(promo)
    _COMPILED[id(promo)] = cp
    return cp
