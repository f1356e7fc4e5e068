"""summary.json SLO verdicts -> junit.xml: one test case per SLO, so CI shows each gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET


def junit_xml(summary: dict[str, Any]) -> str:
    slos = summary.get("slos", [])
    # An SLO on a figure the run did not measure (harness.agreement) is skipped, no verdict.
    skipped = [slo for slo in slos if slo.get("status") == "not measured"]
    failures = sum(1 for slo in slos if not slo["passed"] and slo not in skipped)
    suite = ET.Element(
        "testsuite",
        name=f"promoharness.{summary.get('mode', 'sim')}.{summary.get('scenario', '')}",
        tests=str(len(slos)),
        failures=str(failures),
        errors="0",
        skipped=str(len(skipped)),
    )
    props = ET.SubElement(suite, "properties")
    for key in ("scenario", "seed", "mode"):
        ET.SubElement(props, "property", name=key, value=str(summary.get(key, "")))
    if "harness" in summary:  # live/load: a saturated harness makes the failures no verdict
        saturated = str(bool(summary["harness"]["saturated"])).lower()
        ET.SubElement(props, "property", name="harness_saturated", value=saturated)
    for slo in slos:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"slo.{summary.get('scenario', '')}",
            name=str(slo["name"]),
        )
        text = f"{slo['metric']} = {slo['value']!r}, required {slo['op']} {slo['threshold']!r}"
        if slo in skipped:
            ET.SubElement(case, "skipped", message=str(slo["reason"]))
        elif not slo["passed"]:
            failure = ET.SubElement(case, "failure", message=text, type="SLOViolation")
            failure.text = text
        else:
            ET.SubElement(case, "system-out").text = text
    ET.indent(suite)
    body = ET.tostring(suite, encoding="unicode")
    return f'<?xml version="1.0" encoding="utf-8"?>\n{body}\n'


def write_junit(summary: dict[str, Any], path: Path) -> Path:
    path.write_text(junit_xml(summary), encoding="utf-8")
    return path
