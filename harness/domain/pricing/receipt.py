"""Building the pydantic Receipt from a quote, without re-validation (the edge model)."""

from __future__ import annotations

from itertools import repeat
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from harness.domain.basket import AppliedDiscount, Receipt, ReceiptLine
from harness.domain.pricing.common import _consume

if TYPE_CHECKING:
    from harness.domain.pricing.quote import Quote


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


_DISCOUNT_FIELDS = frozenset(("promo", "version", "amount"))
_LINE_FIELDS = frozenset(
    ("sku", "quantity", "unit_price", "list_amount", "discounts", "amount", "tax")
)


def _receipt(q: Quote) -> Receipt:
    # One list per line, and one more at index -1 for the shipping (its line is -1).
    per_line: list[list[AppliedDiscount]] = [[] for _ in range(len(q.lines) + 1)]
    if q.discounts:
        values = [{"promo": p, "version": v, "amount": a} for (p, v), _, a in q.discounts]
        objs = _trusted_many(AppliedDiscount, values, _DISCOUNT_FIELDS)
        for d, obj in zip(q.discounts, objs, strict=True):
            per_line[d[1]].append(obj)
    ship_discounts = per_line.pop()
    values = [
        {
            "sku": sku,
            "quantity": qty,
            "unit_price": unit_price,
            "list_amount": list_amount,
            "discounts": discounts,
            "amount": amount,
            "tax": tax,
        }
        for (sku, qty, unit_price, list_amount, amount, tax), discounts in zip(
            q.lines, per_line, strict=True
        )
    ]
    fields = {
        "channel": q.channel,
        "store": q.store,
        "tax_mode": q.tax_mode,
        "lines": _trusted_many(ReceiptLine, values, _LINE_FIELDS),
        "shipping": q.shipping,
        "shipping_discounts": ship_discounts,
        "shipping_tax": q.shipping_tax,
        "subtotal": q.subtotal,
        "discount_total": q.discount_total,
        "tax_total": q.tax_total,
        "total": q.total,
        "points": q.points,
        "applied": list(q.applied),
        "dialects": list(q.dialects),
    }
    return _trusted(Receipt, fields)
