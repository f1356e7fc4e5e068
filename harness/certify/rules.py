"""The input rules of the contract: what JSON Schema can carry, and a bad case for each rule.

:func:`tighten` adds to the generated component schemas every validation rule the canonical
models enforce that JSON Schema can express (pydantic leaves out the decimal strings'
ranges and places, the cross-field rules and the validity's accepted forms). :data:`RULES`
lists every rule, numbered as in the pricing specification (``docs/pricing-spec.md``, part
V), with ``in_schema`` saying whether the contract's schema carries it, and a function that
breaks a valid delivery (or basket) in exactly that way: the ``contract`` check sends one
case per rule and expects a 4xx naming why.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["RULES", "Rule", "tighten"]

# Decimal strings as the models read them: at most 12 integer digits and 2 decimals.
MONEY = r"^\d{1,12}(\.\d{1,2})?$"
POSITIVE_MONEY = r"^(?!0*(\.0*)?$)\d{1,12}(\.\d{1,2})?$"
PERCENT = r"^(100(\.0+)?|0*[1-9]\d?(\.\d+)?|0*\.\d*[1-9]\d*|0+\.\d*[1-9]\d*)$"  # (0, 100]
SHARE = r"^(100(\.0+)?|\d{1,2}(\.\d+)?)$"  # [0, 100]
MULTIPLIER = r"^(100(\.0+)?|0*[2-9](\.\d+)?|0*[1-9]\d(\.\d+)?|0*1\.\d*[1-9]\d*)$"  # (1, 100]
RATE = r"^(0*(\.\d+)?|0*\.\d+|1(\.0+)?|0+(\.\d+)?)$"  # [0, 1]
# A wall-clock time, or an RFC 3339 date-time with an offset (read in 'timezone').
WALL_OR_RFC3339 = r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)?$"

# (component, property) -> (pattern of the decimal-string form, multipleOf of the number)
_DECIMALS: dict[tuple[str, str], tuple[str, float | None]] = {
    ("Conditions", "min_basket_value"): (MONEY, 0.01),
    ("AmountOff", "amount"): (POSITIVE_MONEY, 0.01),
    ("FixedPrice", "price"): (MONEY, 0.01),
    ("BundlePrice", "price"): (MONEY, 0.01),
    ("Tier", "threshold"): (MONEY, 0.01),
    ("Tier", "amount"): (POSITIVE_MONEY, 0.01),
    ("Tier", "percent"): (PERCENT, None),
    ("PercentOff", "percent"): (PERCENT, None),
    ("BuyXGetY", "percent"): (PERCENT, None),
    ("Funding", "budget_cap"): (MONEY, 0.01),
    ("Funding", "vendor_share_percent"): (SHARE, None),
    ("PointsMultiplier", "multiplier"): (MULTIPLIER, None),
    ("BasketLine", "unit_price"): (MONEY, 0.01),
    ("BasketLine", "tax_rate"): (RATE, None),
    ("Basket", "shipping"): (MONEY, 0.01),
    ("Basket", "shipping_tax_rate"): (RATE, None),
}


def _benefit_types(*types: str) -> dict[str, Any]:
    return {
        "properties": {
            "benefit": {"required": ["type"], "properties": {"type": {"enum": list(types)}}}
        }
    }


def tighten(schemas: dict[str, Any]) -> dict[str, Any]:
    """A copy of the generated component schemas with the rules JSON Schema can express."""
    out = copy.deepcopy(schemas)
    for (name, prop), (pattern, multiple) in _DECIMALS.items():
        for branch in out[name]["properties"][prop]["anyOf"]:
            if branch.get("type") == "string":
                branch["pattern"] = pattern
            elif branch.get("type") == "number" and multiple is not None:
                branch["multipleOf"] = multiple
    out["Tier"]["oneOf"] = [
        {"required": [key], "properties": {key: {"not": {"type": "null"}}}}
        for key in ("percent", "amount")
    ]
    out["Scope"]["properties"]["channels"]["uniqueItems"] = True
    for key in ("start", "end"):
        out["ValidityWindow"]["properties"][key]["pattern"] = WALL_OR_RFC3339
    out["Funding"]["if"] = {
        "required": ["source"],
        "properties": {"source": {"enum": ["vendor", "shared"]}},
    }
    out["Funding"]["then"] = {
        "required": ["vendor"],
        "properties": {"vendor": {"type": "string", "minLength": 1}},
    }
    out["Promotion"]["allOf"] = [
        {
            "if": {"required": ["class"], "properties": {"class": {"const": "shipping"}}},
            "then": _benefit_types("percent_off", "amount_off"),
        },
        {
            "if": {"required": ["class"], "properties": {"class": {"const": "order"}}},
            "then": _benefit_types(
                "percent_off", "amount_off", "fixed_price", "tiered", "points_multiplier"
            ),
        },
        {
            "if": {
                "required": ["benefit"],
                "properties": {
                    "benefit": {
                        "required": ["type"],
                        "properties": {"type": {"const": "points_multiplier"}},
                    }
                },
            },
            "then": {
                "properties": {
                    "scope": {"properties": {"channels": {"contains": {"const": "loyalty"}}}}
                }
            },
        },
    ]
    return out


Target = Literal["promotion", "basket", "at"]


@dataclass(frozen=True)
class Rule:
    """One input rule: ``V<n>`` in the specification; ``breaks`` turns a valid promotion
    payload (or basket, or ``at`` text) into one that violates only this rule."""

    id: str
    text: str
    in_schema: bool
    target: Target
    breaks: Callable[[Any], Any]


def _set(path: str, value: Any) -> Callable[[Any], Any]:
    def breaks(doc: Any) -> Any:
        doc = copy.deepcopy(doc)
        *parents, leaf = path.split(".")
        node = doc
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(leaf)] = value
        else:
            node[leaf] = value
        return doc

    return breaks


def _merge(**fields: Any) -> Callable[[Any], Any]:
    def breaks(doc: Any) -> Any:
        return {**copy.deepcopy(doc), **copy.deepcopy(fields)}

    return breaks


def _tiers(*tiers: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tiered", "tiers": list(tiers)}


_WINDOW = {"start": "2026-06-01T00:00:00", "timezone": "UTC"}

RULES: list[Rule] = [
    Rule(
        "V1",
        "id: 1-64 of A-Z a-z 0-9 . _ : -, starting alphanumeric",
        True,
        "promotion",
        _set("id", "bad id!"),
    ),
    Rule("V2", "name: 1-200 characters", True, "promotion", _set("name", "")),
    Rule("V3", "version: an integer from 1 to 4e18", True, "promotion", _set("version", 0)),
    Rule(
        "V4", "unknown fields are errors, at every level", True, "promotion", _merge(colour="red")
    ),
    Rule(
        "V5",
        "money: at most 2 decimals (string form)",
        True,
        "promotion",
        _set("benefit", {"type": "amount_off", "amount": "5.001"}),
    ),
    Rule(
        "V6",
        "money: at most 2 decimals (number form: a multiple of 0.01)",
        True,
        "promotion",
        _set("benefit", {"type": "amount_off", "amount": 5.001}),
    ),
    Rule(
        "V7",
        "money: never negative",
        True,
        "promotion",
        _set("conditions", {"min_basket_value": "-1.00"}),
    ),
    Rule(
        "V8",
        "amount_off amount and tier amounts: above zero",
        True,
        "promotion",
        _set("benefit", {"type": "amount_off", "amount": "0.00"}),
    ),
    Rule(
        "V9",
        "money: at most 12 integer digits",
        True,
        "promotion",
        _set("benefit", {"type": "fixed_price", "price": "1234567890123.00"}),
    ),
    Rule(
        "V10",
        "percent: above 0, at most 100",
        True,
        "promotion",
        _set("benefit", {"type": "percent_off", "percent": "150"}),
    ),
    Rule(
        "V11",
        "the benefit type is one of the seven",
        True,
        "promotion",
        _set("benefit", {"type": "cashback", "amount": "1.00"}),
    ),
    Rule(
        "V12",
        "tiered: at least one tier",
        True,
        "promotion",
        _set("benefit", {"type": "tiered", "tiers": []}),
    ),
    Rule(
        "V13",
        "a tier gives exactly one of percent or amount",
        True,
        "promotion",
        _set("benefit", _tiers({"threshold": "10", "percent": "5", "amount": "1.00"})),
    ),
    Rule(
        "V14",
        "tier thresholds strictly ascending",
        False,
        "promotion",
        _set(
            "benefit",
            _tiers({"threshold": "50", "percent": "10"}, {"threshold": "20", "percent": "5"}),
        ),
    ),
    Rule(
        "V15",
        "bundle_price quantity: at least 2",
        True,
        "promotion",
        _set("benefit", {"type": "bundle_price", "quantity": 1, "price": "5.00"}),
    ),
    Rule(
        "V16",
        "buy_x_get_y buy and get: integers of at least 1",
        True,
        "promotion",
        _set("benefit", {"type": "buy_x_get_y", "buy": 0, "get": 1}),
    ),
    Rule(
        "V17",
        "points_multiplier multiplier: above 1, at most 100",
        True,
        "promotion",
        _set("benefit", {"type": "points_multiplier", "multiplier": "1"}),
    ),
    Rule(
        "V18",
        "class shipping takes percent_off or amount_off only",
        True,
        "promotion",
        _merge(**{"class": "shipping", "benefit": {"type": "fixed_price", "price": "1.00"}}),
    ),
    Rule(
        "V19",
        "class order takes no buy_x_get_y or bundle_price",
        True,
        "promotion",
        _merge(**{"class": "order", "benefit": {"type": "buy_x_get_y", "buy": 1, "get": 1}}),
    ),
    Rule(
        "V20",
        "a points_multiplier needs 'loyalty' in scope.channels",
        True,
        "promotion",
        _merge(
            scope={"channels": ["pos"]}, benefit={"type": "points_multiplier", "multiplier": "2"}
        ),
    ),
    Rule(
        "V21",
        "scope.channels: at least one, each known",
        True,
        "promotion",
        _set("scope", {"channels": []}),
    ),
    Rule(
        "V22",
        "scope.channels: no channel twice",
        True,
        "promotion",
        _set("scope", {"channels": ["pos", "pos"]}),
    ),
    Rule(
        "V23",
        "funding source vendor or shared names the vendor",
        True,
        "promotion",
        _set("funding", {"source": "vendor"}),
    ),
    Rule(
        "V24",
        "validity start/end: a wall-clock time or an RFC 3339 date-time",
        True,
        "promotion",
        _set("validity", {**_WINDOW, "end": "next Tuesday"}),
    ),
    Rule(
        "V25",
        "validity end after start",
        False,
        "promotion",
        _set("validity", {**_WINDOW, "end": "2026-05-01T00:00:00"}),
    ),
    Rule(
        "V26",
        "validity timezone: a real IANA zone",
        False,
        "promotion",
        _set("validity", {**_WINDOW, "end": "2026-07-01T00:00:00", "timezone": "Mars/Olympus"}),
    ),
    Rule(
        "V27",
        "conditions.min_quantity: an integer of at least 1",
        True,
        "promotion",
        _set("conditions", {"min_quantity": 0}),
    ),
    Rule("V28", "priority: an integer of at least 0", True, "promotion", _set("priority", -1)),
    Rule("V29", "basket: at least one line", True, "basket", _set("lines", [])),
    Rule("V30", "basket line quantity: 1 to 10000", True, "basket", _set("lines.0.quantity", 0)),
    Rule(
        "V31",
        "basket unit_price: money (at most 2 decimals)",
        True,
        "basket",
        _set("lines.0.unit_price", "1.005"),
    ),
    Rule("V32", "basket tax rates: 0 to 1", True, "basket", _set("lines.0.tax_rate", "1.5")),
    Rule(
        "V33",
        "basket: each SKU on one line only",
        False,
        "basket",
        lambda b: {**b, "lines": [b["lines"][0], b["lines"][0]]},
    ),
    Rule("V34", "price 'at': an ISO 8601 instant", False, "at", lambda _: "yesterday"),
    Rule("V35", "price 'at': with an offset", False, "at", lambda _: "2026-06-01T09:00:00"),
]
