"""compare.html: runs of one scenario side by side on one self-contained page.

Like report.html, it opens offline: inline CSS, plots embedded as base64 PNG, every piece
of text from the runs escaped. It reads the compare.json body (``harness.compare``) for
the tables and each run's event log for the overlaid plots (``compare_plots``). A
comparison of runs of different scenarios, seeds or modes says so first, in red.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from harness.compare import HIGHER, LOWER, NOT_MEASURED, NOT_MEASURED_LIVE, NOT_REACHED, Run
from harness.report import compare_plots as cp
from harness.report.html import CSS, escape

__all__ = ["NAMES", "render_compare"]

# Row names for the figures everyone knows; any other row shows its summary.json path.
NAMES = {
    "propagation.overall.t50": "propagation T50 (truth)",
    "propagation.overall.t95": "propagation T95 (truth)",
    "propagation.overall.t99": "propagation T99 (truth)",
    "propagation.overall.t100": "propagation T100 (truth)",
    "propagation.overall.acked_t95": "acknowledged T95 (the system's belief)",
    "propagation.overall.applied": "targets applied",
    "propagation.overall.ghosts.applied_not_acked": "ghosts: applied, never acked",
    "propagation.overall.ghosts.acked_not_applied": "ghosts: acked, never applied",
    "retry_storm.amplification": "retry amplification (attempts / deliveries)",
    "retry_storm.peak_attempt_rate_over_capacity": "peak attempt rate / capacity",
    "retry_storm.dead_lettered": "dead-lettered deliveries",
    "retry_storm.attempts": "delivery attempts",
    "retry_storm.retry_share.overall": "retry share of sends",
    "retry_storm.retry_share.during_outage": "retry share during outages",
    "leakage_value": "rollback leakage (discount after rollback)",
    "price_consistency.mismatch_rate": "price mismatch rate across channels",
    "price_consistency.spread_value": "price spread value",
    "passed": "all SLOs passed",
}
CAPTIONS = {
    "coverage": "Share of all targets with the promotion over time since their publish, one "
    "curve per run: applied at the endpoint (ground truth, thick) and acknowledged to the "
    "system (dotted, only where the run saw acknowledgements).",
    "latency_cdf": "Truth propagation latency per channel as a CDF over the channel's targets, "
    "runs overlaid on one x axis. Curves that stop short of 100 % have targets that never "
    "applied.",
    "storms": "Delivery attempts per second as the endpoints received them, one row per run, "
    "all rows on one y scale: a taller red band is a bigger retry storm. Publishes (green) and "
    "rollbacks (red) dotted; outages shaded.",
    "rollbacks": "Per rollback, the share of in-scope endpoints carrying the promotion at the "
    "rollback that have removed it, over time since the rollback; the deadline dashed.",
}
EXTRA_CSS = """
.alarm{background:#ffebe9;border:2px solid #cf222e;color:#82071e;padding:.7rem 1rem;
 margin:1rem 0;font-size:1.02rem}
.alarm h2{border:0;margin:0 0 .3rem;color:#a40e26}
.okay{background:#dafbe1;border:1px solid #4ac26b;padding:.4rem .8rem;margin:1rem 0}
td.best{background:#dafbe1;color:#116329;font-weight:700}
td.nm{color:#6e7781;font-style:italic;text-align:center}
td.nr{color:#a40e26;text-align:right}
.path{color:#6e7781;font-size:.75rem;display:block}
"""
MAX_LISTED = 100


def _fmt(metric: str, value: Any) -> str:
    """A measured value as text, in the figure's unit."""
    last = metric.rsplit(".", 1)[-1]
    if isinstance(value, bool):
        return "pass" if value else "fail"
    if not isinstance(value, int | float):
        return escape(json.dumps(value, ensure_ascii=False))
    if last in {"t50", "t95", "t99", "t100", "acked_t95"}:
        sub = f'<span class="sub">{value / 60:,.1f} min</span>' if value >= 120 else ""
        return f"{value:,.2f} s{sub}"
    if last in {"amplification", "peak_attempt_rate_over_capacity"}:
        return f"{value:,.2f}×"
    if last in {"mismatch_rate", "overall", "during_outage", "after_outage"}:
        p = 100.0 * value
        return f"{p:.2f} %" if 0 < abs(p) < 1 else f"{p:.1f} %"
    if last in {"leakage_value", "spread_value"}:
        return f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def _cell(metric: str, cell: Mapping[str, Any], best: bool) -> str:
    status = cell["status"]
    if status in (NOT_MEASURED, NOT_MEASURED_LIVE):
        return f'<td class="nm">{status}</td>'
    if status == NOT_REACHED:
        return '<td class="nr">not reached</td>'
    text = _fmt(metric, cell["value"])
    return f'<td class="num best">★ {text}</td>' if best else f'<td class="num">{text}</td>'


def _figures(body: Mapping[str, Any], labels: Sequence[str]) -> str:
    rows = []
    for row in body["figures"]:
        metric = row["metric"]
        better = {LOWER: "↓ lower", HIGHER: "↑ higher"}.get(row["better"], "—")
        name = f"{escape(NAMES.get(metric, metric))}<span class='path'>{escape(metric)}</span>"
        cells = "".join(_cell(metric, row["cells"][lab], lab in row["best"]) for lab in labels)
        rows.append(f"<tr><th>{name}</th><td>{better}</td>{cells}</tr>")
    note = (
        "<p class='muted'>★ best value of the row (ties all marked; none when every run "
        "measured the same). <i>not measured</i>: the run could not see this figure (e.g. a "
        "system under test whose own view cannot be read); it is never counted as zero nor "
        "as best. <i>not measured live</i>: a figure summed from shoppers' sales or sampled "
        "quotes, in a run that had no such shoppers (a <code>live</code> run; quotes under "
        "<code>load</code>). <i>not reached</i>: measured, and that share of targets never "
        "applied — the worst value of its row.</p>"
    )
    table = _table(["figure", "better", *labels], rows)
    return _section("figures", "Headline figures", note + table)


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(heading)}</h2>{body}</section>'


def _mismatch(body: Mapping[str, Any]) -> str:
    found = body["mismatches"]
    if not found:
        run = body["runs"][0]
        return (
            f"<p class='okay'>Comparable: every run is of scenario <b>{escape(run['scenario'])}"
            f"</b>, seed <b>{escape(run['seed'])}</b>, mode <b>{escape(run['mode'])}</b>.</p>"
        )
    items = "".join(
        f"<li><b>different {escape(m['field'])}</b>: "
        + "; ".join(f"{escape(lab)} = <code>{escape(v)}</code>" for lab, v in m["values"].items())
        + "</li>"
        for m in found
    )
    return (
        "<div class='alarm'><h2>⚠ These runs are not comparable as they stand</h2>"
        "<p>A comparison means something only for runs of one scenario and seed (and one "
        f"mode: a virtual-time run is not a live one). Here:</p><ul>{items}</ul>"
        "<p>The figures below are shown side by side anyway; read differences with this in "
        "mind.</p></div>"
    )


def _table(head: Sequence[str], rows: Sequence[str]) -> str:
    """A table: ``head`` cells as text (escaped here), ``rows`` already-built <tr> HTML."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _runs(runs: Sequence[Run], out_dir: str | None) -> str:
    rows = []
    for run in runs:
        s = run.summary
        # An SLO on a figure the run did not measure has no verdict (harness.agreement).
        slos = [x for x in s.get("slos") or [] if x.get("status") != "not measured"]
        ok = sum(1 for x in slos if x.get("passed"))
        unmeasured = len(s.get("slos") or []) - len(slos)
        aside = f" ({unmeasured} not measured)" if unmeasured else ""
        report = run.path / "report.html"
        link = escape(run.path)
        if report.is_file() and out_dir:
            href = os.path.relpath(report.resolve(), out_dir)
            link = f'<a href="{escape(href)}">{escape(run.path)}</a>'
        verdict = "ok" if s.get("passed") else "bad"
        rows.append(
            f"<tr><th>{escape(run.label)}</th><td>{link}</td><td>{escape(s.get('scenario'))}</td>"
            f"<td class='num'>{escape(s.get('seed'))}</td><td>{escape(s.get('mode'))}</td>"
            f"<td class='{verdict}'>{ok}/{len(slos)} SLOs{aside}</td></tr>"
        )
    head = ["run", "folder (its report)", "scenario", "seed", "mode", "SLOs passed"]
    return _section("runs", "Runs", _table(head, rows))


def _verdict(r: Mapping[str, Any] | None) -> str:
    """One run's cell for one rollback: verdict, violation count, leakage."""
    if r is None:
        return "<td class='nm'>no such rollback</td>"
    leak = r.get("leakage_value")
    leak_text = "" if leak is None else f", leakage {leak:,.2f}"
    if r.get("leakage_status") == NOT_MEASURED_LIVE:
        leak_text = f", leakage {NOT_MEASURED_LIVE}"
    return (
        f"<td class='{'ok' if r['verdict'] == 'pass' else 'bad'}'>{escape(r['verdict'])}"
        f"<span class='sub'>{r['violation_count']:,} violations{leak_text}</span></td>"
    )


def _violations(index: int, label: str, r: Mapping[str, Any]) -> str:
    """The run's violations of one rollback, folded (the first ``MAX_LISTED``)."""
    rows = [
        f"<tr><td>{escape(v.get('endpoint', ''))}</td><td class='num'>{escape(v.get('t'))}</td>"
        f"<td>{escape(v.get('property', ''))}</td><td>{escape(v.get('detail', ''))}</td></tr>"
        for v in r["violations"][:MAX_LISTED]
    ]
    more = r["violation_count"] - len(rows)
    tail = f"<p class='muted'>… and {more:,} more in the run's summary.json.</p>" if more else ""
    table = _table(["endpoint", "time (s)", "property", "detail"], rows)
    return (
        f"<details><summary>rollback #{index} · {escape(label)}: {r['violation_count']:,} "
        f"violations</summary>{table}{tail}</details>"
    )


def _rollbacks(body: Mapping[str, Any], labels: Sequence[str]) -> str:
    rbs = body["rollbacks"]
    if not rbs:
        empty = "<p class='muted'>No run has a rollback.</p>"
        return _section("rollbacks", "Rollback verdicts", empty)
    rows, details = [], []
    for rb in rbs:
        scope = escape(json.dumps(rb.get("scope"), ensure_ascii=False))
        at = rb.get("t")
        when = f"at {at:,.1f} s" if isinstance(at, int | float) else ""
        name = (
            f"<th>#{rb['index']} {escape(rb.get('promo', ''))} {when}<span class='path'>"
            f"scope {scope}, deadline {escape(rb.get('deadline'))} s</span></th>"
        )
        rows.append("<tr>" + name + "".join(_verdict(rb["runs"][lab]) for lab in labels) + "</tr>")
        details += [
            _violations(rb["index"], lab, rb["runs"][lab])
            for lab in labels
            if rb["runs"][lab] and rb["runs"][lab]["violations"]
        ]
    table = _table(["rollback", *labels], rows)
    return _section("rollbacks", "Rollback verdicts", table + "".join(details))


def _plots(runs: Sequence[Run]) -> str:
    targets = [cp.publish_targets(run.events) for run in runs]
    images = {
        "coverage": cp.plot_coverage(runs, targets),
        "latency_cdf": cp.plot_latency_cdf(runs, targets),
        "storms": cp.plot_storms(runs, [run.summary for run in runs]),
        "rollbacks": cp.plot_rollbacks(runs),
    }
    figures = []
    for name, png in images.items():
        if png is None:
            continue
        data = base64.b64encode(png).decode("ascii")
        figures.append(
            f'<figure id="plot-{name}"><img alt="{name} plot" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(CAPTIONS[name])}</figcaption></figure>"
        )
    if not figures:
        return _section("plots", "Plots", "<p class='muted'>Nothing to plot.</p>")
    return _section("plots", "Plots", "".join(figures))


def render_compare(runs: Sequence[Run], body: Mapping[str, Any], out_dir: str | None = None) -> str:
    """The compare page for ``runs`` and their compare.json ``body``; ``out_dir`` (where
    the page goes) makes each run's report.html a relative link."""
    labels = [run.label for run in runs]
    scenarios = sorted({str(r["scenario"]) for r in body["runs"]})
    title = f"Comparison of {len(runs)} runs: {', '.join(scenarios)}"
    nav = "".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in (
            ("runs", "Runs"),
            ("figures", "Figures"),
            ("plots", "Plots"),
            ("rollbacks", "Rollbacks"),
        )
    )
    header = (
        f'<header><div class="inner"><h1>{escape(title)}</h1>'
        f"<p class='meta'>{' · '.join(f'<b>{escape(lab)}</b>' for lab in labels)}</p>"
        f"<nav>{nav}</nav></div></header>"
    )
    parts = [
        _mismatch(body),
        _runs(runs, out_dir),
        _figures(body, labels),
        _plots(runs),
        _rollbacks(body, labels),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}{EXTRA_CSS}</style></head><body>"
        f"{header}<main>{''.join(parts)}</main></body></html>\n"
    )
