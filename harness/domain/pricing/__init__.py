"""The reference pricing engine: the golden semantics of a canonical promotion (Decimal).

``quote_basket(basket, promotions, channel=..., at=..., store=..., dialect=...)`` prices a
basket under a set of promotions and returns a :class:`~harness.domain.pricing.quote.Quote`
(light records); ``price_basket`` (same arguments) returns the same figures as the pydantic
:class:`~harness.domain.basket.Receipt` that HTTP bodies, files and certification use.
Every channel simulator prices through these (with its dialect), and the price
consistency metric compares channels against them, so the rules below are the contract.
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
its in-scope candidates, its selections indexed by category and SKU (and, as catalogue
items show up, by a line's SKU, category and non-discountable flag: the selections that take
such a line, a property of the promotions), and its application plan (cached by the
identities of its promotions). A call then selects every candidate's lines in one pass over
the basket, rounds with ``Decimal.quantize(CENT, mode)`` under one fixed context (the
cheapest rounding in CPython's decimal; made current with ``setcontext``, not copied per
call). The discount log is kept in the quote's own form, ``((id, version), line, amount)``,
so the quote takes it as it is; ``price_basket`` then builds the receipt's models without
re-validation (what ``model_construct`` does, minus its per-field loop), about a third of
its cost. Nothing about a basket is cached between calls.

Integer cents inside the engine were built and measured (issue 16) and not kept: exact
against the oracle, the steps cost 419k -> 337k instructions per bench call, but turning
the prices and rates into cents and ~60 figures back into the Quote's Decimals cost more
than that (747k -> 755k in all; 708k, -5 %, with rounding inlined and the log written as
Decimal). A Decimal operation is ~0.5-2k instructions, an int one ~0.2-1k, and the
interpreter's share of each step is as large. The engine exact in cents needs a Decimal
twin anyway (round-once-at-end keeps 34-digit amounts; a rate or percent with more than
six decimals). What did pay: compiling these modules unchanged with mypyc (the core
type-checks clean for it) gave 621k instructions and 0.65x the bench's wall time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import getcontext, localcontext, setcontext
from typing import Any

from harness.domain.basket import Basket, Receipt
from harness.domain.dialects import REFERENCE, Dialect
from harness.domain.pricing.common import _ARITH, _zone
from harness.domain.pricing.common import CENT as CENT
from harness.domain.pricing.compiled import _compile
from harness.domain.pricing.context import _applicable, _Candidates, _Ctx, _in_scope, _promo_set
from harness.domain.pricing.plan import _ClassPlan, _run
from harness.domain.pricing.quote import Discount, Quote, QuoteLine
from harness.domain.pricing.settle import _quote, _settle
from harness.domain.pricing.spread import spread
from harness.domain.promotion import Promotion

__all__ = [
    "Discount",
    "Quote",
    "QuoteLine",
    "StoreContext",
    "is_applicable",
    "price_basket",
    "quote_basket",
    "spread",
]


@dataclass(frozen=True, slots=True)
class StoreContext:
    """The store (if any) pricing the basket: scope by store id / region, window zone."""

    id: str | None = None
    region: str | None = None
    timezone: str = "UTC"  # IANA

    def __post_init__(self) -> None:
        _zone(self.timezone)


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


def quote_basket(
    basket: Basket,
    promotions: Iterable[Promotion],
    *,
    channel: str,
    at: dt.datetime,
    store: StoreContext | None = None,
    dialect: Dialect | None = None,
) -> Quote:
    """Price ``basket`` under ``promotions`` at instant ``at`` (the module's rules 1-10),
    as light records: what the pure core computes, with no pydantic model built."""
    dialect = dialect or REFERENCE
    # The fixed context itself, made current and then the caller's put back: what
    # ``localcontext(_ARITH)`` guarantees, without its copy of the context per call (a
    # tenth of a bare call). Operations only raise status flags on it, which decide
    # nothing here (only its precision, rounding and traps do, and nothing changes them).
    caller = getcontext()
    setcontext(_ARITH)
    try:
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
        return _quote(settled, ctx)
    finally:
        setcontext(caller)


def price_basket(
    basket: Basket,
    promotions: Iterable[Promotion],
    *,
    channel: str,
    at: dt.datetime,
    store: StoreContext | None = None,
    dialect: Dialect | None = None,
) -> Receipt:
    """:func:`quote_basket` as the pydantic ``Receipt`` the edges serve and store."""
    quote = quote_basket(basket, promotions, channel=channel, at=at, store=store, dialect=dialect)
    return quote.receipt()
