"""Building the Receipt models from a settled outcome, without re-validation."""

from __future__ import annotations

from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from harness.domain.basket import AppliedDiscount, Basket, Receipt, ReceiptLine
from tests.domain.pricing_oracle.common import _ZERO, _consume

if TYPE_CHECKING:
    from tests.domain.pricing_oracle.context import _Ctx
    from tests.domain.pricing_oracle.settle import _Settled


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
    """``_trusted`` over a list, as map() pipelines (one receipt has dozens of these).

    For frozen models only: they share one fields set, which nothing adds to."""
    n = len(values)
    objs = list(map(_new, repeat(cls, n)))
    _consume(map(_set_dict, objs, values))
    _consume(map(_set_fields_set, objs, repeat(set(fields), n)))
    _consume(map(_set_extra, objs, repeat(None, n)))
    _consume(map(_set_private, objs, repeat(None, n)))
    return objs


_second = itemgetter(1)
_DISCOUNT_FIELDS = frozenset(("promo", "version", "amount"))
_LINE_FIELDS = frozenset(
    ("sku", "quantity", "unit_price", "list_amount", "discounts", "amount", "tax")
)


def _receipt(s: _Settled, ctx: _Ctx, basket: Basket) -> Receipt:
    log = s.log
    # One list per line, and one more at index -1 for the shipping (its log index is -1).
    per_line: list[list[AppliedDiscount]] = [[] for _ in range(ctx.n + 1)]
    if log:
        # _trusted_many inlined: one model per discount, the bulk of a receipt. The models
        # are frozen, so nothing ever adds to their fields set: they share one.
        n = len(log)
        objs = list(map(_new, repeat(AppliedDiscount, n)))
        values = [{"promo": cp.id, "version": cp.version, "amount": d} for cp, _, d in log]
        _consume(map(_set_dict, objs, values))
        _consume(map(_set_fields_set, objs, repeat(set(_DISCOUNT_FIELDS), n)))
        _consume(map(_set_extra, objs, repeat(None, n)))
        _consume(map(_set_private, objs, repeat(None, n)))
        _consume(map(list.append, map(per_line.__getitem__, map(_second, log)), objs))
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
