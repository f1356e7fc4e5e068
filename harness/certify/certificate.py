"""Write a certificate: certificate.json, junit.xml (one test case per check) and a
self-contained certificate.html (no external asset), each written atomically."""

from __future__ import annotations

import html
import json
from pathlib import Path
from xml.etree import ElementTree as ET

from harness.certify.runner import Certificate
from harness.report.atomic import write_text

__all__ = ["certificate_html", "junit_xml", "write_certificate"]


def junit_xml(cert: Certificate) -> str:
    suite = ET.Element(
        "testsuite",
        name=f"promoharness.certify.{cert.channel}",
        tests=str(len(cert.results)),
        failures=str(len(cert.failed)),
        errors="0",
        skipped="0",
        time=f"{cert.seconds:.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for key in ("url", "channel", "level", "contract_version", "run_id"):
        ET.SubElement(props, "property", name=key, value=str(getattr(cert, key)))
    for r in cert.results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"certify.{cert.channel}",
            name=r.name,
            time=f"{r.seconds:.3f}",
        )
        text = "\n".join(
            r.evidence + r.failures + [f"{m['case']}: {m['diff']}" for m in r.mismatches]
        )
        if not r.passed:
            message = (r.failures or [f"{len(r.mismatches)} receipt mismatch(es)"])[0]
            failure = ET.SubElement(case, "failure", message=message[:500], type="CheckFailed")
            failure.text = text
        else:
            ET.SubElement(case, "system-out").text = text
    ET.indent(suite)
    return f'<?xml version="1.0" encoding="utf-8"?>\n{ET.tostring(suite, encoding="unicode")}\n'


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;
vertical-align:top;text-align:left}.pass{color:#1a7f37;font-weight:bold}
.fail{color:#cf222e;font-weight:bold}pre{font-size:.8em;white-space:pre-wrap;margin:0}
.verdict{font-size:1.4em}details{margin:.3em 0}
"""


def _receipts(m: dict) -> str:
    exp = html.escape(json.dumps(m["expected"], indent=1))
    act = html.escape(json.dumps(m["actual"], indent=1))
    return (
        f"<details><summary>{html.escape(m['case'])} [{html.escape(', '.join(m['tags']))}]: "
        f"{html.escape(m['diff'])}</summary><table><tr><th>reference engine</th>"
        f"<th>adapter</th></tr><tr><td><pre>{exp}</pre></td><td><pre>{act}</pre></td></tr>"
        "</table></details>"
    )


def certificate_html(cert: Certificate) -> str:
    e = html.escape
    state = "pass" if cert.passed else "fail"
    verdict = "CERTIFIED" if cert.passed else f"NOT CERTIFIED ({len(cert.failed)} check(s) failed)"
    rows = []
    for r in cert.results:
        cls = "pass" if r.passed else "fail"
        items = "".join(f"<li>{e(t)}</li>" for t in r.failures + r.evidence)
        mismatches = "".join(_receipts(m) for m in r.mismatches[:50])
        rows.append(
            f"<tr><td><b>{e(r.name)}</b><br><small>{e(r.description)}</small></td>"
            f"<td class='{cls}'>{'PASS' if r.passed else 'FAIL'}</td><td>{r.seconds:.2f} s</td>"
            f"<td><ul>{items}</ul>{mismatches}</td></tr>"
        )
    meta = "".join(
        f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>"
        for k, v in (
            ("adapter", cert.url),
            ("channel", cert.channel),
            ("level", cert.level),
            ("contract", cert.contract_version),
            ("started (UTC)", cert.started),
            ("duration", f"{cert.seconds} s"),
            ("run id", cert.run_id),
            ("health", json.dumps(cert.health)),
        )
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>promoharness certificate: {e(cert.channel)} adapter</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Channel adapter certificate</h1><p class='verdict {state}'>"
        f"{e(verdict)}</p><table>{meta}</table><h2>Checks</h2><table><tr><th>check</th>"
        f"<th>result</th><th>time</th><th>evidence</th></tr>{''.join(rows)}</table></body></html>\n"
    )


def write_certificate(cert: Certificate, out: Path) -> dict[str, Path]:
    """Write the three files into ``out`` (created if missing); name -> path."""
    out.mkdir(parents=True, exist_ok=True)
    return {
        "certificate.json": write_text(
            out / "certificate.json", json.dumps(cert.to_dict(), indent=2, default=str) + "\n"
        ),
        "junit.xml": write_text(out / "junit.xml", junit_xml(cert)),
        "certificate.html": write_text(out / "certificate.html", certificate_html(cert)),
    }
