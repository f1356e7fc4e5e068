"""Baskets in, receipts out: the value types around the pricing engine.

A basket is what a shopper brings to a till or a checkout; a receipt is what the pricing
engine (``pricing``) or a channel dialect makes of it. Both are pydantic models so that
basket files and HTTP bodies are validated at the edge, and both are frozen so that a
priced basket can be cached and shared.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]
TaxRate = Annotated[Decimal, Field(ge=0, le=1, description="0.20 for 20 %.")]
CENT = Decimal("0.01")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BasketLine(_Frozen):
    sku: str = Field(min_length=1)
    category: str = Field(default="general", min_length=1)
    quantity: int = Field(ge=1, le=10_000)
    unit_price: Money = Field(description="List price of one unit, in the basket's tax_mode.")
    tax_rate: TaxRate = Decimal("0")
    non_discountable: bool = Field(default=False, description="Bundles, gift cards, deposits.")
    vendor: str | None = None


class Basket(_Frozen):
    lines: list[BasketLine] = Field(min_length=1)
    tax_mode: Literal["gross", "net"] = Field(
        default="gross", description="gross: unit prices include tax (EU); net: tax added (US)."
    )
    shipping: Money = Decimal("0")
    shipping_tax_rate: TaxRate = Decimal("0")
    customer: str | None = None
    loyalty_member: bool = False

    @field_validator("lines")
    @classmethod
    def _unique_skus(cls, lines: list[BasketLine]) -> list[BasketLine]:
        # One line per SKU keeps "which line got what" unambiguous on a receipt.
        skus = [line.sku for line in lines]
        if len(set(skus)) != len(skus):
            raise ValueError("a SKU appears on two lines; merge them into one line")
        return lines


class AppliedDiscount(_Frozen):
    promo: str
    version: int
    amount: Decimal = Field(description="Money off this line, in the basket's tax_mode.")


class ReceiptLine(_Frozen):
    sku: str
    quantity: int
    unit_price: Decimal
    list_amount: Decimal = Field(description="quantity x unit_price")
    discounts: list[AppliedDiscount] = Field(default_factory=list)
    amount: Decimal = Field(description="list_amount minus discounts, in the basket's tax_mode.")
    tax: Decimal

    @property
    def discount(self) -> Decimal:
        return sum((d.amount for d in self.discounts), Decimal("0"))


class Receipt(_Frozen):
    channel: str
    store: str | None
    tax_mode: Literal["gross", "net"]
    lines: list[ReceiptLine]
    shipping: Decimal = Decimal("0")
    shipping_discounts: list[AppliedDiscount] = Field(default_factory=list)
    shipping_tax: Decimal = Decimal("0")
    subtotal: Decimal = Field(description="Sum of list amounts (tax_mode basis).")
    discount_total: Decimal
    tax_total: Decimal
    total: Decimal = Field(description="What the shopper pays, tax included.")
    points: Decimal = Decimal("0")
    applied: list[str] = Field(default_factory=list, description="'id@version' that gave money.")
    dialects: list[str] = Field(default_factory=list)
