"""``promoharness bench sut`` runs end to end with tiny numbers (no figure is judged: the
machine's speed decides nothing here), and its lag probe and tally count what they see."""

from __future__ import annotations

import asyncio
import math
import time

from harness.bench.sut import LagProbe, bench_sut
from harness.cli import main


def test_the_bench_runs_with_tiny_numbers() -> None:
    f = bench_sut(seconds=0.3, absorb_speed=100.0, stores=3)
    assert f["targets"] == 7  # ERP, three stores, web, loyalty, marketplace
    for key in ("absorb_estate", "absorb_bare", "publish_estate", "publish_bare"):
        figures = f[key]
        assert figures["answered"] + figures["no_answer"] == figures["attempts"] > 0, key
        assert figures["lag_samples"] > 0, key
    # The bare app answers every delivery 200 at once: one attempt per endpoint.
    assert f["publish_bare"]["answers"] == {"200": 7}
    assert f["publish_estate"]["attempts"] >= 7
    # On a busy machine a 0.3 s window may close before the bare app answers once: then
    # there is no ratio (nan), never a division by zero.
    bare = f["absorb_bare"]["per_s"]
    if bare:
        assert f["absorb_ratio"] == f["absorb_estate"]["per_s"] / bare
    else:
        assert math.isnan(f["absorb_ratio"])


def test_the_cli_prints_the_figures(capsys) -> None:  # type: ignore[no-untyped-def]
    try:
        main(["bench", "sut", "--seconds", "0.2", "--stores", "2", "--absorb-speed", "100"])
    except SystemExit as exc:
        assert exc.code == 0
    # The console wraps long lines where it likes: read the words, not the lines.
    out = " ".join(capsys.readouterr().out.split())
    assert "deliveries/s" in out and "loop lag p99" in out and "bare Starlette" in out


def test_the_lag_probe_sees_a_blocked_loop() -> None:
    async def run() -> list[float]:
        probe = LagProbe()
        task = asyncio.get_running_loop().create_task(probe.run())
        await asyncio.sleep(0.05)
        time.sleep(0.2)  # block the loop: the next tick is about 0.2 s late
        await asyncio.sleep(0.05)
        task.cancel()
        return probe.samples

    samples = asyncio.run(run())
    assert max(samples) >= 0.15
