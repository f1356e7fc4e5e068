"""The pricing bench's instruction-counting mode prices and only prices (no timing, no output)."""

from __future__ import annotations

import pytest

from harness.bench import pricing
from harness.domain import pricing as engine


def test_calls_mode_prices_exactly_that_many_times_after_the_warmup(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []
    real_quote, real_receipt = pricing.quote_basket, pricing.price_basket

    def quote(*args: object, **kw: object) -> engine.Quote:
        seen.append("quote")
        return real_quote(*args, **kw)  # type: ignore[arg-type]

    def receipt(*args: object, **kw: object) -> object:
        seen.append("receipt")
        return real_receipt(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pricing, "quote_basket", quote)
    monkeypatch.setattr(pricing, "price_basket", receipt)
    assert pricing.main(["--calls", "7"]) == 0
    assert seen == ["quote"] * (pricing.WARMUP + 7)
    seen.clear()
    assert pricing.main(["--calls", "2", "--receipt"]) == 0
    assert seen == ["receipt"] * (pricing.WARMUP + 2)
    assert capsys.readouterr().out == ""


def test_negative_calls_is_refused_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        pricing.main(["--calls", "-1"])
    assert exit_.value.code == 2
    assert "--calls" in capsys.readouterr().err
