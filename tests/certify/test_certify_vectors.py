"""The conformance vectors and the input rules, held to the reference engine and the schema.

The shipped vectors are the engine's receipts (a pricing change shows up as a diff of the
data teams test against); the specification's worked examples are also held to totals,
lines and points derived by hand (docs/pricing-spec.md shows the same figures).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.certify.cli import certify_app
from harness.certify.contract import contract_document, validate
from harness.certify.probes import pricing_promotions, probe_basket, probe_promotion
from harness.certify.rules import RULES
from harness.certify.vectors_build import EXAMPLES, STORE, build_vectors, load_vectors
from harness.domain.basket import Basket
from harness.domain.dialects import DIALECTS
from harness.domain.pricing import price_basket
from harness.domain.promotion import CHANNELS, Promotion

SPEC = Path(__file__).parents[2] / "docs" / "pricing-spec.md"


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_reference_engine_passes_the_shipped_vectors(channel: str) -> None:
    doc = json.loads(load_vectors(channel))
    assert doc == build_vectors(channel)  # the shipped file is the engine's, not stale
    promos = {pid: Promotion.model_validate(p) for pid, p in doc["promotions"].items()}
    store = STORE if doc["store"] else None
    for v in doc["vectors"]:
        receipt = price_basket(
            Basket.model_validate(v["basket"]),
            [promos[pid] for pid in v["promotions"]],
            channel=channel,
            at=dt.datetime.fromisoformat(v["at"]),
            store=store,
        )
        assert receipt.model_dump(mode="json") == v["expected"], v["id"]
    assert len(doc["vectors"]) == len(EXAMPLES) + 48 + 11


def test_worked_examples_match_hand_derived_figures_and_the_spec() -> None:
    spec = SPEC.read_text()
    doc = json.loads(load_vectors("ecommerce"))
    by_id = {v["id"]: v["expected"] for v in doc["vectors"]}
    for name, (_, _, _, total, lines) in EXAMPLES.items():
        got = by_id[name]
        assert got["total"] == total, name
        assert [ln["amount"] for ln in got["lines"]] == lines, name
        assert f"**{name}**" in spec and f"total {total}" in spec, name
    assert by_id["E10"]["points"] == "70"


def test_per_unit_dialect_spreads_by_unit_as_commercetools() -> None:
    # 15.00 over A 1 x 16.00 and B 2 x 20.00: per unit 15 x 16/56 = 4.2857, 15 x 20/56 =
    # 5.3571 twice; floors 4.28 + 5.35 + 5.35 = 14.98, the two cents to the largest
    # remainders (B's units): 4.28 / 5.36 / 5.36 -> A 11.72, B 29.28.
    _, promos, basket, _, _ = EXAMPLES["E1"]
    at = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    kw = {"channel": "ecommerce", "at": at}
    per_unit = price_basket(basket, promos, dialect=DIALECTS["per-unit-distribution"], **kw)
    assert [ln.amount for ln in per_unit.lines] == [Decimal("11.72"), Decimal("29.28")]
    assert per_unit.total == price_basket(basket, promos, **kw).total


def test_cli_prints_the_vectors() -> None:
    result = CliRunner().invoke(certify_app, ["contract", "pos", "--vectors"])
    assert result.exit_code == 0
    assert json.loads(result.output)["store"]["timezone"] == "Europe/Paris"


def test_every_rule_is_refused_by_the_model_and_the_schema_says_which() -> None:
    doc = contract_document("pos")
    good = probe_promotion("P1", 1, "4.00", "x").model_dump(mode="json", by_alias=True)
    basket = json.loads(probe_basket("x").model_dump_json())
    assert validate(doc, "Promotion", good) == [] and validate(doc, "Basket", basket) == []
    for p in pricing_promotions("G"):  # every promotion the kit sends fits the schema
        assert validate(doc, "Promotion", p.model_dump(mode="json", by_alias=True)) == []
    spec = SPEC.read_text()
    assert [r.id for r in RULES] == [f"V{n}" for n in range(1, len(RULES) + 1)]
    for rule in RULES:
        assert f"**{rule.id}**" in spec, rule.id
        if rule.target == "at":
            at = rule.breaks(None)
            with pytest.raises(ValueError):
                if dt.datetime.fromisoformat(at).tzinfo is None:
                    raise ValueError("no offset")
            continue
        model, schema, valid = (
            (Promotion, "Promotion", good)
            if rule.target == "promotion"
            else (Basket, "Basket", basket)
        )
        bad = rule.breaks(valid)
        with pytest.raises(ValueError):
            model.model_validate(bad)
        assert bool(validate(doc, schema, bad)) is rule.in_schema, rule.id
