"""``promoharness bench estate`` runs end to end with tiny numbers (no figure is judged: the
machine's speed decides nothing here); every delivery the generators count was answered."""

from __future__ import annotations

import re

from harness.bench.estate import measure
from harness.cli import main


def test_two_shards_absorb_deliveries_from_a_generator_process() -> None:
    f = measure(2, stores=4, seconds=2.0, generators=1, connections=4, warmup=0.5)
    assert f["deliveries"] > 0
    assert f["answers"] == {200: f["deliveries"]}  # healthy stores: every apply lands
    assert len(f["shard_cpu_share"]) == 2 and len(f["generator_cpu_share"]) == 1
    assert f["per_second"] == f["deliveries"] / 2.0


def test_the_cli_prints_both_sides_the_ratio_and_the_extrapolation(capsys) -> None:  # type: ignore[no-untyped-def]
    try:
        main(["bench", "estate", "--seconds", "2", "--stores", "4", "--rounds", "1",
              "--connections", "4", "--generators", "1"])  # fmt: skip
    except SystemExit as exc:
        assert exc.code == 0
    out = " ".join(capsys.readouterr().out.split())  # the console wraps where it likes
    assert re.search(r"1 shard : [\d,]+ deliveries/s", out), out
    assert re.search(r"2 shards: [\d,]+ deliveries/s", out), out
    assert "ratio 2 shards / 1 shard" in out and "extrapolation" in out and "generator" in out
