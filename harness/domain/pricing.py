"""The reference pricing engine: the golden semantics of a canonical promotion (Decimal).

``price_basket(basket, promotions, channel=..., at=..., store=..., dialect=...)`` prices a
basket under a set of promotions and returns a :class:`~harness.domain.basket.Receipt`.
Every channel simulator prices through this function (with its dialect), and the price
consistency metric compares channels against it, so the rules below are the contract.
Money is ``Decimal`` throughout, rounded to cents (0.01). A dialect
(``dialects.py``) switches individual rules to what a real channel does; the rules below
are the reference (no dialect), and each dialect's deviation is noted in brackets.

1. Applicability (:func:`is_applicable`). A promotion applies when all hold:

   * its scope covers the channel, and, when a :class:`StoreContext` is given, the store
     id / region (``Scope.covers``);
   * the instant ``at`` (timezone-aware; a naive one is a ``ValueError``), converted to the
     window's zone, gives a wall time ``local`` with ``start <= local < end`` (start
     inclusive, end exclusive). The zone is the store's ``timezone`` when
     ``validity.store_local`` and a store is given, else ``validity.timezone``.
     [window-in-utc: the naive start/end are read as UTC wall times instead.]
   * its conditions hold. The *eligible lines* are the lines NOT excluded (a SKU in
     ``exclusions.skus``, a category in ``exclusions.categories``, or ``line.non_discountable``
     when ``exclusions.non_discountable``) AND matching ``conditions.skus`` or
     ``conditions.categories`` (both empty: every non-excluded line). An exclusion always
     beats an inclusion. The eligible lines' total units must be ``>= min_quantity`` (so a
     promotion with no eligible line never applies), and the basket's list value (the sum of
     every line's list amount, each converted to the promotion's ``price_mode``, at full
     precision) must be ``>= min_basket_value``. A ``points_multiplier`` applies only when
     ``basket.loyalty_member``. [ignore-exclusions: no exclusion is applied; only the
     conditions select lines.]

   Applicability is decided once per call, on the list prices, before any discount.

2. Order. Classes apply ``product``, then ``order``, then ``shipping``. Within a class,
   promotions apply in ascending ``(priority, id, version)``, whatever order they were passed
   in. Each discount is computed on the line's CURRENT amount, after the earlier discounts:
   stacking is sequential. [reverse-priority: descending priority, then ascending id,
   version.] Passing the same ``id@version`` twice counts once; two different definitions
   under one ``id@version`` are a ``ValueError``.

3. Exclusivity and best deal.

   * ``stackable`` promotions stack.
   * ``exclusive_class``: when a class has an applicable exclusive_class promotion, the
     class outcome is the best of: each exclusive_class promotion alone, and all the
     class's stackable promotions stacked. Best = the largest total discount granted by the
     class (lines and shipping, basket basis); a tie goes to the candidate with the lowest
     ``(priority, id, version)`` (a stacked set ranks by its lowest member). Each class
     starts from the outcome of the classes before it.
   * ``exclusive_global``: when any is applicable, the receipt is the best of: each
     exclusive_global promotion priced alone (with nothing else), and the normal result
     priced without any exclusive_global promotion. Best = the lowest ``total`` (what the
     shopper pays); a tie goes to the normal result, then to the lowest
     ``(priority, id, version)``.

4. Rounding. Each discount is rounded to the cent with the promotion's ``rounding.mode``
   (``half_even`` by default; ``half_up``; ``down`` and ``up`` are toward / away from
   zero, applied to the discount, not to the amount left) at each step, so every amount
   stays in whole cents. ``rounding.level`` ``line``: the discount is computed on the line's
   amount, then rounded; ``unit``: the per-unit discount (line amount / quantity) is rounded,
   then multiplied by the quantity. The level concerns percent_off, fixed_price,
   buy_x_get_y and tier percents; amounts are spread in whole cents (5.).
   [half-up-rounding: the mode is half_up for every promotion. unit-level-rounding: the
   level is ``unit`` for every promotion. round-once-at-end: no step rounds; each line's
   (and the shipping's) total discount is rounded once at the end, with the dialect's
   rounding mode if it sets one, else the mode of the line's first promotion; the
   individual discounts on the receipt are the differences of the rounded running totals,
   so they add up to the line's discount.] Taxes are always rounded half_even.

5. Spreading an amount over lines (:func:`spread`): amount_off ``proportional`` / ``even``,
   a bundle's discount, a tier amount, an order-class amount. The amount is first capped at
   the eligible lines' current total; the parts are then rounded with the largest remainder
   method (floor each share to the cent, hand the leftover cents one at a time to the
   largest fractional remainders, ties to the earlier basket line) so that they add up
   EXACTLY to the amount. Weights: ``proportional`` = the lines' current amounts, ``even`` =
   equal. A part never exceeds its line's current amount: a line whose share would, gets
   its whole amount and the rest is spread again over the others ("water filling").

6. Benefits.

   * ``percent_off``: each eligible line loses percent% of its current amount; class
     ``shipping``: the shipping loses percent%.
   * ``amount_off``: ``proportional`` / ``even``: the amount is spread over the eligible
     lines (5.); ``per_line``: the amount comes off each eligible line, capped at the line;
     class ``shipping``: the amount comes off the shipping, capped at it.
   * ``fixed_price``: each eligible unit sells at ``price`` if that is lower: line discount
     = max(0, current - price x quantity).
   * ``buy_x_get_y``: over the eligible units, occurrences = floor(units / (buy + get)),
     capped by ``max_occurrences`` and ``limits.per_basket``; ``get`` x occurrences units
     are discounted percent%: the cheapest units (``target`` cheapest) or the most expensive
     ones, by current unit price, ties to the earlier line.
   * ``bundle_price``: occurrences = floor(units / quantity), capped likewise; the units
     taken are the most expensive first (ties to the earlier line); discount = the taken
     units' current value - price x occurrences, when positive (rounded to the cent),
     spread proportionally to the taken value over the lines the units come from (5.).
   * ``tiered``: measure = the eligible lines' current value (in ``price_mode``, full
     precision) or their units; the highest tier whose threshold <= measure applies (exactly
     at a threshold reaches it); a tier percent works like percent_off, a tier amount is
     spread proportionally (5.).
   * ``points_multiplier``: no money; see 9.
   * ``limits.per_basket`` caps the occurrences of buy_x_get_y and bundle_price; the other
     limits are the orchestrator's business, not the pricer's.

7. Price modes. ``basket.tax_mode`` says whether unit prices include tax;
   ``promotion.price_mode`` says in which basis the promotion's money values (amount, fixed
   and bundle prices, tier thresholds, min_basket_value) are expressed. When they differ,
   values are converted per line with the line's ``tax_rate`` r (gross -> net: v / (1 + r);
   net -> gross: v x (1 + r); shipping uses ``shipping_tax_rate``). A converted money value
   (a per-line amount, a fixed price) is rounded after the computation it enters. A spread
   amount is spread in the promotion's basis (weights: the lines' current amounts in that
   basis; a line's cap: its current amount in that basis, floored to the cent) and each
   part is then converted and rounded: the parts add up to the amount EXACTLY in the
   promotion's basis, not necessarily in the basket's. Percent benefits are basis-free.

8. Tax and totals, after all discounts. Gross basket: a line's tax = amount - amount /
   (1 + r), rounded (informational: already in the amount). Net basket: a line's tax =
   amount x r, rounded, and added. The shipping likewise with ``shipping_tax_rate``.
   ``subtotal`` = sum of the lines' list amounts; ``discount_total`` = every discount,
   shipping included; ``shipping`` = the shipping charged after its discounts;
   ``total`` = sum of line amounts + shipping (+ every tax when net); ``tax_total`` = line
   taxes + shipping tax. [discount-after-tax: taxes are computed on the UNDISCOUNTED
   amounts: in a net basket the shopper pays tax on the discount (the total goes up); in a
   gross basket the total is unchanged but the tax is overstated.]

9. Points. A loyalty member earns 1 point per whole currency unit of ``total``
   (floor(total)); the applied ``points_multiplier`` with the highest multiplier (ties: the
   lowest ``(priority, id, version)``; multipliers never stack) adds (multiplier - 1) x
   floor(final amount of its eligible lines). Non-members earn nothing.

10. No line or shipping ever goes below zero and no discount exceeds what it discounts.
    ``Receipt.applied`` lists ``"id@version"`` of the promotions that gave money (or
    points), in application order; ``Receipt.dialects`` the dialect's names.

Speed (``harness.bench.pricing``: a 10-line basket under 20 promotions). A channel prices
every basket of the day under the same promotions, so each promotion is compiled once to
flat attributes and sets (cached by identity), and a promotion list once per endpoint to
its in-scope candidates, its selections indexed by category and SKU, and its application
plan (cached by the identities of its promotions). A call then selects every candidate's
lines in one pass over the basket, rounds with ``Decimal.quantize(CENT, mode)`` under one
fixed context (the cheapest rounding in CPython's decimal), and builds the receipt's models
without re-validation (what ``model_construct`` does, minus its per-field loop). Nothing
about a basket is cached between calls.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import (
    ROUND_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from itertools import compress, repeat
from operator import and_, attrgetter, gt, is_, itemgetter, le, mul, sub, truediv
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from harness.domain.basket import AppliedDiscount, Basket, Receipt, ReceiptLine
from harness.domain.dialects import REFERENCE, Dialect
from harness.domain.promotion import CLASS_ORDER, Promotion

__all__ = ["StoreContext", "is_applicable", "price_basket", "spread"]

CENT = Decimal("0.01")
_ZERO = Decimal("0")
_ZERO_CENTS = Decimal("0.00")
_ONE = Decimal("1")
_HUNDRED = Decimal("100")
_TRAPS = [InvalidOperation, DivisionByZero, Overflow]
# 34 digits (IEEE decimal128) leaves ample room over 14-digit money amounts, and fixing the
# context makes results independent of whatever decimal context the caller has set.
_ARITH = Context(prec=34, rounding=ROUND_HALF_EVEN, traps=_TRAPS)
# A promotion's rounding mode as decimal's constant. ``x.quantize(CENT, mode)`` under the
# fixed context is measurably the cheapest way to round in CPython's decimal.
_QUANT: dict[str, str] = {
    "half_even": ROUND_HALF_EVEN,
    "half_up": ROUND_HALF_UP,
    "down": ROUND_DOWN,
    "up": ROUND_UP,
}
_NO_KEY = (float("inf"), "", 0)
_CLASS_INDEX = {name: index for index, name in enumerate(CLASS_ORDER)}
# Runs an iterator to its end at C speed. Where a loop is a map() pipeline rather than a
# for statement, it measured cheaper (cachegrind instruction counts on the bench); for a
# few lines with branches the plain loop won and stayed.
_consume = deque(maxlen=0).extend
_first = itemgetter(0)


@dataclass(frozen=True, slots=True)
class StoreContext:
    """The store (if any) pricing the basket: scope by store id / region, window zone."""

    id: str | None = None
    region: str | None = None
    timezone: str = "UTC"  # IANA

    def __post_init__(self) -> None:
        _zone(self.timezone)


_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    zone = _ZONES.get(name)
    if zone is None:
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {name!r}") from exc
        _ZONES[name] = zone
    return zone


# --------------------------------------------------------------------------- spreading


def spread(amount: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split ``amount`` (whole cents, >= 0) in proportion to ``weights``, parts in cents.

    Largest remainder method: each share is floored to the cent and the leftover cents go
    one at a time to the largest fractional remainders, ties to the earlier weight. The
    parts add up exactly to ``amount``. Equal weights give an even split.
    """
    if amount < 0 or amount != amount.quantize(CENT, rounding=ROUND_DOWN):
        raise ValueError(f"amount must be non-negative whole cents, got {amount}")
    if any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative")
    if not weights or sum(weights, _ZERO) == 0:
        if amount == 0:
            return [_ZERO_CENTS] * len(weights)
        raise ValueError("cannot spread a non-zero amount over zero weights")
    return _largest_remainder(amount, weights)


def _largest_remainder(
    amount: Decimal, weights: Sequence[Decimal], total: Decimal | None = None
) -> list[Decimal]:
    """:func:`spread` without the checks; ``total`` is the weights' (positive) sum if known."""
    # Decimal divmod is exact (integer quotient, exact remainder) at this precision, so the
    # floors and remainders are exact whatever the weights' digits.
    if len(weights) == 1:
        return [amount]
    cents = amount * _HUNDRED
    if total is None:
        total = sum(weights, _ZERO)
    parts: list[Decimal] = []  # whole cents, floored
    remainders: list[Decimal] = []
    left = cents
    for w in weights:
        q, r = divmod(cents * w, total)
        parts.append(q)
        remainders.append(r)
        left -= q
    if left:  # < len(parts): each floor loses less than a cent
        # sorted() is stable, even reversed: equal remainders keep the earlier line first.
        for k in sorted(range(len(parts)), key=remainders.__getitem__, reverse=True)[: int(left)]:
            parts[k] += _ONE
    return [q * CENT for q in parts]


def _fill(
    amount: Decimal, weights: list[Decimal], caps: list[Decimal], exact: bool
) -> list[Decimal]:
    """Spread ``amount`` by ``weights`` with no part above its cap (water filling).

    The amount is first capped at the caps of the lines that can take a part. ``exact``
    keeps full-precision shares (round-once-at-end) instead of whole cents.
    """
    n = len(weights)
    parts = [_ZERO] * n
    if all(caps) and all(weights):  # caps and weights are never negative
        active = list(range(n))
    else:
        active = [k for k in range(n) if caps[k] and weights[k]]
    room = sum(map(caps.__getitem__, active), _ZERO)
    remaining = amount if amount < room else room
    while active and remaining > 0:
        ws = list(map(weights.__getitem__, active))
        cs = list(map(caps.__getitem__, active))
        if exact:
            shares = list(map(truediv, map(mul, repeat(remaining), ws), repeat(sum(ws, _ZERO))))
        else:
            shares = _largest_remainder(remaining, ws)
        if not any(map(gt, shares, cs)):
            _consume(map(parts.__setitem__, active, shares))
            break
        # Those lines give their whole cap; the others share what is left, from scratch.
        keep: list[int] = []
        for k, share, cap in zip(active, shares, cs, strict=True):
            if share > cap:
                parts[k] = cap
                remaining -= cap
            else:
                keep.append(k)
        active = keep
    return parts


# ------------------------------------------------------------------ compiled promotions


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


# ------------------------------------------------------------------------ basket context


class _Ctx:
    """One pricing call: the basket flattened, the dialect's switches, per-call caches."""

    __slots__ = (
        "at",
        "channel",
        "conv_gross",
        "conv_net",
        "dialect",
        "elig",
        "factors",
        "forced_zone",
        "gross",
        "ignore_exclusions",
        "keys",
        "list_amounts",
        "member",
        "n",
        "prices",
        "qty",
        "rates",
        "region",
        "rnd_override",
        "round_once",
        "ship",
        "ship_factor",
        "ship_rate",
        "skus",
        "store_id",
        "store_zone",
        "tax_mode",
        "unit_all",
        "values",
    )

    def __init__(
        self,
        basket: Basket,
        channel: str,
        at: dt.datetime,
        store: StoreContext | None,
        dialect: Dialect,
    ) -> None:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("'at' must be a timezone-aware instant")
        self.at = at
        self.channel = channel
        if store is None:
            self.store_id = self.region = self.store_zone = None
        else:
            self.store_id, self.region, self.store_zone = store.id, store.region, store.timezone
        self.dialect = dialect
        self.forced_zone = "UTC" if dialect.window_in_utc else None
        self.ignore_exclusions = dialect.ignore_exclusions
        self.round_once = dialect.round_once_at_end
        self.unit_all = dialect.unit_level_rounding
        mode = dialect.rounding_mode
        self.rnd_override = None if mode is None else _QUANT[mode]
        # Fields are read from the models' __dict__, one C call per line rather than six
        # lookups through pydantic's attribute hook.
        fields = vars(basket)
        lines = fields["lines"]
        self.n = len(lines)
        columns = zip(*map(_line_fields, map(vars, lines)), strict=True)
        skus, cats, nds, qty, prices, rates = columns
        self.keys = list(zip(skus, cats, nds, strict=True))
        self.skus = skus
        self.prices = prices
        self.qty = qty
        self.list_amounts = list(map(mul, prices, qty))
        self.rates = rates
        self.factors = list(map(_ONE.__add__, rates))
        self.tax_mode = fields["tax_mode"]
        self.gross = gross = self.tax_mode == "gross"
        # How a promotion's money values reach the basket's basis (see _to_basket).
        self.conv_gross = 0 if gross else 1
        self.conv_net = 2 if gross else 0
        self.ship = fields["shipping"]
        self.ship_rate = fields["shipping_tax_rate"]
        self.ship_factor = _ONE + self.ship_rate
        self.member = fields["loyalty_member"]
        self.elig: dict[_Promo, list[int]] = {}
        self.values: dict[bool, Decimal] = {}

    def list_value(self, gross_mode: bool) -> Decimal:
        """The basket's list value in a promotion's basis, at full precision."""
        value = self.values.get(gross_mode)
        if value is None:
            amounts, factors = self.list_amounts, self.factors
            if gross_mode == self.gross:
                value = sum(amounts, _ZERO)
            elif self.gross:  # promotion net, basket gross
                value = sum([a / f for a, f in zip(amounts, factors, strict=True)], _ZERO)
            else:
                value = sum([a * f for a, f in zip(amounts, factors, strict=True)], _ZERO)
            self.values[gross_mode] = value
        return value


def _in_scope(cp: _Promo, channel: str, store_id: str | None, region: str | None) -> bool:
    """``Scope.covers`` on precomputed sets (a test pins the equivalence)."""
    if channel not in cp.channels:
        return False
    if store_id is not None and cp.stores:
        return store_id in cp.stores
    if region is not None and cp.regions:
        return region in cp.regions
    return True


_line_fields = itemgetter(
    "sku", "category", "non_discountable", "quantity", "unit_price", "tax_rate"
)


class _Candidates:
    """The promotions in scope of one endpoint, laid out for a pricing call.

    Windows in parallel lists (tested with map() pipelines), and the distinct selections
    indexed by the categories and SKUs they name, so that one pass over the basket's lines
    selects the lines of every candidate. Cached per endpoint on the promotion set.
    """

    __slots__ = (
        "by_cat",
        "by_sku",
        "ends",
        "open",
        "open_to_all",
        "plans",
        "rows",
        "selections",
        "starts",
        "zone_names",
        "zones",
    )

    def __init__(self, cps: list[_Promo], ctx: _Ctx) -> None:
        forced_zone, store_zone = ctx.forced_zone, ctx.store_zone
        ignore = ctx.ignore_exclusions
        # What the conditions test, per candidate (the selection as the dialect reads it).
        self.rows = [
            (
                cp,
                cp.selection_no_exclusions if ignore else cp.selection,
                cp.min_qty,
                cp.min_value,
                cp.gross_mode,
            )
            for cp in cps
        ]
        self.selections = list(dict.fromkeys(row[1] for row in self.rows))
        self.by_cat: dict[str, list[_Selection]] = {}
        self.by_sku: dict[str, list[_Selection]] = {}
        self.open = [sel for sel in self.selections if sel.open]
        for sel in self.selections:
            for cat in sel.c_cats:
                self.by_cat.setdefault(cat, []).append(sel)
            for sku in sel.c_skus:
                self.by_sku.setdefault(sku, []).append(sel)
        # The zone that reads each window (rule 1): UTC under window-in-utc, else the
        # store's for a store-local window when a store prices, else the promotion's.
        self.zones = [forced_zone or (cp.store_local and store_zone) or cp.zone for cp in cps]
        self.zone_names = list(dict.fromkeys(self.zones))
        self.starts = [cp.start for cp in cps]
        self.ends = [cp.end for cp in cps]
        self.open_to_all = [not cp.loyalty_only for cp in cps]
        self.plans: dict[bool, _Plan] = {}

    def plan(self, applicable: list[_Promo], reverse: bool) -> _Plan:
        """The plan for ``applicable``; kept when every candidate applies, the usual case."""
        if len(applicable) != len(self.rows):
            return _Plan(applicable, reverse)
        plan = self.plans.get(reverse)
        if plan is None:
            plan = self.plans[reverse] = _Plan(applicable, reverse)
        return plan


def _select(cand: _Candidates, ctx: _Ctx) -> dict[_Selection, list[int]]:
    """The eligible lines (basket order) of every candidate selection, in one pass."""
    found: dict[_Selection, list[int]] = {sel: [] for sel in cand.selections}
    by_cat, by_sku, open_ = cand.by_cat, cand.by_sku, cand.open
    for i, (sku, cat, nd) in enumerate(ctx.keys):
        for group in (by_cat.get(cat), by_sku.get(sku), open_):
            if not group:
                continue
            for sel in group:
                if (nd and sel.x_nd) or sku in sel.x_skus or cat in sel.x_cats:
                    continue  # an exclusion always beats an inclusion
                lines = found[sel]
                if not lines or lines[-1] != i:  # a line named by SKU and by category
                    lines.append(i)
    return found


def _applicable(cand: _Candidates, ctx: _Ctx) -> list[_Promo]:
    """Rule 1 past the scope: window, loyalty, conditions. Records the eligible lines."""
    at = ctx.at
    if len(cand.zone_names) == 1:  # the usual case: every window read in one zone
        wall: Iterable[dt.datetime] = repeat(
            at.astimezone(_zone(cand.zone_names[0])).replace(tzinfo=None)
        )
    else:
        local = {z: at.astimezone(_zone(z)).replace(tzinfo=None) for z in cand.zone_names}
        wall = list(map(local.__getitem__, cand.zones))
    # start <= local < end, for every candidate at once.
    live = map(and_, map(le, cand.starts, wall), map(gt, cand.ends, wall))
    if not ctx.member:
        live = map(and_, live, cand.open_to_all)
    found = _select(cand, ctx)
    units: dict[_Selection, int] = {}
    qty = ctx.qty
    elig = ctx.elig
    out: list[_Promo] = []
    for cp, sel, min_qty, min_value, gross_mode in compress(cand.rows, live):
        n = units.get(sel)
        if n is None:
            n = units[sel] = sum(map(qty.__getitem__, found[sel]))
        if n < min_qty:
            continue
        if min_value and ctx.list_value(gross_mode) < min_value:
            continue
        elig[cp] = found[sel]
        out.append(cp)
    return out


class _PromoSet:
    """A promotion list compiled and de-duplicated, with its candidates per endpoint.

    Cached by the identities of the promotions: a channel prices every basket of the day
    under the same list, so compiling and scoping it once per endpoint is enough.
    """

    __slots__ = ("by_endpoint", "by_scope", "compiled", "promos")

    def __init__(self, promos: tuple[Promotion, ...]) -> None:
        seen: dict[str, _Promo] = {}
        for promo in promos:
            cp = _compile(promo)
            other = seen.get(cp.label)
            if other is None:
                seen[cp.label] = cp
            elif other.promo is not promo and other.promo != promo:
                raise ValueError(f"two different definitions of {cp.label}")
        self.promos = promos
        self.compiled = list(seen.values())
        # Endpoint -> candidates, through the scoped promotions: the 600 stores of a region
        # share one _Candidates, each store costs a dictionary entry.
        self.by_endpoint: dict[tuple[str | bool | None, ...], _Candidates] = {}
        self.by_scope: dict[tuple[object, ...], _Candidates] = {}

    def for_endpoint(self, ctx: _Ctx) -> _Candidates:
        key = (
            ctx.channel,
            ctx.store_id,
            ctx.region,
            ctx.store_zone,
            ctx.forced_zone,
            ctx.ignore_exclusions,
        )
        hit = self.by_endpoint.get(key)
        if hit is None:
            if len(self.by_endpoint) >= _CACHE_MAX:
                self.by_endpoint.clear()
                self.by_scope.clear()
            scoped = tuple(
                cp for cp in self.compiled if _in_scope(cp, ctx.channel, ctx.store_id, ctx.region)
            )
            scope_key = (scoped, ctx.store_zone, ctx.forced_zone, ctx.ignore_exclusions)
            hit = self.by_scope.get(scope_key)
            if hit is None:
                hit = self.by_scope[scope_key] = _Candidates(list(scoped), ctx)
            self.by_endpoint[key] = hit
        return hit


_SETS: dict[tuple[int, ...], _PromoSet] = {}
_SETS_MAX = 64  # promotion lists kept; each keeps its candidates per endpoint


def _promo_set(promotions: Iterable[Promotion]) -> _PromoSet:
    promos = tuple(promotions)
    key = tuple(map(id, promos))
    hit = _SETS.get(key)
    # The entry holds its promotions, so their ids cannot be reused while it is cached.
    if hit is not None and all(map(is_, hit.promos, promos)):
        return hit
    hit = _PromoSet(promos)
    if len(_SETS) >= _SETS_MAX:
        _SETS.clear()
    _SETS[key] = hit
    return hit


# ---------------------------------------------------------------------------- the steps


_Entry = tuple[_Promo, int, Decimal]  # (promotion, line index or -1 for shipping, discount)


class _State:
    """Amounts as the promotions leave them, and the log of every discount given."""

    __slots__ = ("amounts", "log", "points", "ran", "ship")

    def __init__(
        self,
        amounts: list[Decimal],
        ship: Decimal,
        log: list[_Entry],
        points: list[_Promo],
        ran: list[_Promo],
    ) -> None:
        self.amounts = amounts
        self.ship = ship
        self.log = log
        self.points = points
        self.ran = ran

    def copy(self) -> _State:
        return _State(self.amounts[:], self.ship, self.log[:], self.points[:], self.ran[:])


# A step applies one promotion to the state. ``rnd`` is the step's rounding mode (a decimal
# ROUND_* constant), or None when the dialect rounds once at the end. Money conversions
# (rule 7): ``conv`` 0 = same basis, 1 = promotion gross / basket net, 2 = promotion net /
# basket gross.
# Divisions come last in every formula (cur x factor / qty, not cur / qty x factor): a
# quotient rounded to 34 digits would otherwise miss an exact half cent by 1e-34 and round
# the other way.


def _to_basket(value: Decimal, factor: Decimal, conv: int) -> Decimal:
    if conv == 1:
        return value / factor
    if conv == 2:
        return value * factor
    return value


def _to_promo(value: Decimal, factor: Decimal, conv: int) -> Decimal:
    if conv == 1:
        return value * factor
    if conv == 2:
        return value / factor
    return value


def _percent_lines(
    cp: _Promo, st: _State, ctx: _Ctx, idxs: Sequence[int], factor: Decimal, rnd: str | None
) -> None:
    amounts = st.amounts
    if cp.unit or ctx.unit_all:
        _percent_units(cp, st, ctx, idxs, factor, rnd)
        return
    # Line level: d = round(current x factor) never exceeds a whole-cent current (factor <= 1).
    log = st.log
    if rnd is None:
        for i in idxs:
            cur = amounts[i]
            d = cur * factor
            if d:
                amounts[i] = cur - d
                log.append((cp, i, d))
        return
    for i in idxs:
        cur = amounts[i]
        d = (cur * factor).quantize(CENT, rnd)
        if d:
            amounts[i] = cur - d
            log.append((cp, i, d))


def _percent_units(
    cp: _Promo, st: _State, ctx: _Ctx, idxs: Sequence[int], factor: Decimal, rnd: str | None
) -> None:
    amounts = st.amounts
    log = st.log
    qty = ctx.qty
    for i in idxs:
        cur = amounts[i]
        if cur <= 0:
            continue
        q = qty[i]
        d = cur * factor / q
        if rnd is not None:
            d = d.quantize(CENT, rnd)
        d *= q
        if d > cur:  # a rounded-up unit share times the quantity can overshoot
            d = cur
        if d > 0:
            amounts[i] = cur - d
            log.append((cp, i, d))


def _spread_lines(
    cp: _Promo,
    st: _State,
    ctx: _Ctx,
    idxs: Sequence[int],
    amount: Decimal,
    weights: list[Decimal] | None,
    rnd: str | None,
    bounded: bool = False,
) -> None:
    """Spread a promotion-basis amount over lines; ``weights`` None = proportional.

    ``bounded``: the caller guarantees each weight is at most its line's current amount.
    """
    amounts = st.amounts
    log = st.log
    conv = ctx.conv_gross if cp.gross_mode else ctx.conv_net
    if conv == 0:
        values = list(map(amounts.__getitem__, idxs))
        if rnd is not None and (weights is None or bounded):
            # Same basis, whole cents, each weight <= its line: a share never exceeds its
            # weight, and a leftover cent only goes to a share with a fraction, which is
            # then below a whole-cent line. No water filling is needed.
            ws = values if weights is None else weights
            total = sum(ws, _ZERO)
            if total <= 0:
                return
            if amount > total:
                amount = total.quantize(CENT, ROUND_DOWN)
            if len(ws) == 1:
                if amount:
                    amounts[idxs[0]] = values[0] - amount
                    log.append((cp, idxs[0], amount))
                return
            # _largest_remainder, inlined to write the parts straight to the lines.
            cents = amount * _HUNDRED
            floors: list[Decimal] = []
            remainders: list[Decimal] = []
            left = cents
            for w in ws:
                q, r = divmod(cents * w, total)
                floors.append(q)
                remainders.append(r)
                left -= q
            if left:
                order = sorted(range(len(ws)), key=remainders.__getitem__, reverse=True)
                for k in order[: int(left)]:
                    floors[k] += _ONE
            for i, cur, q in zip(idxs, values, floors, strict=True):
                if q:
                    d = q * CENT
                    amounts[i] = cur - d
                    log.append((cp, i, d))
            return
        caps = values
    else:
        current = list(map(amounts.__getitem__, idxs))
        factors = list(map(ctx.factors.__getitem__, idxs))
        # To the promotion's basis: x (1 + r) when it is gross (basket net), / when net.
        values = list(map(mul if conv == 1 else truediv, current, factors))
        # Whole-cent parts must fit under the converted amount: floor the caps to the cent.
        caps = values if rnd is None else [v.quantize(CENT, ROUND_DOWN) for v in values]
        parts = _fill(amount, values if weights is None else weights, caps, rnd is None)
        ds = map(truediv if conv == 1 else mul, parts, factors)
        if rnd is not None:
            ds = [d.quantize(CENT, rnd) for d in ds]
        ds = list(map(min, ds, current))  # a rounded-up part may not pass the line
        _consume(map(amounts.__setitem__, idxs, map(sub, current, ds)))
        log.extend(compress(zip(repeat(cp), idxs, ds), ds))
        return
    parts = _fill(amount, values if weights is None else weights, caps, rnd is None)
    _consume(map(amounts.__setitem__, idxs, map(sub, values, parts)))
    log.extend(compress(zip(repeat(cp), idxs, parts), parts))


def _step_percent(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    assert cp.factor is not None
    _percent_lines(cp, st, ctx, ctx.elig[cp], cp.factor, rnd)


def _step_spread(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    amount = cp.amount
    assert amount is not None
    idxs = ctx.elig[cp]
    if not cp.even:
        _spread_lines(cp, st, ctx, idxs, amount, None, rnd)
        return
    if rnd is not None and not (ctx.conv_gross if cp.gross_mode else ctx.conv_net):
        # Even, same basis, whole cents: equal remainders, so the leftover cents go to the
        # first lines; when every share fits its line that is the whole computation.
        amounts = st.amounts
        values = [amounts[i] for i in idxs]
        q, r = divmod(amount * _HUNDRED, len(idxs))
        low = q * CENT
        high = low + CENT
        if (high if r else low) <= min(values):
            log = st.log
            r = int(r)
            for k, (i, cur) in enumerate(zip(idxs, values, strict=True)):
                d = high if k < r else low
                if d:
                    amounts[i] = cur - d
                    log.append((cp, i, d))
            return
    _spread_lines(cp, st, ctx, idxs, amount, [_ONE] * len(idxs), rnd)


def _step_per_line(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    amount = cp.amount
    assert amount is not None
    amounts = st.amounts
    conv = ctx.conv_gross if cp.gross_mode else ctx.conv_net
    factors = ctx.factors
    for i in ctx.elig[cp]:
        cur = amounts[i]
        if cur <= 0:
            continue
        d = amount
        if conv:
            d = _to_basket(amount, factors[i], conv)
            if rnd is not None:
                d = d.quantize(CENT, rnd)
        if d > cur:
            d = cur
        if d > 0:
            amounts[i] = cur - d
            st.log.append((cp, i, d))


def _step_fixed(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    price = cp.price
    assert price is not None
    amounts = st.amounts
    conv = ctx.conv_gross if cp.gross_mode else ctx.conv_net
    factors = ctx.factors
    qty = ctx.qty
    unit = cp.unit or ctx.unit_all
    for i in ctx.elig[cp]:
        cur = amounts[i]
        q = qty[i]
        # What the line's units cost at the fixed price, in the basket's basis.
        at_price = _to_basket(price * q, factors[i], conv) if conv else price * q
        if unit:
            d = (cur - at_price) / q
            if d <= 0:
                continue
            if rnd is not None:
                d = d.quantize(CENT, rnd)
            d *= q
        else:
            d = cur - at_price
            if d <= 0:
                continue
            if rnd is not None:
                d = d.quantize(CENT, rnd)
        if d > cur:
            d = cur
        if d > 0:
            amounts[i] = cur - d
            st.log.append((cp, i, d))


def _occurrences(units: int, size: int, cap: int | None) -> int:
    occ = units // size
    return occ if cap is None or occ < cap else cap


def _take(idxs: Sequence[int], prices: list[Decimal], qty: list[int], need: int, cheapest: bool):
    """Take ``need`` units, cheapest (or dearest) first, ties to the earlier line.

    Returns (line index, units taken, unit price), in basket line order."""
    if cheapest:
        order = sorted(range(len(idxs)), key=prices.__getitem__)  # stable
    else:
        order = sorted(range(len(idxs)), key=prices.__getitem__, reverse=True)  # stable too
    taken: list[tuple[int, int, Decimal]] = []
    for k in order:
        i = idxs[k]
        n = qty[i] if qty[i] < need else need
        taken.append((i, n, prices[k]))
        need -= n
        if not need:
            break
    taken.sort()
    return taken


def _step_bxgy(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    idxs = ctx.elig[cp]
    qty = ctx.qty
    amounts = st.amounts
    units = sum([qty[i] for i in idxs])
    free = _occurrences(units, cp.buy + cp.get, cp.max_occ) * cp.get
    if not free:
        return
    prices = [amounts[i] / qty[i] for i in idxs]
    factor = cp.factor
    assert factor is not None
    unit = cp.unit or ctx.unit_all
    for i, n, _ in _take(idxs, prices, qty, free, cp.cheapest):
        cur = amounts[i]
        if unit:
            d = cur * factor / qty[i]
            if rnd is not None:
                d = d.quantize(CENT, rnd)
            d *= n
        else:
            d = cur * n * factor / qty[i]
            if rnd is not None:
                d = d.quantize(CENT, rnd)
        if d > cur:
            d = cur
        if d > 0:
            amounts[i] = cur - d
            st.log.append((cp, i, d))


def _step_bundle(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    idxs = ctx.elig[cp]
    qty = ctx.qty
    amounts = st.amounts
    units = sum([qty[i] for i in idxs])
    occ = _occurrences(units, cp.quantity, cp.max_occ)
    if not occ:
        return
    conv = ctx.conv_gross if cp.gross_mode else ctx.conv_net
    if conv:
        factors = ctx.factors
        prices = [_to_promo(amounts[i] / qty[i], factors[i], conv) for i in idxs]
    else:
        prices = [amounts[i] / qty[i] for i in idxs]
    taken = _take(idxs, prices, qty, occ * cp.quantity, cheapest=False)
    # Each line's taken value, cur x n / q, in the promotion's basis.
    values = [amounts[i] if n == qty[i] else amounts[i] * n / qty[i] for i, n, _ in taken]
    if conv:
        values = [
            _to_promo(v, ctx.factors[i], conv) for v, (i, _, _) in zip(values, taken, strict=True)
        ]
    price = cp.price
    assert price is not None
    discount = sum(values, _ZERO) - price * occ
    if discount <= 0:
        return
    if rnd is not None:
        discount = discount.quantize(CENT, rnd)
    # The taken value of a line never exceeds the line: bounded weights.
    _spread_lines(cp, st, ctx, [i for i, _, _ in taken], discount, values, rnd, bounded=True)


def _step_tiered(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    idxs = ctx.elig[cp]
    if cp.by_quantity:
        qty = ctx.qty
        measure = sum([qty[i] for i in idxs])  # an int compares with Decimal thresholds
    else:
        conv = ctx.conv_gross if cp.gross_mode else ctx.conv_net
        amounts = st.amounts
        if conv:
            factors = ctx.factors
            measure = sum([_to_promo(amounts[i], factors[i], conv) for i in idxs], _ZERO)
        else:
            measure = sum(map(amounts.__getitem__, idxs), _ZERO)
    for tier in cp.tiers:  # highest threshold first
        if tier.threshold <= measure:
            if tier.factor is not None:
                _percent_lines(cp, st, ctx, idxs, tier.factor, rnd)
            else:
                assert tier.amount is not None
                _spread_lines(cp, st, ctx, idxs, tier.amount, None, rnd)
            return


def _ship_discount(cp: _Promo, st: _State, d: Decimal, rnd: str | None) -> None:
    if rnd is not None:
        d = d.quantize(CENT, rnd)
    ship = st.ship
    if d > ship:
        d = ship
    if d > 0:
        st.ship = ship - d
        st.log.append((cp, -1, d))


def _ship_percent(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    assert cp.factor is not None
    _ship_discount(cp, st, st.ship * cp.factor, rnd)


def _ship_amount(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    assert cp.amount is not None
    conv = ctx.conv_gross if cp.gross_mode else ctx.conv_net
    _ship_discount(cp, st, _to_basket(cp.amount, ctx.ship_factor, conv), rnd)


def _step_points(cp: _Promo, st: _State, ctx: _Ctx, rnd: str | None) -> None:
    st.points.append(cp)


def _apply_all(promos: list[_Promo], st: _State, ctx: _Ctx) -> None:
    st.ran.extend(promos)
    if ctx.round_once:
        for cp in promos:
            cp.step(cp, st, ctx, None)
    elif ctx.rnd_override is not None:
        for cp in promos:
            cp.step(cp, st, ctx, ctx.rnd_override)
    else:
        for cp in promos:
            cp.step(cp, st, ctx, cp.rnd)


class _ClassPlan:
    """One class's applicable promotions, sorted, split by stacking (rule 3)."""

    __slots__ = ("exclusive", "members", "stack_key", "stackable")

    def __init__(self, members: list[_Promo]) -> None:
        self.members = members
        self.exclusive = [cp for cp in members if cp.stacking == "exclusive_class"]
        self.stackable = [cp for cp in members if cp.stacking != "exclusive_class"]
        # A stacked set ranks by its lowest member in ties.
        self.stack_key = min((cp.key for cp in self.stackable), default=_NO_KEY)


class _Plan:
    """How to run a set of applicable promotions: the classes in order, and aside the
    exclusive_global ones, each to be priced alone."""

    __slots__ = ("classes", "exclusive_global")

    def __init__(self, applicable: list[_Promo], reverse: bool) -> None:
        ordered = sorted(applicable, key=_reverse_key if reverse else _order_key)
        groups: tuple[list[_Promo], ...] = ([], [], [])
        self.exclusive_global: list[_Promo] = []
        for cp in ordered:
            if cp.stacking == "exclusive_global":
                self.exclusive_global.append(cp)
            else:
                groups[cp.cls].append(cp)
        self.classes = [_ClassPlan(group) for group in groups if group]


def _run_class(plan: _ClassPlan, st: _State, ctx: _Ctx) -> _State:
    if not plan.exclusive:
        _apply_all(plan.members, st, ctx)
        return st
    candidates: list[tuple[list[_Promo], tuple[Any, ...]]] = [(plan.stackable, plan.stack_key)]
    candidates.extend(([cp], cp.key) for cp in plan.exclusive)
    best = st
    best_rank: tuple[Any, ...] = ()
    start = len(st.log)
    for members, key in candidates:
        trial = st.copy()
        _apply_all(members, trial, ctx)
        gain = sum([d for _, _, d in trial.log[start:]], _ZERO)
        rank = (-gain, key)
        if not best_rank or rank < best_rank:
            best, best_rank = trial, rank
    return best


def _run(classes: list[_ClassPlan], ctx: _Ctx) -> _State:
    """Apply the classes' promotions in order, each class from the state the last left."""
    st = _State(ctx.list_amounts[:], ctx.ship, [], [], [])
    for plan in classes:
        st = _run_class(plan, st, ctx)
    return st


# ---------------------------------------------------------------------------- settlement


class _Settled:
    """A priced outcome: final amounts, taxes, total, points, and where the discounts are."""

    __slots__ = (
        "amounts",
        "applied",
        "line_total",
        "log",
        "points",
        "ship",
        "ship_tax",
        "tax_total",
        "taxes",
        "total",
    )


def _round_running(
    entries: list[tuple[_Promo, Decimal]], rnd: str | None
) -> list[tuple[_Promo, Decimal]]:
    """round-once-at-end: round the running total once, discounts = its differences."""
    if rnd is None:
        rnd = entries[0][0].rnd
    out: list[tuple[_Promo, Decimal]] = []
    running = _ZERO
    before = _ZERO_CENTS
    for cp, d in entries:
        running += d
        after = running.quantize(CENT, rnd)
        if after != before:
            out.append((cp, after - before))
        before = after
    return out


def _settle(st: _State, ctx: _Ctx) -> _Settled:
    out = _Settled()
    list_amounts = ctx.list_amounts
    if ctx.round_once:
        per_line: list[list[tuple[_Promo, Decimal]]] = [[] for _ in range(ctx.n)]
        ship_entries: list[tuple[_Promo, Decimal]] = []
        for cp, i, d in st.log:
            (per_line[i] if i >= 0 else ship_entries).append((cp, d))
        rnd = ctx.rnd_override
        per_line = [_round_running(e, rnd) if e else e for e in per_line]
        amounts = [
            a - sum([d for _, d in e], _ZERO) for a, e in zip(list_amounts, per_line, strict=True)
        ]
        if ship_entries:
            ship_entries = _round_running(ship_entries, rnd)
        ship = ctx.ship - sum([d for _, d in ship_entries], _ZERO)
        # The rounded discounts, as log entries again (line -1: shipping).
        log = [(cp, i, d) for i, e in enumerate(per_line) for cp, d in e]
        log.extend((cp, -1, d) for cp, d in ship_entries)
    else:
        amounts = st.amounts
        ship = st.ship
        log = st.log
    after_tax = ctx.dialect.discount_after_tax
    bases = list_amounts if after_tax else amounts
    gross = ctx.gross
    # Gross: amount - amount / (1 + r); net: amount x r (both 0.00 when r = 0).
    if gross:
        taxes = [
            (b - b / f).quantize(CENT, ROUND_HALF_EVEN)
            for b, f in zip(bases, ctx.factors, strict=True)
        ]
    else:
        taxes = [
            (b * r).quantize(CENT, ROUND_HALF_EVEN) for b, r in zip(bases, ctx.rates, strict=True)
        ]
    ship_tax = _ZERO_CENTS
    if ctx.ship_rate:
        base = ctx.ship if after_tax else ship
        tax = base - base / ctx.ship_factor if gross else base * ctx.ship_rate
        ship_tax = tax.quantize(CENT, ROUND_HALF_EVEN)
    line_total = sum(amounts, _ZERO)
    tax_total = sum(taxes, _ZERO) + ship_tax
    total = line_total + ship
    if not gross:
        total += tax_total
    gave = set(map(_first, log))
    points = _ZERO
    if ctx.member:
        points = Decimal(int(total))
        if st.points:
            # Multipliers never stack: the highest one, ties to the lowest key.
            best = min(st.points, key=lambda cp: (-cp.multiplier, cp.key))
            base_units = int(sum([amounts[i] for i in ctx.elig[best]], _ZERO))
            bonus = (best.multiplier - _ONE) * base_units
            if bonus > 0:
                points += bonus
                gave.add(best)
    out.amounts = amounts
    out.log = log
    out.ship = ship
    out.ship_tax = ship_tax
    out.taxes = taxes
    out.total = total
    out.points = points
    out.line_total = line_total
    out.tax_total = tax_total
    ran = st.ran
    out.applied = list(compress(map(_label, ran), map(gave.__contains__, ran)))
    return out


_label = attrgetter("label")


# ------------------------------------------------------------------------------- receipt


_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
# The slots every pydantic v2 BaseModel instance carries. Setting them directly is what
# ``model_construct`` does, minus its per-field alias/default loop: the receipt models have
# no aliases, private attributes, extras or post-init hooks, and every field is given.
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


def _trusted(cls: type[Any], values: dict[str, Any]) -> Any:
    """What ``cls.model_construct(**values)`` builds, several times faster."""
    obj = _new(cls)
    _set_dict(obj, values)
    _set_fields_set(obj, set(values))
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


def _trusted_many(cls: type[Any], values: list[dict[str, Any]], fields: frozenset[str]) -> list:
    """``_trusted`` over a list, as map() pipelines (one receipt has dozens of these)."""
    n = len(values)
    objs = list(map(_new, repeat(cls, n)))
    _consume(map(_set_dict, objs, values))
    _consume(map(_set_fields_set, objs, map(set, repeat(fields, n))))
    _consume(map(_set_extra, objs, repeat(None, n)))
    _consume(map(_set_private, objs, repeat(None, n)))
    return objs


_DISCOUNT_FIELDS = frozenset(("promo", "version", "amount"))
_LINE_FIELDS = frozenset(
    ("sku", "quantity", "unit_price", "list_amount", "discounts", "amount", "tax")
)


def _receipt(s: _Settled, ctx: _Ctx, basket: Basket) -> Receipt:
    log = s.log
    # One list per line, and one more at index -1 for the shipping (its log index is -1).
    per_line: list[list[AppliedDiscount]] = [[] for _ in range(ctx.n + 1)]
    new, cls = _new, AppliedDiscount
    for cp, i, d in log:
        # _trusted inlined: one of these per discount, the bulk of a receipt.
        obj = new(cls)
        _set_dict(obj, {"promo": cp.id, "version": cp.version, "amount": d})
        _set_fields_set(obj, {"promo", "version", "amount"})
        _set_extra(obj, None)
        _set_private(obj, None)
        per_line[i].append(obj)
    ship_discounts = per_line.pop()
    values = [
        {
            "sku": sku,
            "quantity": q,
            "unit_price": unit_price,
            "list_amount": list_amount,
            "discounts": discounts,
            "amount": amount,
            "tax": tax,
        }
        for sku, q, unit_price, list_amount, discounts, amount, tax in zip(
            ctx.skus,
            ctx.qty,
            ctx.prices,
            ctx.list_amounts,
            per_line,
            s.amounts,
            s.taxes,
            strict=True,
        )
    ]
    receipt_lines = _trusted_many(ReceiptLine, values, _LINE_FIELDS)
    subtotal = sum(ctx.list_amounts, _ZERO)
    # Every discount is a whole step off a line or the shipping, so this is their sum.
    discount_total = subtotal - s.line_total + ctx.ship - s.ship
    values = {
        "channel": ctx.channel,
        "store": ctx.store_id,
        "tax_mode": ctx.tax_mode,
        "lines": receipt_lines,
        "shipping": s.ship,
        "shipping_discounts": ship_discounts,
        "shipping_tax": s.ship_tax,
        "subtotal": subtotal,
        "discount_total": discount_total,
        "tax_total": s.tax_total,
        "total": s.total,
        "points": s.points,
        "applied": s.applied,
        "dialects": list(ctx.dialect.names),
    }
    return _trusted(Receipt, values)


# ---------------------------------------------------------------------------- public API


def is_applicable(
    promo: Promotion,
    basket: Basket,
    *,
    channel: str,
    at: dt.datetime,
    store: StoreContext | None = None,
    dialect: Dialect | None = None,
) -> bool:
    """Whether ``promo`` applies to ``basket`` (scope, window, conditions: rule 1)."""
    with localcontext(_ARITH):
        ctx = _Ctx(basket, channel, at, store, dialect or REFERENCE)
        cp = _compile(promo)
        scoped = [cp] if _in_scope(cp, channel, ctx.store_id, ctx.region) else []
        return bool(_applicable(_Candidates(scoped, ctx), ctx))


_order_key = attrgetter("order")
_reverse_key = attrgetter("reverse_order")


def price_basket(
    basket: Basket,
    promotions: Iterable[Promotion],
    *,
    channel: str,
    at: dt.datetime,
    store: StoreContext | None = None,
    dialect: Dialect | None = None,
) -> Receipt:
    """Price ``basket`` under ``promotions`` at instant ``at`` (the module's rules 1-10)."""
    dialect = dialect or REFERENCE
    with localcontext(_ARITH):
        ctx = _Ctx(basket, channel, at, store, dialect)
        candidates = _promo_set(promotions).for_endpoint(ctx)
        plan = candidates.plan(_applicable(candidates, ctx), dialect.reverse_priority)
        settled = _settle(_run(plan.classes, ctx), ctx)
        # rule 3: each exclusive_global alone against the normal result; lowest total
        # wins, ties to the normal result (0 < 1), then to the lowest key.
        best_rank: tuple[Any, ...] = (settled.total, 0, ())
        for cp in plan.exclusive_global:
            alone = _settle(_run([_ClassPlan([cp])], ctx), ctx)
            rank = (alone.total, 1, cp.key)
            if rank < best_rank:
                settled, best_rank = alone, rank
        return _receipt(settled, ctx, basket)
