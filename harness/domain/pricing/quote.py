"""What the pure pricing core returns: a quote, in light records (NamedTuples).

A :class:`Quote` carries every figure of a receipt; the pydantic ``Receipt`` is built from
it only where a receipt crosses an edge (HTTP bodies, files, certification), by
:meth:`Quote.receipt`. Building the ~50 models of a 10-line receipt cost about as much as
applying 20 promotions, and the simulated shoppers only need the total and who gave what.
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from harness.domain.basket import Receipt

# Money one promotion took off one line (``line`` = its basket index) or the shipping
# (``line`` = -1), in the basket's tax_mode: ``((promo, version), line, amount)``. A plain
# tuple, not a NamedTuple: one costs three times a tuple to make, and a quote has dozens
# (the engine's discount log holds exactly these, so the quote takes it as it is).
Discount = tuple[tuple[str, int], int, Decimal]


class QuoteLine(NamedTuple):
    sku: str
    quantity: int
    unit_price: Decimal
    list_amount: Decimal  # quantity x unit_price
    amount: Decimal  # list_amount minus the line's discounts
    tax: Decimal


class Quote(NamedTuple):
    """A priced basket: the figures of ``Receipt`` (same names, same meaning), with the
    discounts in one tuple (each names its line; a line's in application order)."""

    channel: str
    store: str | None
    tax_mode: str
    lines: tuple[QuoteLine, ...]
    discounts: tuple[Discount, ...]
    shipping: Decimal
    shipping_tax: Decimal
    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    total: Decimal
    points: Decimal
    applied: tuple[str, ...]
    dialects: tuple[str, ...]

    def given(self) -> dict[tuple[str, int], Decimal]:
        """Money given per promotion, ``(id, version)`` -> amount, keyed in receipt order
        (the lines in basket order, then the shipping; a promotion at its first discount)."""
        shipping = len(self.lines)  # line -1 sorts after every line
        out: dict[tuple[str, int], Decimal] = {}
        for key, _, amount in sorted(self.discounts, key=lambda d: shipping if d[1] < 0 else d[1]):
            got = out.get(key)
            out[key] = amount if got is None else got + amount
        return out

    def line_discounts(self, line: int) -> list[Discount]:
        """The discounts of one line (-1: the shipping), in application order."""
        return [d for d in self.discounts if d[1] == line]

    def receipt(self) -> Receipt:
        """The pydantic ``Receipt`` of this quote, for the edges."""
        return _receipt(self)


from harness.domain.pricing.receipt import _receipt  # noqa: E402  (it types with Quote)
