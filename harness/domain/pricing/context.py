"""One pricing call's context, and rule 1 (applicability) over a promotion list.

:class:`_Ctx` flattens the basket and the dialect; a :class:`_PromoSet` (cached per
promotion list) keeps per endpoint the in-scope :class:`_Candidates`, whose lines are
selected in one pass and whose windows and conditions are tested together.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from collections.abc import Iterable
from decimal import Decimal
from itertools import compress, repeat
from operator import add, and_, attrgetter, gt, is_, itemgetter, le, mul
from typing import TYPE_CHECKING

from harness.domain.basket import Basket
from harness.domain.dialects import Dialect
from harness.domain.pricing.common import _ONE, _QUANT, _ZERO, _zone
from harness.domain.pricing.compiled import _CACHE_MAX, _compile, _Promo, _Selection
from harness.domain.pricing.plan import _Plan
from harness.domain.promotion import Promotion

if TYPE_CHECKING:
    from harness.domain.pricing import StoreContext


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
        "per_unit",
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
        self.per_unit = dialect.per_unit_distribution
        mode = dialect.rounding_mode
        self.rnd_override = None if mode is None else _QUANT[mode]
        # Fields are read from the models' __dict__, one C call per line rather than six
        # lookups through pydantic's attribute hook.
        fields = vars(basket)
        lines = fields["lines"]
        self.n = len(lines)
        columns = zip(*map(_line_fields, map(_vars, lines)), strict=True)
        skus, cats, nds, qty, prices, rates = columns
        self.keys = list(zip(skus, cats, nds, strict=True))
        self.skus = skus
        self.prices = prices
        self.qty = qty
        self.list_amounts = list(map(mul, prices, qty))
        self.rates = rates
        self.factors = list(map(add, repeat(_ONE), rates))  # no method-wrapper call per line
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


# vars() for the lines: attrgetter is called without building an argument tuple.
_vars = attrgetter("__dict__")
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
        "edges",
        "ends",
        "line_selections",
        "live_masks",
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
        # Every window edge, sorted: between two consecutive edges the same windows are
        # open, so which are is worked out once per stretch (a property of the promotions).
        self.edges = sorted(set(self.starts) | set(self.ends))
        self.live_masks: dict[int, list[bool]] = {}
        self.open_to_all = [not cp.loyalty_only for cp in cps]
        self.plans: dict[bool, _Plan] = {}
        # (sku, category, non_discountable) -> the selections that take such a line: an
        # index of the promotions, filled as the catalogue's items first show up.
        self.line_selections: dict[tuple[str, str, bool], tuple[_Selection, ...]] = {}

    def selections_of(self, key: tuple[str, str, bool]) -> tuple[_Selection, ...]:
        """The selections taking a line with this SKU, category and flag (rule 1)."""
        found = self.line_selections.get(key)
        if found is not None:
            return found
        sku, cat, nd = key
        taken: dict[_Selection, None] = {}  # a line named by SKU and by category: once
        for group in (self.by_cat.get(cat), self.by_sku.get(sku), self.open):
            for sel in group or ():
                if (nd and sel.x_nd) or sku in sel.x_skus or cat in sel.x_cats:
                    continue  # an exclusion always beats an inclusion
                taken[sel] = None
        if len(self.line_selections) >= _CACHE_MAX:
            self.line_selections.clear()
        found = self.line_selections[key] = tuple(taken)
        return found

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
    index = cand.line_selections
    for i, key in enumerate(ctx.keys):
        sels = index.get(key)
        if sels is None:
            sels = cand.selections_of(key)
        for sel in sels:
            found[sel].append(i)
    return found


def _applicable(cand: _Candidates, ctx: _Ctx) -> list[_Promo]:
    """Rule 1 past the scope: window, loyalty, conditions. Records the eligible lines."""
    at = ctx.at
    live: Iterable[bool]
    if len(cand.zone_names) == 1:  # the usual case: every window read in one zone
        local = at.astimezone(_zone(cand.zone_names[0])).replace(tzinfo=None)
        # edges[k - 1] <= local < edges[k]: start <= local iff start <= edges[k - 1], and
        # local < end iff end >= edges[k], as starts and ends are edges themselves.
        k = bisect_right(cand.edges, local)
        mask = cand.live_masks.get(k)
        if mask is None:
            mask = cand.live_masks[k] = list(
                map(and_, map(le, cand.starts, repeat(local)), map(gt, cand.ends, repeat(local)))
            )
        live = mask
    else:
        walls = {z: at.astimezone(_zone(z)).replace(tzinfo=None) for z in cand.zone_names}
        wall = list(map(walls.__getitem__, cand.zones))
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
        lines = found[sel]
        if not lines:
            continue
        # Every line has a unit or more, so one line meets min_quantity 1 (the default).
        if min_qty > 1:
            n = units.get(sel)
            if n is None:
                n = units[sel] = sum(map(qty.__getitem__, lines))
            if n < min_qty:
                continue
        if min_value and ctx.list_value(gross_mode) < min_value:
            continue
        elig[cp] = lines
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
