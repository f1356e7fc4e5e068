"""The measuring machinery proven against injected faults (issue 12, mutation testing).

For each fault class, one small deterministic virtual-time run twice: clean (the figures
flag nothing at all) and with the fault injected into the reference orchestrator or an
endpoint model (``fault_injection``: no fault switch in production code). The faulty run
must flag exactly the hand-derived accusations — every figure's, so a fault that trips
the wrong figure, or one figure too many, fails too.

Timings, all from ``fault_injection.scenario``: every endpoint serves in a fixed 0.1 s;
one-way network delays are the runtime's 0.02 s (stores), 0.01 s (ERP), 0.005 s (web
shop). So a store applies a delivery sent at t at t + 0.12 and replies at t + 0.14; the
ERP applies at t + 0.11; the web shop accepts at t + 0.105 and applies (and removes) 1 s
later. P1 is published at 20, valid from 30, rolled back (when it is) at 40 with a 5 s
deadline; shelf prices are sampled at 7, 14, ..., 119 s (sample n at 7n s).

``TABLE`` is the "fault class -> figure -> caught" table; docs/oracles.md must carry it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fault_injection import (
    Faulty,
    Flag,
    Inject,
    both,
    endpoint_fault,
    faulty_orchestrator,
    flags,
    ordered,
    run,
    scenario,
    stray_send,
)

from harness.domain.dialects import compose
from harness.domain.eventlog import Record
from harness.metrics.frame import to_frame
from harness.metrics.storm import double_applied
from harness.orchestrator.commands import SendDelivery
from harness.runtime.world import World, build_world
from harness.scenario import Scenario

DOCS = Path(__file__).resolve().parents[2] / "docs" / "oracles.md"
ROLLBACKS = "rollbacks[].violations"
GHOSTS = "propagation.overall.ghosts"
PRICES = "price_consistency.examples"
EAST = {"regions": ["east"]}


class Shop(NamedTuple):
    """The product every priced case sells and quotes, and the sales trace."""

    sku: str
    price: Decimal
    tax_rate: Decimal
    sales: str


def cents(x: Decimal) -> Decimal:
    return x.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def off(shop: Shop, percent: int) -> float:
    """The discount ``percent`` % off one unit gives, rounded half-even (the default)."""
    return float(cents(shop.price * percent / 100))


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    fault: str  # the fault class, as issue 12 names it
    figure: str  # the summary.json key that must catch it
    caught: str  # "yes", or what the figure cannot say
    build: Callable[[Shop], Scenario]
    inject: Callable[[Scenario], Inject]
    expected: Callable[[Shop], list[Flag]]
    check: Callable[[dict[str, Any], Shop], None] | None = None
    # A known hole: the accusations among ``expected`` that no figure makes yet. The test
    # asserts the figures make exactly the others, then reports the case as xfail.
    missed: Callable[[Shop], list[Flag]] | None = None
    gap: str = ""


# --- the faults --------------------------------------------------------------------------


def late_retry_and_stale_endpoint(scn: Scenario) -> Inject:
    """At 50 the orchestrator retries its old apply of v1 to S0002 (a withdrawn delivery
    it forgot) under a fresh idempotency key, and S0002 accepts a stale version (no
    "newest version wins" rule). Either guard alone absorbs the retry."""
    (p1,) = scn.promotions
    retry = stray_send("S0002", "pos", "apply", 1, p1, "P1:1:S0002:apply", "late-retry")

    def stale(world: World) -> None:
        m = world.models["S0002"]
        m.profile = dataclasses.replace(m.profile, accept_stale=True)

    return both(faulty_orchestrator(at=[(50.0, [retry])]), stale)


def naive_scope(scn: Scenario) -> Inject:
    """The orchestrator's old scope filter (issue 12, item 1): a region list filters only
    endpoints that have a region, so a region rollback reaches every place-less one."""

    def covered(self: Any, p: Any, scope: Any, op: str) -> list[Any]:
        out = []
        for ep in self._endpoints:
            if ep.channel != "erp" and not p.scope.covers(
                ep.channel, ep.region or None, ep.store or None
            ):
                continue
            if scope.channels and ep.channel not in scope.channels:
                continue
            if ep.store and scope.stores:
                if ep.store in scope.stores:
                    out.append(ep)
            elif ep.region and scope.regions:
                if ep.region in scope.regions:
                    out.append(ep)
            else:
                out.append(ep)
        return out

    def inject(world: World) -> None:
        make = world.orchestrator

        def build(rng: Any = None) -> Any:
            orch = make(rng)
            targets = orch._targets
            targets._covered = covered.__get__(targets)
            return orch

        world.orchestrator = build  # type: ignore[method-assign]

    return inject


def late_leak(scn: Scenario) -> Inject:
    """The naive scope filter, and the web shop's (wrong) revoke leaves 10 s late: it
    lands at 51.105, after the rollback's deadline."""

    def rewrite(cmd: Any, now: float, faulty: Faulty) -> list[Any] | None:
        if isinstance(cmd, SendDelivery) and cmd.op == "revoke" and cmd.endpoint == "web":
            return faulty.hold([cmd], now + 10.0)
        return None

    def inject(world: World) -> None:
        naive_scope(scn)(world)
        faulty_orchestrator(rewrite=rewrite)(world)

    return inject


def slow_revoke(scn: Scenario) -> Inject:
    """The revoke to S0002 leaves 10 s after the orchestrator decided it (a stuck queue)."""

    def rewrite(cmd: Any, now: float, faulty: Faulty) -> list[Any] | None:
        if isinstance(cmd, SendDelivery) and cmd.op == "revoke" and cmd.endpoint == "S0002":
            return faulty.hold([cmd], now + 10.0)
        return None

    return faulty_orchestrator(rewrite=rewrite)


def ack_without_apply(scn: Scenario) -> Inject:
    """S0002 answers 200 to its apply and does not apply it."""

    def complete(original: Any, req: Any, plan: Any, now: float) -> list[Any]:
        return [] if req.op == "apply" else original(req, plan, now)

    return endpoint_fault("S0002", complete=complete)


def apply_without_ack(scn: Scenario) -> Inject:
    """The orchestrator loses S0001's 200 to the apply: it never records an ack."""
    return faulty_orchestrator(drop_result=lambda ev: ev.endpoint == "S0001" and ev.op == "apply")


def lost_first_reply(scn: Scenario) -> Inject:
    """S0002 (not idempotent) applies the first attempt but its reply is lost: the
    orchestrator times out at 30 and retries at 31 (fixed 1 s backoff), a second copy."""

    def plan(original: Any, req: Any, now: float, rng: Any, *, queued: int = 0) -> Any:
        p = original(req, now, rng, queued=queued)
        if req.op == "apply" and req.attempt == 1:
            return p._replace(outcome="timeout", status=0, reply_lost=True)
        return p

    return endpoint_fault("S0002", plan=plan)


def relay(at: float) -> Callable[[Scenario], Inject]:
    def inject(scn: Scenario) -> Inject:
        """An independent relay applies P1 at S0002, which the publish never reached."""
        (p1,) = scn.promotions
        return faulty_orchestrator(
            at=[(at, [stray_send("S0002", "pos", "apply", 1, p1, "relay", "relay")])]
        )

    return inject


def stale_shelf(scn: Scenario) -> Inject:
    """S0002 removes P1 (its ground truth says so) but its till keeps pricing with it."""

    def revoke(original: Any, req: Any) -> list[Any]:
        model = original.__self__
        kept = model._payloads.get(req.promo)
        changes = original(req)
        if kept is not None:
            model._payloads[req.promo] = kept
        return changes

    return endpoint_fault("S0002", _revoke=revoke)


def web_discount_after_tax(scn: Scenario) -> Inject:
    def inject(world: World) -> None:
        world.models["web"].dialect = compose("discount-after-tax")  # type: ignore[attr-defined]

    return inject


def generous_payload(scn: Scenario) -> Inject:
    """The orchestrator sends P1 at 50 % off instead of the approved 10 %."""

    def rewrite(cmd: Any, now: float, faulty: Faulty) -> list[Any] | None:
        if isinstance(cmd, SendDelivery) and cmd.payload is not None:
            benefit = cmd.payload.benefit.model_copy(update={"percent": Decimal(50)})
            return [
                dataclasses.replace(
                    cmd, payload=cmd.payload.model_copy(update={"benefit": benefit})
                )
            ]
        return None

    return faulty_orchestrator(rewrite=rewrite)


def samples(shop: Shop, first: int, last: int, where: str) -> list[Flag]:
    return [Flag(PRICES, f"{shop.sku}@{n}", where, None) for n in range(first, last + 1)]


def check_late_removal(summary: dict[str, Any], shop: Shop) -> None:
    (v,) = summary["rollbacks"][0]["violations"]
    assert v["detail"] == "active at the rollback (t=40); deadline 45; removed late at 50.12"


def check_in_window(summary: dict[str, Any], shop: Shop) -> None:
    (v,) = summary["rollbacks"][0]["violations"]
    assert v["detail"].startswith("applied at 42.12 after the rollback (t=40); deadline 45")


def check_stale_shelf(summary: dict[str, Any], shop: Shop) -> None:
    # One sale at S0002 at 50, after the rollback, at the promotion's price.
    assert summary["leakage_value"] == pytest.approx(off(shop, 10))
    full = float(cents(shop.price * (1 + shop.tax_rate)))
    promo = float(cents(cents(shop.price - cents(shop.price / 10)) * (1 + shop.tax_rate)))
    for ex in summary["price_consistency"]["examples"]:
        assert ex["by_channel"] == {"ecommerce": [full], "pos": sorted([promo, full])}


def check_dialect(summary: dict[str, Any], shop: Shop) -> None:
    # Net basket: the reference taxes the discounted line, the dialect the full one.
    net = shop.price - cents(shop.price / 10)
    reference = float(net + cents(net * shop.tax_rate))
    after_tax = float(net + cents(shop.price * shop.tax_rate))
    for ex in summary["price_consistency"]["examples"]:
        assert ex["by_channel"] == {"ecommerce": [after_tax], "pos": [reference]}
    assert summary["price_consistency"]["by_channel_pair"] == {"ecommerce|pos": 13}


def check_overrun(summary: dict[str, Any], shop: Shop) -> None:
    # Five sales of one unit, all while P1 is live: budget = five 10 % discounts.
    f = summary["funding"]["P1"]
    assert f["granted"] == pytest.approx(5 * off(shop, 50))
    assert f["overrun"] == pytest.approx(5 * off(shop, 50) - 5 * off(shop, 10))


CASES: tuple[Case, ...] = (
    Case(
        "resurrection",
        "resurrection (a late retry re-applying after removal)",
        "rollbacks[].violations: resurrected",
        "yes",
        lambda shop: scenario(rollback=EAST),
        late_retry_and_stale_endpoint,
        lambda shop: [Flag(ROLLBACKS, "resurrected", "S0002", 50.12)],
    ),
    Case(
        "scope-leak",
        "scope leak (a region rollback revoking the web shop and the ERP)",
        "rollbacks[].violations: touched_outside_scope",
        "yes",
        lambda shop: scenario(rollback=EAST),
        naive_scope,
        lambda shop: [
            Flag(ROLLBACKS, "touched_outside_scope", "erp", 40.11),
            Flag(ROLLBACKS, "touched_outside_scope", "web", 41.105),
        ],
    ),
    Case(
        "scope-leak-after-deadline",
        "scope leak whose revoke lands after the rollback's deadline",
        "rollbacks[].violations: touched_outside_scope",
        "yes",
        lambda shop: scenario(rollback=EAST),
        late_leak,
        lambda shop: [
            Flag(ROLLBACKS, "touched_outside_scope", "erp", 40.11),
            Flag(ROLLBACKS, "touched_outside_scope", "web", 51.105),
        ],
    ),
    Case(
        "missed-deadline",
        "missed rollback deadline",
        "rollbacks[].violations: not_removed_by_deadline",
        "yes",
        lambda shop: scenario(rollback=EAST),
        slow_revoke,
        lambda shop: [Flag(ROLLBACKS, "not_removed_by_deadline", "S0002", 45.0)],
        check_late_removal,
    ),
    Case(
        "ack-without-apply",
        "ack without apply (ghost: acked, never applied)",
        "propagation.*.ghosts.acked_not_applied",
        "yes",
        lambda shop: scenario(),
        ack_without_apply,
        lambda shop: [
            # Published at 20; the reply comes back 0.02 + 0.1 + 0.02 s later.
            Flag(GHOSTS, "acked_not_applied", "S0002", 20.14),
            # Never applied, so not by the start either.
            Flag("propagation.by_promo.P1.late_for_start", "late", "S0002", None),
        ],
    ),
    Case(
        "apply-without-ack",
        "apply without ack (ghost: applied, never acked)",
        "propagation.*.ghosts.applied_not_acked",
        "yes",
        lambda shop: scenario(),
        apply_without_ack,
        # Applied 0.02 s (the network) + 0.1 s (service) after the publish at 20.
        lambda shop: [Flag(GHOSTS, "applied_not_acked", "S0001", 20.12)],
    ),
    Case(
        "double-apply",
        "double apply at a non-idempotent endpoint",
        "retry_storm.double_applied (added for this)",
        "yes",
        lambda shop: scenario(
            pos={"idempotent": False},
            pos_policy={"timeout": 10, "max_attempts": 5, "backoff": {"kind": "fixed", "base": 1}},
        ),
        lost_first_reply,
        lambda shop: [Flag("retry_storm.double_applied", "double", "S0002", 31.12)],
    ),
    Case(
        "first-apply-after-deadline",
        "first apply landing in scope after the rollback (after its deadline)",
        "rollbacks[].violations: applied_after_rollback",
        "yes",
        lambda shop: scenario(publish={"stores": ["S0001"]}, rollback=EAST),
        relay(50.0),
        lambda shop: [Flag(ROLLBACKS, "applied_after_rollback", "S0002", 50.12)],
    ),
    Case(
        "first-apply-in-window",
        "first apply landing in scope after the rollback (before its deadline, kept)",
        "rollbacks[].violations: not_removed_by_deadline",
        "yes",
        lambda shop: scenario(publish={"stores": ["S0001"]}, rollback=EAST),
        relay(42.0),
        lambda shop: [Flag(ROLLBACKS, "not_removed_by_deadline", "S0002", 45.0)],
        check_in_window,
    ),
    Case(
        "stale-shelf-price",
        "stale shelf price after rollback (removed, still priced)",
        "price_consistency.priced_without_truth (+ examples, leakage_value)",
        "yes: the store and the sale's time; needs a sale there (quotes carry no promotion)",
        lambda shop: scenario(rollback={}, skus=[shop.sku], sales=shop.sales),
        stale_shelf,
        # The sale at S0002 at 50 s gives P1's discount after S0002 removed it; quotes from
        # 42 s (sample 6) to 119 s (sample 17): S0002 alone at the old price.
        lambda shop: [
            Flag("price_consistency.priced_without_truth", "stale", "S0002", 50.0),
            Flag("leakage_value", "leakage", "", None),
            *samples(shop, 6, 17, "ecommerce|pos"),
        ],
        check_stale_shelf,
    ),
    Case(
        "dialect-mismatch",
        "dialect mismatch (web shop discounting after tax)",
        "price_consistency.examples / by_channel_pair",
        "yes; the channel pair and the sample (so its time), not the endpoint",
        lambda shop: scenario(skus=[shop.sku], sales=shop.sales),
        web_discount_after_tax,
        # P1 is valid from 30 s: samples 5 (35 s) to 17 (119 s).
        lambda shop: samples(shop, 5, 17, "ecommerce|pos"),
        check_dialect,
    ),
    Case(
        "funding-overrun",
        "funding overrun (a payload at 50 % instead of 10 %)",
        "funding.<promo>.overrun",
        "yes; the promotion, not where or when the budget ran out",
        lambda shop: scenario(skus=[shop.sku], sales=shop.sales, budget=5 * off(shop, 10)),
        generous_payload,
        lambda shop: [Flag("funding.P1.overrun", "overrun", "P1", None)],
        check_overrun,
    ),
)

TABLE: tuple[tuple[str, str, str], ...] = tuple((c.fault, c.figure, c.caught) for c in CASES)


def table_markdown() -> str:
    """The table docs/oracles.md carries, exactly (between its two marker lines)."""
    rows = ["| fault class | figure (summary.json key) | caught |", "| --- | --- | --- |"]
    rows += [f"| {fault} | `{figure}` | {caught} |" for fault, figure, caught in TABLE]
    return "\n".join(rows) + "\n"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    """A taxable, discountable product of the estate's catalog, and five sales of one unit
    of it: S0001 at 35, the web shop at 36, S0002 at 37 and 50, S0001 at 50."""
    catalog = build_world(scenario()).estate.catalog
    product = next(p for p in catalog if p.tax_rate > 0 and not p.non_discountable)
    path = tmp_path_factory.mktemp("sales") / "sales.csv"
    rows = [(35, "S0001"), (36, "web"), (37, "S0002"), (50, "S0002"), (50, "S0001")]
    path.write_text("t,endpoint,basket\n" + "".join(f"{t},{e},{product.sku}:1\n" for t, e in rows))
    return Shop(product.sku, product.price, product.tax_rate, str(path))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_figure_flags_exactly_the_injected_fault(case: Case, shop: Shop) -> None:
    scn = case.build(shop)
    clean = run(scn)
    assert flags(clean.summary) == [], "the clean run must flag nothing"
    faulty = run(scn, case.inject(scn))
    missed = case.missed(shop) if case.missed else []
    assert flags(faulty.summary) == ordered([f for f in case.expected(shop) if f not in missed])
    if case.check is not None:
        case.check(faulty.summary, shop)
    if missed:
        pytest.xfail(f"not flagged: {missed}; {case.gap}")


def test_double_applied_is_a_second_copy_of_the_same_version() -> None:
    """An upgrade (v1 then v2) and a re-apply after a removal are not double applies; the
    same version applied again with nothing removed between is, wherever it is labelled."""
    rows = [
        Record(1.0, "applied", "P", 1, "S1", "pos"),
        Record(2.0, "applied", "P", 2, "S1", "pos"),  # an upgrade
        Record(3.0, "removed", "P", 2, "S1", "pos"),
        Record(4.0, "applied", "P", 2, "S1", "pos"),  # after a removal: resurrection's
        Record(5.0, "applied", "P", 2, "S1", "pos"),  # a second copy, unlabelled
        Record(5.0, "applied", "Q", 2, "S1", "pos"),  # another promotion
        Record(6.0, "applied", "P", 2, "S2", "pos"),  # another endpoint
    ]
    assert double_applied(to_frame(rows)) == {
        "count": 1,
        "examples": [{"promo": "P", "version": 2, "endpoint": "S1", "t": 5.0}],
    }


def test_docs_carry_the_table() -> None:
    """docs/oracles.md holds exactly ``table_markdown()`` between its markers, so the
    table cannot drift from the cases above (regenerate: ``python3
    tests/oracles/test_oracles_catch_faults.py``)."""
    text = DOCS.read_text()
    begin, end = text.index(BEGIN) + len(BEGIN) + 1, text.index(END)
    assert text[begin:end] == table_markdown()


BEGIN = "<!-- oracles-table: begin (generated from tests/oracles/test_oracles_catch_faults.py) -->"
END = "<!-- oracles-table: end -->"


if __name__ == "__main__":  # rewrite the table in docs/oracles.md
    doc = DOCS.read_text()
    head, rest = doc.split(BEGIN, 1)
    DOCS.write_text(head + BEGIN + "\n" + table_markdown() + END + rest.split(END, 1)[1])
