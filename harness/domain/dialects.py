"""Named, composable deviations from the reference pricing semantics that real channels show.

A channel rarely prices exactly like the golden engine: a legacy POS taxes the undiscounted
price, a marketplace ignores the retailer's exclusions, a web shop reads the promotion's wall
times as UTC. Each such habit is a *dialect*: one flag on :class:`Dialect`, named in
:data:`DIALECTS` and described (what it plays, which way it moves results) in
:data:`DIALECT_DESCRIPTIONS`. ``pricing.price_basket(..., dialect=...)`` honours the flags,
so a simulated channel quotes what the real one would, and the price-consistency metric can
measure the spread. All flags off (:data:`REFERENCE`) is the reference semantics.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from harness.domain.promotion import RoundingMode

__all__ = [
    "DIALECTS",
    "DIALECT_DESCRIPTIONS",
    "REFERENCE",
    "Dialect",
    "compose",
    "parse_dialects",
]


@dataclass(frozen=True, slots=True)
class Dialect:
    """A set of deviations; every flag off / ``None`` is the reference semantics."""

    discount_after_tax: bool = False
    ignore_exclusions: bool = False
    reverse_priority: bool = False
    rounding_mode: RoundingMode | None = None
    round_once_at_end: bool = False
    unit_level_rounding: bool = False
    window_in_utc: bool = False
    per_unit_distribution: bool = False
    names: tuple[str, ...] = ()

    @property
    def is_reference(self) -> bool:
        return self == REFERENCE


REFERENCE = Dialect()

DIALECTS: dict[str, Dialect] = {
    "discount-after-tax": Dialect(discount_after_tax=True, names=("discount-after-tax",)),
    "ignore-exclusions": Dialect(ignore_exclusions=True, names=("ignore-exclusions",)),
    "reverse-priority": Dialect(reverse_priority=True, names=("reverse-priority",)),
    "half-up-rounding": Dialect(rounding_mode="half_up", names=("half-up-rounding",)),
    "round-once-at-end": Dialect(round_once_at_end=True, names=("round-once-at-end",)),
    "unit-level-rounding": Dialect(unit_level_rounding=True, names=("unit-level-rounding",)),
    "window-in-utc": Dialect(window_in_utc=True, names=("window-in-utc",)),
    "per-unit-distribution": Dialect(per_unit_distribution=True, names=("per-unit-distribution",)),
}

DIALECT_DESCRIPTIONS: dict[str, str] = {
    "discount-after-tax": (
        "Tax is computed on the undiscounted amount, as tills that apply the discount as a "
        "tender after tax do. Net basket (tax added): the shopper pays tax on the discount, "
        "so the total goes UP by about rate x discount. Gross basket: the total is unchanged "
        "but the reported tax is overstated (too high)."
    ),
    "ignore-exclusions": (
        "The channel does not know the retailer's exclusions (SKU, category, "
        "non-discountable flag), as marketplaces fed only the qualifying list do: excluded "
        "lines that the conditions select get discounted, so totals go DOWN (or stay)."
    ),
    "reverse-priority": (
        "Within a class, promotions apply in descending priority, as engines that treat a "
        "higher number as 'more important' do. Results move only when non-commuting "
        "benefits stack: e.g. a percent-off ranked before an amount-off now comes after it "
        "and discounts less, so the shopper pays MORE."
    ),
    "half-up-rounding": (
        "Every discount step rounds half-up instead of the promotion's mode (half-even by "
        "default), as most POS firmware does. Against half-even only exact half-cent cases "
        "move: the discount is a cent LARGER where half-even would round to an even cent "
        "below, so the total goes DOWN by a cent (never up, for a single step). Against a "
        "promotion that rounds down (or up), any fraction of a cent can move, up (or down)."
    ),
    "round-once-at-end": (
        "Discounts are kept at full precision and each line is rounded once at the end, as "
        "engines working in floating or high-precision amounts do. Spread amounts lose their "
        "largest-remainder correction, so the parts no longer add up to the amount: a "
        "receipt drifts by up to a cent per line, in either direction (10.00 over three "
        "equal lines gives 3 x 3.33 = 9.99 off: the total goes UP a cent)."
    ),
    "unit-level-rounding": (
        "Every percent, fixed-price and buy-x-get-y discount is rounded per unit and "
        "multiplied by the quantity, as item-by-item tills do. A multi-unit line moves by "
        "up to quantity/2 cents in either direction; a sub-cent per-unit discount at half a "
        "cent or more becomes a whole cent per unit, so the discount grows and the total "
        "goes DOWN."
    ),
    "window-in-utc": (
        "The validity window's wall times are read as UTC instead of the store's (or the "
        "promotion's) zone, as systems that drop the zone do. East of UTC (Paris) the "
        "promotion starts and ends LATER in local time by the offset; west of UTC "
        "(New York) it starts and ends EARLIER."
    ),
    "per-unit-distribution": (
        "An absolute amount (amount_off proportional or even, a tier amount, an order-class "
        "amount) is spread over the eligible UNITS rather than the lines, by largest "
        "remainder per unit, and each line gets the sum of its units' parts, as "
        "commercetools distributes an absolute cart discount. 15.00 over A 1 x 16.00 and B "
        "2 x 20.00 gives 4.28 / 5.36 / 5.36: A pays 11.72 and B 29.28, where the reference "
        "(per line) gives 11.71 and 29.29. Totals are unchanged; the split between lines "
        "moves by a cent or so, and with it the tax of lines at different rates."
    ),
}

_FLAGS: tuple[str, ...] = tuple(
    f.name for f in fields(Dialect) if f.name not in ("names", "rounding_mode")
)


def compose(*names: str) -> Dialect:
    """The union of the named dialects' flags; an unknown name is a ValueError naming it."""
    unknown = [name for name in names if name not in DIALECTS]
    if unknown:
        known = ", ".join(sorted(DIALECTS))
        raise ValueError(f"unknown dialect {', '.join(map(repr, unknown))}; known: {known}")
    flags = dict.fromkeys(_FLAGS, False)
    rounding_mode: RoundingMode | None = None
    ordered: list[str] = []
    for name in names:
        if name in ordered:
            continue
        ordered.append(name)
        part = DIALECTS[name]
        for flag in _FLAGS:
            flags[flag] = flags[flag] or getattr(part, flag)
        if part.rounding_mode is not None:
            if rounding_mode is not None and rounding_mode != part.rounding_mode:
                raise ValueError(
                    f"dialect {name!r} rounds {part.rounding_mode}, another one already "
                    f"rounds {rounding_mode}"
                )
            rounding_mode = part.rounding_mode
    return Dialect(**flags, rounding_mode=rounding_mode, names=tuple(ordered))


def parse_dialects(text: str) -> Dialect:
    """``"a,b"`` -> ``compose("a", "b")``; an empty (or blank) text is the reference."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    return compose(*names) if names else REFERENCE
