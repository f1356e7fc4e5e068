"""summary.json figures and PNG plots -> one self-contained report.html.

The page must open offline, from a CI artefact or a mail attachment: CSS is inline, the
plots are embedded as base64 data URIs, and nothing refers to a font, script or
stylesheet elsewhere. It reads the summary dict (the summary.json contract) and the PNG
files only, never live objects. Every piece of text from the run (scenario names,
descriptions, endpoint names, violation details) is escaped.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.report.figures import fmt_duration

if TYPE_CHECKING:  # pandas only for extra tables: ``run`` renders the page without it
    import pandas as pd

__all__ = ["CAPTIONS", "escape", "render_html"]

CAPTIONS: dict[str, str] = {
    "coverage": "Share of each channel's targets with the promotion over time since publish: "
    "applied at the endpoint (truth, solid) against acknowledged to the orchestrator "
    "(dashed). A gap between the two is the orchestrator being wrong about the estate.",
    "latency_cdf": "Propagation latency per channel (first 'applied' minus publish) as a CDF "
    "over the channel's targets; markers at T50, T95 and T99. Curves that stop short of "
    "100 % have endpoints that never applied.",
    "attempts": "Delivery attempts per second per channel, retries stacked in red on first "
    "attempts, against the channel's summed capacity (dashed when on scale). Channel- or "
    "region-wide outages are shaded; the grey strip along the top marks single endpoints' "
    "outages, darker where more overlap. Bursts of sends far apart in time (a publish, a "
    "rollback) get a zoomed column each. The last row is the endpoint with the highest "
    "attempt rate over its own capacity.",
    "recovery": "Around the fault whose storm lasted longest: attempts/s and goodput "
    "(successes/s) at its endpoints against their capacity (cut while the fault is on), the "
    "fault shaded, the pre-fault attempt rate with its ±10 % band, and when both rates came "
    "back within 10 % of their pre-fault level (recovery), if they did before the run ended.",
    "heatmap": "Every store by region, sorted by the time its first 'applied' arrived after "
    "the estate-wide publish (colour); dead-lettered stores hatched red (outlined over "
    "their colour when a dead-letter replay applied them later), stores never applied "
    "grey. Right: per region, T95, stores dead-lettered and stores never applied.",
    "rollback": "Per rollback, the share of endpoints in scope (active at the rollback) that "
    "have removed the promotion, with the deadline and resurrections (x); below, discount "
    "still granted at those endpoints after the rollback (leakage).",
    "sales": "Revenue and discount granted per minute by channel: the money side of the "
    "promotion, with publishes (green) and rollbacks (red) marked.",
}
MAX_VIOLATIONS = 1000
NOT_MEASURED = "not measured"  # an SLO's status when the run lacked its figure (no verdict)
# Endpoint names listed inline (late for start); the full list is in summary.json.
MAX_LISTED = 100

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 margin:0;color:#1d2430;background:#f5f6f8;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:1.5rem 1.5rem 4rem}
header{background:#fff;border-bottom:1px solid #d9dde3;padding:1.2rem 1.5rem}
header .inner{max-width:1180px;margin:0 auto}
h1{margin:0 .8rem 0 0;font-size:1.6rem;display:inline}
h2{margin:2.2rem 0 .6rem;font-size:1.25rem;border-bottom:2px solid #d9dde3;padding-bottom:.2rem}
h3{margin:1.4rem 0 .4rem;font-size:1.05rem}
.badge{display:inline-block;padding:.15rem .7rem;border-radius:.3rem;font-weight:700;
 color:#fff;vertical-align:middle;font-size:.95rem;letter-spacing:.04em}
.badge.pass{background:#1a7f37}.badge.fail{background:#cf222e}
.badge.unmeasured{background:#6e7781}
.meta{color:#57606a;margin:.5rem 0 0}.meta b{color:#1d2430}
.desc{margin:.6rem 0 0;max-width:60rem}
nav{margin-top:.6rem;font-size:.9rem}nav a{margin-right:.9rem;color:#0969da}
table{border-collapse:collapse;background:#fff;margin:.4rem 0 1rem;font-size:.9rem}
th,td{border:1px solid #d9dde3;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.ok{background:#dafbe1;color:#116329;font-weight:600}
td.bad{background:#ffebe9;color:#a40e26;font-weight:600}
td.skip{background:#fff8c5;color:#7d4e00}
.sub{color:#6e7781;font-size:.8rem;display:block}
.muted{color:#6e7781}
.note{background:#fff8c5;border:1px solid #d4a72c;padding:.4rem .6rem;max-width:60rem}
figure{background:#fff;border:1px solid #d9dde3;margin:1rem 0;padding:.6rem}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{color:#424a53;font-size:.88rem;margin-top:.4rem}
details{margin:.3rem 0 1rem}summary{cursor:pointer;color:#0969da}
code{background:#eef1f4;padding:0 .25rem;border-radius:.2rem;font-size:.85rem}
"""


def escape(value: Any) -> str:
    """Text for HTML, quotes included (it may land in an attribute)."""
    return html.escape(str(value), quote=True)


# --- number formats ---------------------------------------------------------------------


def _plain(x: Any) -> str:
    """A figure whose unit we do not know: integers with separators, floats to ~4 digits."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:,.1f}" if abs(x) >= 1000 else f"{x:.4g}"
    if isinstance(x, dict | list):
        return json.dumps(x, ensure_ascii=False)
    return str(x)


def _secs(x: float | None, missing: str = "—") -> str:
    return missing if x is None else f"{x:,.1f} s"


def _secs_min(x: float | None, missing: str) -> str:
    """Seconds with minutes underneath, already escaped HTML."""
    if x is None:
        return f'<span class="muted">{escape(missing)}</span>'
    return f'{x:,.1f} s<span class="sub">{x / 60:,.1f} min</span>'


def _money(x: float | None) -> str:
    return "—" if x is None else f"{x:,.2f}"


def _pct(x: float | None) -> str:
    if x is None:
        return "—"
    p = 100.0 * x
    return f"{p:.2f} %" if 0 < abs(p) < 1 else f"{p:.1f} %"


def _slo_value(x: Any, metric: str) -> str:
    last = metric.rsplit(".", 1)[-1]
    timed = last.startswith(("t5", "t9", "t1", "acked_t")) and last[-1].isdigit()
    number = isinstance(x, int | float) and not isinstance(x, bool)
    return _plain(x) + (" s" if timed and number else "")


# --- building blocks --------------------------------------------------------------------


def _table(
    head: Sequence[str], rows: Sequence[Sequence[str]], numeric: Collection[int] = ()
) -> str:
    """A table from already-escaped cells; columns in ``numeric`` right-aligned."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = ' class="num"' if i in numeric else ""
            cells.append(cell if cell.startswith("<td") else f"<td{cls}>{cell}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _verdict_cell(ok: bool, yes: str = "pass", no: str = "fail") -> str:
    return f'<td class="{"ok" if ok else "bad"}">{yes if ok else no}</td>'


def _kv(pairs: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{escape(k)}</th><td class='num'>{v}</td></tr>" for k, v in pairs)
    return f"<table>{rows}</table>"


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(heading)}</h2>{body}</section>'


# --- sections -----------------------------------------------------------------------------


def _header(summary: Mapping[str, Any], title: str, description: str) -> str:
    passed = bool(summary.get("passed"))
    # A saturated harness (live/load, harness/selfwatch.py) measured itself: no verdict.
    saturated = bool((summary.get("harness") or {}).get("saturated"))
    word = "HARNESS SATURATED" if saturated else "PASS" if passed else "FAIL"
    # SLOs on figures the run did not measure (harness.agreement) have no verdict.
    unmeasured = sum(1 for s in summary.get("slos") or [] if s.get("status") == NOT_MEASURED)
    slos = [s for s in summary.get("slos") or [] if s.get("status") != NOT_MEASURED]
    ok = sum(1 for s in slos if s.get("passed"))
    badge = "fail" if saturated else word.lower()
    if unmeasured and not slos and not saturated:  # every SLO unmeasured: nothing judged
        word, badge = "NOTHING MEASURED", "unmeasured"
    desc = "".join(f'<p class="desc">{escape(p)}</p>' for p in description.split("\n\n") if p)
    meta = (
        f"scenario <b>{escape(summary.get('scenario', ''))}</b> · "
        f"seed <b>{escape(summary.get('seed', ''))}</b> · "
        f"mode <b>{escape(summary.get('mode', ''))}</b> · "
        f"SLOs passed <b>{ok}/{len(slos)}</b>"
        + (f" · SLOs not measured <b>{unmeasured}</b>" if unmeasured else "")
    )
    links = [("slos", "SLOs"), ("propagation", "Propagation"), ("retry", "Retry storm")]
    links += [("rollbacks", "Rollbacks"), ("prices", "Prices"), ("funding", "Funding")]
    links += [("plots", "Plots")]
    nav = "".join(f'<a href="#{a}">{escape(t)}</a>' for a, t in links)
    return (
        f'<header><div class="inner"><h1>{escape(title)}</h1>'
        f'<span class="badge {badge}">{word}</span>'
        f'<p class="meta">{meta}</p>{desc}<nav>{nav}</nav></div></header>'
    )


def _slos(summary: Mapping[str, Any]) -> str:
    slos = summary.get("slos") or []
    if not slos:
        return _section("slos", "SLOs", '<p class="muted">No SLOs declared: the run passes.</p>')
    rows = [
        [
            escape(s.get("name", "")),
            f"<code>{escape(s.get('metric', ''))}</code>",
            escape(s.get("op", "")),
            escape(_slo_value(s.get("threshold"), str(s.get("metric", "")))),
            escape(_slo_value(s.get("value"), str(s.get("metric", "")))),
            f'<td class="skip">{escape(s.get("reason", ""))}</td>'
            if s.get("status") == NOT_MEASURED
            else _verdict_cell(bool(s.get("passed")))
            if s.get("trusted", True)
            else _verdict_cell(False, no="untrustworthy: harness saturated"),
        ]
        for s in slos
    ]
    head = ["SLO", "metric", "op", "threshold", "value", "result"]
    return _section("slos", "SLOs", _table(head, rows, {3, 4}))


def _ghost_cell(g: Mapping[str, Any] | None) -> str:
    if g is None:
        return "not measured"
    if not g:
        return "—"
    return f"{g.get('applied_not_acked', 0):,} / {g.get('acked_not_applied', 0):,}"


def _propagation(summary: Mapping[str, Any]) -> str:
    prop = summary.get("propagation") or {}
    blocks = [("overall", prop.get("overall") or {})]
    blocks += [(f"channel {c}", b) for c, b in (prop.get("by_channel") or {}).items()]
    rows = []
    for name, b in blocks:
        missing = "not reached" if b.get("targets") else "—"
        rows.append(
            [escape(name), _plain(b.get("targets")), _plain(b.get("applied"))]
            + [_secs_min(b.get(f"t{p}"), missing) for p in (50, 95, 99, 100)]
            + [_secs_min(b.get("acked_t95"), missing), escape(_ghost_cell(b.get("ghosts")))]
        )
    head = ["scope", "targets", "applied", "T50", "T95", "T99", "T100", "acked T95"]
    head.append("ghosts: applied not acked / acked not applied")
    body = _table(head, rows, set(range(1, 10)))
    examples = ((prop.get("overall") or {}).get("ghosts") or {}).get("examples") or []
    if examples:
        ex = [[escape(e["promo"]), escape(e["endpoint"]), escape(e["kind"])] for e in examples]
        table = _table(["promo", "endpoint", "ghost"], ex)
        body += f"<details><summary>ghost examples ({len(ex)})</summary>{table}</details>"
    for promo, p in (prop.get("by_promo") or {}).items():
        late = p.get("late_for_start")
        if late:
            names = late.get("endpoints") or []
            eps = ", ".join(names[:MAX_LISTED])
            eps += f" … and {len(names) - MAX_LISTED:,} more" if len(names) > MAX_LISTED else ""
            body += (
                f"<p>{escape(promo)}: {late['count']:,} targets not applied by the scheduled "
                f"start ({_secs(late.get('start'))}).</p>"
            )
            if eps:
                body += f"<details><summary>endpoints</summary><p>{escape(eps)}</p></details>"
    return _section("propagation", "Propagation (seconds after publish; truth)", body)


def _retry(summary: Mapping[str, Any]) -> str:
    rs = summary.get("retry_storm") or {}
    peak = rs.get("peak") or {}
    ratio = rs.get("peak_attempt_rate_over_capacity")
    where = ""
    if peak.get("endpoint"):
        where = (
            f'<span class="sub">{escape(peak["endpoint"])}: {_plain(peak.get("attempts"))} '
            f"attempts in the 1 s window at {_secs(peak.get('t'))}, capacity "
            f"{_plain(peak.get('capacity'))}/s</span>"
        )
    share = rs.get("retry_share") or {}
    amp = rs.get("amplification")
    pairs = [
        (
            "attempts / distinct deliveries",
            f"{_plain(rs.get('attempts'))} / {_plain(rs.get('deliveries'))}",
        ),
        ("amplification", "—" if amp is None else f"{amp:.2f}×"),
        ("peak attempt rate / capacity", ("—" if ratio is None else f"{ratio:.2f}×") + where),
        ("dead-lettered deliveries", _plain(rs.get("dead_lettered"))),
        ("retry share of sends, overall", _pct(share.get("overall"))),
        ("retry share during outages", _pct(share.get("during_outage"))),
        ("retry share in the 60 s after outages", _pct(share.get("after_outage"))),
        ("throttled", _plain(rs.get("throttled"))),
        ("breaker opened", _plain(rs.get("breaker_opened"))),
        ("retry budget exhausted", _plain(rs.get("budget_exhausted"))),
        (
            "recovery after faults (longest)",
            "sustained: the storm outlived its fault"
            if rs.get("sustained")
            else ("—" if rs.get("recovery_seconds") is None else _secs(rs["recovery_seconds"])),
        ),
    ]
    return _section("retry", "Retry storm", _kv(pairs))


def _rollbacks(summary: Mapping[str, Any]) -> str:
    rbs = summary.get("rollbacks") or []
    total = f"<p>Leakage over all rollbacks: <b>{_money(summary.get('leakage_value'))}</b></p>"
    if not rbs:
        return _section("rollbacks", "Rollbacks", '<p class="muted">No rollback in this run.</p>')
    rows = []
    for i, r in enumerate(rbs):
        scope = json.dumps(r.get("scope"), ensure_ascii=False)
        rows.append(
            [
                str(i),
                escape(r.get("promo", "")),
                _secs(r.get("t")),
                _secs(r.get("deadline")),
                f"<code>{escape(scope)}</code>",
                _plain(r.get("scope_endpoints")),
                _verdict_cell(r.get("verdict") == "pass"),
                _plain(len(r.get("violations") or [])),
                _money(r.get("leakage_value")),
            ]
        )
    head = ["#", "promo", "at", "deadline", "scope", "endpoints", "verdict", "violations"]
    body = total + _table([*head, "leakage"], rows, {0, 2, 3, 5, 7, 8})
    for i, r in enumerate(rbs):
        vs = r.get("violations") or []
        if not vs:
            continue
        shown = [
            [escape(v["endpoint"]), _secs(v.get("t")), escape(v["property"]), escape(v["detail"])]
            for v in vs[:MAX_VIOLATIONS]
        ]
        more = len(vs) - len(shown)
        body += f"<h3>Rollback #{i} ({escape(r.get('promo', ''))}): {len(vs):,} violations</h3>"
        body += _table(["endpoint", "time", "property", "detail"], shown, {1})
        if more > 0:
            body += f'<p class="muted">… and {more:,} more in summary.json.</p>'
    return _section("rollbacks", "Rollbacks", body)


def _prices(summary: Mapping[str, Any]) -> str:
    pc = summary.get("price_consistency") or {}
    if not pc.get("samples"):
        return _section("prices", "Price consistency", '<p class="muted">No price samples.</p>')
    pairs = [
        ("samples", _plain(pc.get("samples"))),
        ("mismatched samples", _plain(pc.get("mismatched"))),
        ("mismatch rate", _pct(pc.get("mismatch_rate"))),
        ("spread value (sum of max − min)", _money(pc.get("spread_value"))),
    ]
    body = _kv(pairs) + _by_design(pc)
    by_pair = pc.get("by_channel_pair") or {}
    if by_pair:
        rows = [[escape(k.replace("|", " ↔ ")), _plain(v)] for k, v in by_pair.items()]
        body += "<h3>Disagreeing samples by channel pair</h3>"
        body += _table(["channels", "samples"], rows, {1})
    examples = pc.get("examples") or []
    if examples:
        rows = []
        for ex in examples:
            chans = "; ".join(
                f"{ch}: {', '.join(_money(p) for p in ps)}"
                for ch, ps in (ex.get("by_channel") or {}).items()
            )
            sku, sample = escape(ex.get("sku", "")), escape(ex.get("sample", ""))
            rows.append([sku, sample, _money(ex.get("spread")), escape(chans)])
        body += "<h3>Widest mismatches</h3>"
        body += _table(["sku", "sample", "spread", "prices by channel"], rows, {2})
    return _section("prices", "Price consistency", body)


def _by_design(pc: Mapping[str, Any]) -> str:
    """Say so when mismatches fall in a store-local opening window: there the stores whose
    local start has come quote the promotion and the others do not yet, by design."""
    window = pc.get("opening_window") or {}
    inside, total = int(window.get("mismatched") or 0), int(pc.get("mismatched") or 0)
    if not inside or not total:
        return ""
    spans = "; ".join(
        f"{escape(p)} from t={fmt_duration(w.get('first') or 0)} "
        f"to t={fmt_duration(w.get('last') or 0)}"
        for p, w in (window.get("promos") or {}).items()
    )
    share = "All" if inside == total else f"{inside:,} of {total:,}"
    return (
        f'<p class="note"><b>By design:</b> {share} mismatched samples were taken while a '
        "store-local promotion had opened in some time zones and not yet in others "
        f"({spans}, scenario time). There a store whose local start has come quotes the "
        "promotion and one further west does not yet: the rate measures the time-zone "
        "window, not a propagation fault.</p>"
    )


def _funding(summary: Mapping[str, Any]) -> str:
    fund = summary.get("funding") or {}
    if not fund:
        return _section("funding", "Funding", '<p class="muted">No promotion funding data.</p>')
    rows = []
    for promo, f in fund.items():
        over = f.get("overrun")
        over_cell = (
            "<td class='num'>—</td>"
            if over is None
            else f"<td class='num {'bad' if over > 0 else 'ok'}'>{_money(over)}</td>"
        )
        granted, budget, use = (
            _money(f.get("granted")),
            _money(f.get("budget")),
            _pct(f.get("utilisation")),
        )
        rows.append([escape(promo), granted, budget, use, over_cell, _plain(f.get("discounts"))])
    head = ["promotion", "granted", "budget", "utilisation", "overrun", "discounts"]
    return _section("funding", "Funding per promotion", _table(head, rows, {1, 2, 3, 5}))


def _plots(images: Mapping[str, Path]) -> str:
    if not images:
        return _section("plots", "Plots", '<p class="muted">Nothing to plot.</p>')
    figures = []
    for name, path in images.items():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        caption = CAPTIONS.get(name, name)
        figures.append(
            f'<figure id="plot-{escape(name)}"><img alt="{escape(name)} plot" '
            f'src="data:image/png;base64,{data}"><figcaption>{escape(caption)}</figcaption></figure>'
        )
    return _section("plots", "Plots", "".join(figures))


def _extra(name: str, frame: pd.DataFrame) -> str:
    import pandas as pd

    keep_index = not isinstance(frame.index, pd.RangeIndex)
    table = frame.to_html(
        classes="extra", border=0, index=keep_index, escape=True, na_rep="—", float_format=_plain
    )
    return f"<section><h2>{escape(name)}</h2>{table}</section>"


def _not_measured(summary: Mapping[str, Any]) -> str:
    """For a system under test: what was measured from the estate, and what could not be."""
    sut = summary.get("sut")
    if not sut:
        return ""
    missing = summary.get("not_measured") or []
    items = "".join(f"<li><code>{escape(str(m))}</code></li>" for m in missing)
    return (
        f"<section><h2>System under test: {escape(str(sut))}</h2><p>Every figure below "
        "comes from the estate's ground truth (what the endpoints received and applied), "
        "not from the system's own records.</p>"
        + (
            f"<p>Not measured (they need the system's own view or internals; shown as "
            f"&ldquo;not measured&rdquo; or &mdash;, never as zero):</p><ul>{items}</ul>"
            if items
            else ""
        )
        + "</section>"
    )


def render_html(
    summary: Mapping[str, Any],
    images: Mapping[str, Path],
    *,
    title: str,
    description: str,
    extra_tables: Sequence[tuple[str, pd.DataFrame]] = (),
) -> str:
    """The report page: header with verdict, SLOs, propagation, retry storm, rollbacks,
    price consistency, funding, the plots (``images``: name -> PNG, captioned by
    ``CAPTIONS``) and any ``extra_tables`` (title, DataFrame)."""
    parts = [
        _not_measured(summary),
        _slos(summary),
        _propagation(summary),
        _retry(summary),
        _rollbacks(summary),
        _prices(summary),
        _funding(summary),
        _plots(images),
        *(_extra(name, frame) for name, frame in extra_tables),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f"{_header(summary, title, description)}<main>{''.join(parts)}</main></body></html>\n"
    )
