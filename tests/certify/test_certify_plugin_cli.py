"""The contract document, the CLI and the pytest plugin of the certification kit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from certify_support import TOKEN, load_adapter, serve_in_thread
from typer.testing import CliRunner

from harness.certify.cli import certify_app
from harness.certify.contract import contract_document, load_contract, snapshot_name, validate
from harness.certify.runner import CHECKS
from harness.domain.promotion import CHANNELS

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("channel", CHANNELS)
def test_shipped_contract_equals_the_generated_one(channel: str) -> None:
    shipped = Path(__file__).parents[2] / "harness/certify/contract" / snapshot_name(channel)
    assert json.loads(shipped.read_text()) == contract_document(channel)
    doc = load_contract(channel)
    assert doc["openapi"].startswith("3.1") and doc["info"]["version"] == "1.0.0"
    assert set(doc["paths"]) == {"/promotions", "/price", "/health"}
    assert set(doc["paths"]["/promotions"]["post"]["responses"]) >= {"200", "202", "422", "429"}
    assert "ack" in doc["webhooks"]


def test_contract_schemas_validate() -> None:
    doc = load_contract("pos")
    assert validate(doc, "DeliveryAnswer", {"outcome": "stale"}) == []
    assert validate(doc, "AckBody", {"endpoint": "web", "promo": "P", "version": 1, "op": "x"})


def test_cli_contract_and_bad_input() -> None:
    runner = CliRunner()
    result = runner.invoke(certify_app, ["contract", "ecommerce"])
    assert result.exit_code == 0 and json.loads(result.output)["x-channel"] == "ecommerce"
    assert runner.invoke(certify_app, ["contract", "fax"]).exit_code == 2
    bad = runner.invoke(
        certify_app, ["certify", "http://127.0.0.1:9", "--channel", "pos", "--token", "t"]
    )
    assert bad.exit_code == 2 and "cannot reach" in bad.output
    # no token: named as such, not as an unreachable adapter
    no_token = runner.invoke(certify_app, ["certify", "http://127.0.0.1:9", "--channel", "pos"])
    assert no_token.exit_code == 2 and "no bearer token" in no_token.output
    assert runner.invoke(certify_app, ["certify", "x", "--channel", "pos"]).exit_code == 2


def test_cli_certify_writes_a_certificate(tmp_path: Path) -> None:
    url, stop = serve_in_thread(load_adapter("faulty_discount_after_tax").create_app(TOKEN))
    try:
        args = [
            "certify",
            url,
            "--channel",
            "marketplace",
            "--token",
            TOKEN,
            "--out",
            str(tmp_path),
            "--latency-seconds",
            "0.5",
        ]
        result = CliRunner().invoke(certify_app, args)
    finally:
        stop()
    assert result.exit_code == 1, result.output
    assert "FAIL  pricing_reference" in result.output
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {"certificate.html", "certificate.json", "junit.xml"}


def test_pytest_plugin_one_test_per_check(pytester: pytest.Pytester) -> None:
    url, stop = serve_in_thread(load_adapter("reference_pos").create_app(TOKEN))
    try:
        # The plugin is found through its pytest11 entry point, as in a team's own suite.
        result = pytester.runpytest(
            "--promoharness-certify",
            url,
            "--promoharness-channel",
            "pos",
            "--promoharness-token",
            TOKEN,
            "--promoharness-latency-seconds",
            "0.5",
            # the latency check's verdict is this machine's speed against an absolute
            # limit; test_certify_timing.py tests it against a deliberately slow adapter
            "-k",
            "not latency",
            "-v",
            f"--junitxml={pytester.path / 'out' / 'junit.xml'}",
        )
    finally:
        stop()
    result.assert_outcomes(passed=len(CHECKS) - 1, deselected=1)
    assert f"collected {len(CHECKS)} items / 1 deselected" in result.stdout.str()
    result.stdout.fnmatch_lines(["promoharness.certify.pos::idempotency PASSED*"])
    suite = ET.parse(pytester.path / "out" / "junit.xml").getroot()
    cases = list(suite.iter("testcase"))
    assert {c.get("classname") for c in cases} == {"promoharness.certify.pos"}
    assert {c.get("name") for c in cases} == set(CHECKS) - {"latency"}
    cert = json.loads((pytester.path / "out" / "promoharness-certificate-pos.json").read_text())
    # the deselected check did not run at all
    assert [r["name"] for r in cert["results"]] == [c for c in CHECKS if c != "latency"]
    assert (pytester.path / "out" / "promoharness-certificate-pos.html").exists()


def test_pytest_plugin_collect_only_lists_the_checks(pytester: pytest.Pytester) -> None:
    # Collection alone contacts nothing: the URL need not answer.
    args = ["--promoharness-certify", "http://127.0.0.1:9", "--promoharness-channel", "ecommerce"]
    result = pytester.runpytest(*args, "--collect-only", "-q", "-k", "auth")
    result.stdout.fnmatch_lines(
        ["promoharness.certify.ecommerce::auth", f"*1/{len(CHECKS)} tests collected*"]
    )
    assert result.ret == 0


def test_pytest_plugin_reports_a_failing_check(pytester: pytest.Pytester) -> None:
    url, stop = serve_in_thread(load_adapter("faulty_not_idempotent").create_app(TOKEN))
    try:
        # The plugin is found through its pytest11 entry point, as in a team's own suite.
        result = pytester.runpytest(
            "--promoharness-certify",
            url,
            "--promoharness-channel",
            "pos",
            "--promoharness-token",
            TOKEN,
            "--promoharness-latency-seconds",
            "0.5",
            "-k",
            "not latency",
        )
    finally:
        stop()
    result.assert_outcomes(passed=len(CHECKS) - 3, failed=2, deselected=1)
    result.stdout.fnmatch_lines(["*check 'idempotency' failed*"])
