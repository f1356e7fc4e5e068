"""Every example adapter, certified: the reference ones pass every check, each faulty one
fails exactly its expected checks.

The adapters run as real processes (``python examples/adapters/<name>.py --port P --token
T``) and the eight certifications run concurrently, at level basic with a short latency
check, so the module stays well under a minute.
"""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from certify_support import TOKEN, start_adapter_processes

from harness.certify.base import Settings
from harness.certify.certificate import write_certificate
from harness.certify.runner import CHECKS, Certificate, run_certification

# adapter module -> (channel, the checks it must fail: exactly these)
EXPECTED: dict[str, tuple[str, set[str]]] = {
    "reference_pos": ("pos", set()),
    "reference_ecommerce": ("ecommerce", set()),
    "reference_loyalty": ("loyalty", set()),
    "reference_marketplace": ("marketplace", set()),
    "faulty_discount_after_tax": ("pos", {"pricing_reference"}),
    "faulty_not_idempotent": ("pos", {"idempotency", "faults_redelivery"}),
    "faulty_accepts_stale": ("ecommerce", {"ordering", "faults_redelivery"}),
    # a revoke it ignores also lets the late v2 of the ordering check "resurrect"
    "faulty_keeps_after_revoke": ("marketplace", {"deactivation", "ordering"}),
}

# Wall-clock limits here only guard against hangs: the eight certifications share this
# process's event loop and a busy machine, so the time an answer takes is not the adapter's
# alone. What the latency and slow-callback checks decide is tested against deliberately
# slow adapters (test_certify_timing.py), where a sleep gives a lower bound on any machine.
TEST_SETTINGS = Settings.for_level(
    "basic",
    latency_seconds=1.0,
    burst_p95_limit=60.0,
    burst_max_limit=60.0,
    p95_limit=60.0,
    slow_callback_delay=20.0,
    slow_callback_answer_limit=15.0,
    ack_timeout=30.0,
)


@pytest.fixture(scope="module")
def certificates() -> dict[str, Certificate]:
    with start_adapter_processes(list(EXPECTED), TOKEN) as urls:

        async def all_runs() -> list[Certificate]:
            return await asyncio.gather(
                *(
                    run_certification(urls[name], channel, token=TOKEN, settings=TEST_SETTINGS)
                    for name, (channel, _) in EXPECTED.items()
                )
            )

        return dict(zip(EXPECTED, asyncio.run(all_runs()), strict=True))


@pytest.mark.parametrize("adapter", list(EXPECTED))
def test_adapter_fails_exactly_its_expected_checks(
    adapter: str, certificates: dict[str, Certificate]
) -> None:
    cert = certificates[adapter]
    _, expected = EXPECTED[adapter]
    assert [r.name for r in cert.results] == list(CHECKS)
    details = {r.name: r.failures[:3] for r in cert.results if not r.passed}
    assert set(cert.failed) == expected, details
    assert cert.passed is (not expected)


def test_pricing_mismatches_show_both_receipts(certificates: dict[str, Certificate]) -> None:
    result = next(
        r
        for r in certificates["faulty_discount_after_tax"].results
        if r.name == "pricing_reference"
    )
    assert result.mismatches, "the after-tax dialect must move some receipts"
    first = result.mismatches[0]
    assert "tax" in first["diff"]
    assert first["expected"]["tax_total"] != first["actual"]["tax_total"]
    # and the check did cover what it claims: net and gross baskets, tiers, exclusivity...
    evidence = " ".join(result.evidence)
    for tag in ("gross", "net", "p3", "p6", "p8", "p7", "p11"):
        assert f"{tag}:" in evidence


def test_certificate_files(certificates: dict[str, Certificate], tmp_path: Path) -> None:
    cert = certificates["faulty_keeps_after_revoke"]
    paths = write_certificate(cert, tmp_path / "cert")
    data = json.loads(paths["certificate.json"].read_text())
    assert data["failed"] == ["ordering", "deactivation"] and data["passed"] is False
    suite = ET.parse(paths["junit.xml"]).getroot()
    assert suite.get("tests") == str(len(CHECKS)) and suite.get("failures") == "2"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["ordering", "deactivation"]
    page = paths["certificate.html"].read_text()
    assert "NOT CERTIFIED" in page and "deactivation" in page
    assert "<script src" not in page and "<link" not in page  # self-contained
