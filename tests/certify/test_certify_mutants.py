"""The kit's mutation score: every mutant adapter in ``mutants/`` (a realistic bug each) is
caught at the DEFAULT level (``basic``, default settings) by the check it names, for the
reason it names. The score is printed and must stay 100 %.

A mutant counts as caught only when its check fails with the expected text, so a check
failing for another reason (a slow machine, say) does not count. The timed mutants sleep
(a lower bound on any machine) well past the default limits; that the reference adapters
pass every check is test_certify_adapters.py's business. Adapters run in threads of this
process, eight certifications at a time.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from certify_support import TOKEN, serve_in_thread

from harness.certify.base import Settings
from harness.certify.runner import CHECKS, run_certification
from harness.certify.session import Refused

sys.path.insert(0, str(Path(__file__).parent / "mutants"))

from mutant_kit import Mutant

GALLERY = Path(__file__).parent / "mutants"


def _load(name: str) -> list[Mutant]:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"mutants_{name}", GALLERY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.MUTANTS)


MUTANTS: list[Mutant] = [m for group in ("pricing", "state", "surface") for m in _load(group)]


async def _verdict(mutant: Mutant, gate: asyncio.Semaphore) -> tuple[bool, str]:
    """(caught for the named reason, what the check said)."""
    async with gate:
        url, stop = await asyncio.to_thread(serve_in_thread, mutant.app())
        try:
            only = ["auth"] if mutant.check == "preflight" else [mutant.check]
            cert = await run_certification(
                url, mutant.channel, token=TOKEN, settings=Settings.for_level("basic"), only=only
            )
        except Refused as exc:
            return mutant.check == "preflight" and mutant.expect in str(exc), str(exc)
        finally:
            await asyncio.to_thread(stop)
    (result,) = cert.results
    said = result.failures + [m["diff"] for m in result.mismatches]
    text = "\n".join(said)
    return (not result.passed and mutant.expect in text), (said[:1] or ["passed"])[0]


@pytest.fixture(scope="module")
def verdicts() -> dict[str, tuple[bool, str]]:
    async def run() -> list[tuple[bool, str]]:
        gate = asyncio.Semaphore(8)
        return await asyncio.gather(*(_verdict(m, gate) for m in MUTANTS))

    return dict(zip((m.name for m in MUTANTS), asyncio.run(run()), strict=True))


def test_the_gallery_is_large_and_names_real_checks() -> None:
    assert len(MUTANTS) >= 25
    assert len({m.name for m in MUTANTS}) == len(MUTANTS)
    assert {m.check for m in MUTANTS} <= set(CHECKS) | {"preflight"}
    # every check of the kit but the reference-only ones has at least one mutant
    assert set(CHECKS) - {m.check for m in MUTANTS} <= {"faults_redelivery"}


def test_mutation_score_is_100_percent(verdicts: dict[str, tuple[bool, str]]) -> None:
    width = max(len(m.name) for m in MUTANTS)
    rows = [
        f"  {'KILLED' if verdicts[m.name][0] else 'SURVIVED':8} {m.name:{width}}  "
        f"{m.check:22} {verdicts[m.name][1][:90]}"
        for m in MUTANTS
    ]
    killed = sum(verdicts[m.name][0] for m in MUTANTS)
    score = 100.0 * killed / len(MUTANTS)
    print(
        f"\nmutation score {killed}/{len(MUTANTS)} = {score:.0f}% (level basic)\n" + "\n".join(rows)
    )
    survivors = [m.name for m in MUTANTS if not verdicts[m.name][0]]
    assert not survivors, {n: verdicts[n][1] for n in survivors}
