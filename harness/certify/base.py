"""What every check shares: settings per level, the check context and the result.

A check is an ``async def check_<name>(ctx: Ctx) -> None`` whose docstring says what it
verifies; it records evidence with ``ctx.note`` and problems with ``ctx.fail`` (or
``ctx.mismatch`` for a receipt that differs from the reference engine's). It fails when it
recorded a problem or raised; the runner turns it into a :class:`CheckResult`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

from harness.certify.session import Answer, Session
from harness.domain.basket import Receipt

__all__ = ["LEVELS", "CheckResult", "Ctx", "Settings", "money_fields", "receipt_diffs"]

Level = Literal["basic", "full"]


@dataclass(frozen=True)
class Settings:
    """How hard to push: the level's defaults, each overridable (tests shorten latency)."""

    level: Level = "basic"
    cases: int = 48
    latency_rate: float = 20.0
    latency_seconds: float = 5.0
    p95_limit: float = 0.25
    slow_callback_delay: float = 2.0
    # A delivery answered within this while callbacks are slow; keep it below
    # slow_callback_delay, so a webhook on the delivery path always fails the check.
    slow_callback_answer_limit: float = 1.0
    burst: int = 50
    # The burst is sent open loop at this rate; each delivery must take effect (200, or
    # its ack webhook) within these limits of being sent: p95 and the slowest one.
    burst_rate: float = 100.0
    burst_p95_limit: float = 2.0
    burst_max_limit: float = 5.0
    ack_timeout: float = 10.0
    seed: int = 0
    # The pricing dialect(s) the adapter's channel is certified against ("" = reference),
    # e.g. "per-unit-distribution" for a commercetools-like platform.
    dialect: str = ""

    @classmethod
    def for_level(cls, level: str, **overrides: Any) -> Settings:
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r}; known: {', '.join(LEVELS)}")
        return replace(LEVELS[level], **{k: v for k, v in overrides.items() if v is not None})


LEVELS: dict[str, Settings] = {
    "basic": Settings(),
    "full": Settings(level="full", cases=200, latency_rate=50.0, latency_seconds=20.0, burst=50),
}


@dataclass
class CheckResult:
    name: str
    title: str
    description: str
    passed: bool
    evidence: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Ctx:
    """One check's view of the run: the session, the settings and its findings."""

    def __init__(self, session: Session, settings: Settings, name: str) -> None:
        self.s = session
        self.settings = settings
        self.name = name
        self.evidence: list[str] = []
        self.failures: list[str] = []
        self.mismatches: list[dict[str, Any]] = []

    def pid(self, suffix: str) -> str:
        """A promotion id unique to this run and check."""
        return f"{self.s.run_id}-{self.name[:12]}-{suffix}".replace("_", "-")

    def note(self, text: str) -> None:
        self.evidence.append(text)

    def fail(self, text: str) -> None:
        self.failures.append(text)

    def expect(self, ok: bool, text: str) -> bool:
        (self.note if ok else self.fail)(("ok: " if ok else "FAIL: ") + text)
        return ok

    def expect_status(self, answer: Answer, allowed: tuple[int, ...], what: str) -> bool:
        return self.expect(
            answer.status in allowed,
            f"{what} -> {answer.status} (expected {'/'.join(map(str, allowed))})"
            + ("" if answer.status in allowed else f"; body {str(answer.body)[:200]}"),
        )

    def expect_total(
        self, answer: Answer, expected: Receipt, what: str, *, points: bool = False
    ) -> bool:
        """The adapter's total (and, with ``points``, its points) equals the reference
        engine's for the same promotions."""
        if answer.status != 200 or not isinstance(answer.body, dict):
            self.fail(f"FAIL: {what}: price answered {answer.status}")
            return False
        total, got_points = _dec(answer.body.get("total")), _dec(answer.body.get("points"))
        ok = total == expected.total and (not points or got_points == expected.points)
        shown = f"total {total}" + (f", points {got_points}" if points else "")
        wanted = f"total {expected.total}" + (f", points {expected.points}" if points else "")
        return self.expect(
            ok, f"{what}: {shown}, expected {wanted} (adapter holds {answer.body.get('active')})"
        )

    def mismatch(
        self, case: str, tags: list[str], expected: Receipt, actual: Any, diff: str
    ) -> None:
        self.mismatches.append(
            {
                "case": case,
                "tags": tags,
                "diff": diff,
                "expected": expected.model_dump(mode="json"),
                "actual": actual,
            }
        )


MONEY = ("subtotal", "discount_total", "tax_total", "total", "shipping_tax", "points")


def money_fields(expected: Receipt, actual: Any) -> list[str]:
    """The money fields (totals and each line's amount and tax) that differ."""
    if not isinstance(actual, dict):
        return ["<no receipt>"]
    exp = expected.model_dump(mode="json")
    diffs = []
    for key in MONEY:
        if _dec(exp.get(key)) != _dec(actual.get(key)):
            diffs.append(f"{key}: {actual.get(key)} != {exp.get(key)}")
    lines = {ln.get("sku"): ln for ln in actual.get("lines", []) if isinstance(ln, dict)}
    for line in exp["lines"]:
        got = lines.get(line["sku"], {})
        for key in ("amount", "tax"):
            if _dec(line[key]) != _dec(got.get(key)):
                diffs.append(f"{line['sku']}.{key}: {got.get(key)} != {line[key]}")
    return diffs


def _attributions(items: Any) -> list[tuple[Any, Any, Decimal | None]]:
    if not isinstance(items, list):
        return []
    return [
        (d.get("promo"), d.get("version"), _dec(d.get("amount")))
        for d in items
        if isinstance(d, dict)
    ]


def _show(items: list[tuple[Any, Any, Decimal | None]]) -> str:
    return "[" + ", ".join(f"{p}@{v} {a}" for p, v, a in items) + "]"


def receipt_diffs(expected: Receipt, actual: Any) -> list[str]:
    """Everything that differs: the money fields, the shipping charged, which promotion
    each discount is attributed to (per line and on the shipping, with its amount), the
    promotions listed as applied."""
    diffs = money_fields(expected, actual)
    if not isinstance(actual, dict):
        return diffs
    exp = expected.model_dump(mode="json")
    if _dec(exp["shipping"]) != _dec(actual.get("shipping")):
        diffs.append(f"shipping: {actual.get('shipping')} != {exp['shipping']}")
    want, got = (
        _attributions(exp["shipping_discounts"]),
        _attributions(actual.get("shipping_discounts")),
    )
    if want != got:
        diffs.append(f"shipping_discounts: {_show(got)} != {_show(want)}")
    lines = {ln.get("sku"): ln for ln in actual.get("lines", []) if isinstance(ln, dict)}
    for line in exp["lines"]:
        want = _attributions(line["discounts"])
        got = _attributions(lines.get(line["sku"], {}).get("discounts"))
        if want != got:
            diffs.append(f"{line['sku']}.discounts: {_show(got)} != {_show(want)}")
    if list(exp["applied"]) != actual.get("applied"):
        diffs.append(f"applied: {actual.get('applied')} != {exp['applied']}")
    return diffs


def _dec(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None
