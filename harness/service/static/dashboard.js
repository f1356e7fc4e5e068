// promoharness live dashboard: polls the orchestrator API once a second with the API key
// kept in sessionStorage, draws a store heatmap and three small SVG charts. No libraries.
"use strict";

const KEY_STORE = "promoharness-api-key";
const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
const CATEGORIES = [
  ["pending", "pending"], ["inflight", "in flight"], ["applied", "applied"],
  ["failed", "failed (retrying)"], ["dead", "dead-lettered"], ["revoked", "revoked"],
  ["none", "not targeted"],
];
const CHANNEL_COLORS = {
  all: "#111827", pos: "#16a34a", ecommerce: "#2563eb", loyalty: "#d97706",
  marketplace: "#db2777", erp: "#0891b2",
};

// refused: the last refused action's message, kept on the banner until the key changes
// or an action succeeds (a poll that works must not hide it).
const view = { key: sessionStorage.getItem(KEY_STORE) || "", promo: null, inventory: null, refused: "" };
const $ = (id) => document.getElementById(id);

// --- HTTP ------------------------------------------------------------------------------------

async function api(path, options = {}) {
  const headers = { "Content-Type": "application/json" };
  if (view.key) headers["X-API-Key"] = view.key;
  let resp;
  try {
    resp = await fetch(path, { ...options, headers });
  } catch (err) {
    return { ok: false, status: 0, body: { detail: "server unreachable" } };
  }
  let body = null;
  try { body = await resp.json(); } catch (err) { body = null; }
  return { ok: resp.ok, status: resp.status, body };
}

function detailOf(r) {
  const d = r.body && r.body.detail;
  if (typeof d === "string") return d;
  return d ? JSON.stringify(d) : `HTTP ${r.status}`;
}

function refusal(r) {
  if (r.status === 401) return `Refused (401 Unauthorized): ${detailOf(r)}`;
  if (r.status === 403) return `Refused (403 Forbidden): ${detailOf(r)}`;
  return `Error (${r.status || "network"}): ${detailOf(r)}`;
}

function banner(text) {
  const el = $("banner");
  el.textContent = text || "";
  el.hidden = !text;
}

// --- small DOM helpers -----------------------------------------------------------------------

function el(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== "") node.textContent = text;
  return node;
}

function svgEl(tag, attrs = {}, text = "") {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== "") node.textContent = text;
  return node;
}

function fillSelect(select, values) {
  const keep = select.value;
  select.replaceChildren(...values.map((v) => el("option", { value: v }, v)));
  if (values.includes(keep)) select.value = keep;
}

// --- heatmap ---------------------------------------------------------------------------------

function category(row) {
  if (!row) return "none";
  switch (row.state) {
    case "acked": return row.op === "revoke" ? "revoked" : "applied";
    case "revoked": return "revoked";
    case "dead_lettered": return "dead";
    case "retry_wait": return "failed";
    case "in_flight": case "awaiting_ack": return "inflight";
    default: return "pending";
  }
}

function drawLegend() {
  $("legend").replaceChildren(...CATEGORIES.map(([cat, label]) => {
    const li = el("li");
    li.append(el("span", { class: `swatch cat-${cat}` }), document.createTextNode(label));
    return li;
  }));
}

function drawHeatmap(rows) {
  const byEndpoint = new Map(rows.map((r) => [r.endpoint, r]));
  const groups = new Map();
  for (const e of view.inventory.endpoints) {
    const name = e.channel === "pos" ? (e.region || "no region") : "other channels";
    if (!groups.has(name)) groups.set(name, []);
    groups.get(name).push(e);
  }
  const order = [...view.inventory.regions, "no region", "other channels"].filter((g) => groups.has(g));
  const out = order.map((name) => {
    const members = groups.get(name);
    const cells = el("div", { class: "cells" });
    const counts = {};
    for (const e of members) {
      const cat = category(byEndpoint.get(e.endpoint));
      counts[cat] = (counts[cat] || 0) + 1;
      const named = e.channel !== "pos";
      const cell = el("span", {
        class: `cell cat-${cat}${named ? " named" : ""}`,
        "data-endpoint": e.endpoint, "data-channel": e.channel,
        "data-region": e.region || "", "data-cat": cat,
        title: `${e.endpoint} (${e.channel}${e.region ? ", " + e.region : ""}): ${cat}`,
      }, named ? e.channel : "");
      cells.append(cell);
    }
    const label = el("div", { class: "label", "data-group": name }, name);
    const summary = ["applied", "revoked", "inflight", "failed", "dead"]
      .filter((c) => counts[c]).map((c) => `${counts[c]} ${c}`).join(" · ");
    label.append(el("span", { class: "count" }, `${members.length} endpoints${summary ? " · " + summary : ""}`));
    const group = el("div", { class: "group", "data-group": name });
    group.append(label, cells);
    return group;
  });
  $("heatmap").replaceChildren(...out);
}

// --- charts ----------------------------------------------------------------------------------

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function legendRows(series, w) {
  let lx = 48, rows = 0;
  for (const s of series) {
    const step = 22 + s.name.length * 6;
    if (lx + step > w && lx > 48) { lx = 48; rows += 1; }
    lx += step;
  }
  return rows;
}

function chart(svg, { series, x0, x1, yMax, yFmt, bars = false, empty = "no data yet" }) {
  const w = svg.clientWidth || 300, h = svg.clientHeight || 170;
  const m = { l: 44, r: 8, t: 22 + 13 * legendRows(series, w), b: 22 };
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.replaceChildren();
  const X = (t) => m.l + ((t - x0) / Math.max(1e-9, x1 - x0)) * (w - m.l - m.r);
  const Y = (v) => h - m.b - (v / yMax) * (h - m.t - m.b);
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    svg.append(svgEl("line", { class: "grid", x1: m.l, x2: w - m.r, y1: Y(v), y2: Y(v) }));
    svg.append(svgEl("text", { x: m.l - 4, y: Y(v) + 3, "text-anchor": "end" }, yFmt(v)));
  }
  for (let i = 0; i <= 4; i++) {
    const t = x0 + ((x1 - x0) * i) / 4;
    svg.append(svgEl("text", { x: X(t), y: h - 6, "text-anchor": "middle" }, `${t.toFixed(0)}s`));
  }
  svg.append(svgEl("line", { class: "axis", x1: m.l, x2: m.l, y1: m.t, y2: h - m.b }));
  svg.append(svgEl("line", { class: "axis", x1: m.l, x2: w - m.r, y1: h - m.b, y2: h - m.b }));
  const drawn = series.filter((s) => s.points.length);
  if (!drawn.length) {
    svg.append(svgEl("text", { class: "empty", x: (w + m.l) / 2, y: h / 2, "text-anchor": "middle" }, empty));
  }
  let lx = m.l + 4, ly = 4;
  series.forEach((s, i) => {
    if (bars) {
      const bw = Math.max(1.5, (w - m.l - m.r) / Math.max(1, x1 - x0) / series.length);
      for (const [t, v] of s.points) {
        svg.append(svgEl("rect", { x: X(t) + i * bw, y: Y(v), width: bw, height: Y(0) - Y(v), fill: s.color }));
      }
    } else if (s.points.length) {
      let d = "";
      s.points.forEach(([t, v], j) => {
        d += j === 0 ? `M${X(t)},${Y(v)}` : `H${X(t)}V${Y(v)}`;
      });
      d += `H${X(x1)}`;
      svg.append(svgEl("path", { d, fill: "none", stroke: s.color, "stroke-width": s.width || 1.8 }));
    }
    const step = 22 + s.name.length * 6;
    if (lx + step > w && lx > m.l + 4) { lx = m.l + 4; ly += 13; }
    svg.append(svgEl("rect", { x: lx, y: ly, width: 10, height: 10, fill: s.color }));
    svg.append(svgEl("text", { x: lx + 13, y: ly + 9 }, s.name));
    lx += step;
  });
}

function drawCharts(series, sales) {
  const now = series.now;
  const x0 = series.published_at != null ? Math.max(0, series.published_at - 2) : Math.max(0, now - 60);
  const x1 = Math.max(now, x0 + 10);
  const cov = Object.entries(series.coverage)
    .sort(([a], [b]) => (a === "all" ? -1 : b === "all" ? 1 : a.localeCompare(b)))
    .map(([name, points]) => ({ name, points, color: CHANNEL_COLORS[name] || "#555", width: name === "all" ? 2.6 : 1.6 }));
  chart($("chart-coverage"), { series: cov, x0, x1, yMax: 1, yFmt: (v) => `${Math.round(v * 100)}%`, empty: "not published yet" });
  const peak = Math.max(1, ...series.retries.map((p) => p[1]), ...series.dead_letters.map((p) => p[1]));
  chart($("chart-retries"), {
    series: [
      { name: `retries (${series.totals.retries})`, points: series.retries, color: "#f59e0b" },
      { name: `dead letters (${series.totals.dead_letters})`, points: series.dead_letters, color: "#dc2626" },
    ],
    x0, x1, yMax: niceMax(Math.max(4, peak)), yFmt: (v) => v.toFixed(0), bars: true, empty: "no retries",
  });
  if (!sales) return;
  const sx0 = Math.min(x0, ...sales.sales.map((p) => p[0]));
  const top = niceMax(Math.max(sales.sales_total, sales.discount_total, 1));
  chart($("chart-sales"), {
    series: [
      { name: `sales $${sales.sales_total.toFixed(2)}`, points: sales.sales, color: "#0f766e" },
      { name: `discount $${sales.discount_total.toFixed(2)}`, points: sales.discount, color: "#be185d" },
    ],
    x0: sx0, x1: Math.max(sales.now, sx0 + 10), yMax: top, yFmt: (v) => `$${v >= 1000 ? (v / 1000).toFixed(1) + "k" : v.toFixed(0)}`,
    empty: sales.error || "no sales yet",
  });
}

// --- the rest of the page --------------------------------------------------------------------

function drawPromotions(list) {
  const rows = list.map((p) => {
    const tr = el("tr", { "data-promo": p.id, title: p.name || p.id });
    if (p.id === view.promo) tr.classList.add("selected");
    tr.append(el("td", {}, p.id));
    const td = el("td");
    td.append(el("span", { class: `state state-${p.state}` }, p.state));
    tr.append(td);
    tr.addEventListener("click", () => { view.promo = p.id; refresh(); });
    return tr;
  });
  if (!rows.length) rows.push(el("tr", {}, "no promotions yet"));
  $("promo-list").replaceChildren(...rows);
}

function drawDetail(detail) {
  $("promo-title").textContent = `${detail.id} · ${detail.promotion.name || ""}`;
  const states = Object.entries(detail.propagation.states).map(([s, n]) => `${n} ${s}`).join(", ");
  const meta = $("promo-meta");
  meta.replaceChildren(el("span", { id: "promo-state", class: `state state-${detail.state}` }, detail.state),
    document.createTextNode(` v${detail.version} · ${detail.propagation.total} deliveries${states ? ": " + states : ""}`));
}

function drawAudit(records) {
  $("audit").replaceChildren(...records.map((r) => {
    const tr = el("tr");
    for (const v of [r.t.toFixed(1), r.kind, r.version || "", r.endpoint, r.outcome, r.detail]) tr.append(el("td", {}, String(v)));
    return tr;
  }));
}

async function deliveries(promo) {
  let rows = [], offset = 0, detail = null;
  for (;;) {
    const r = await api(`/v1/promotions/${encodeURIComponent(promo)}?limit=5000&offset=${offset}`);
    if (!r.ok) return { error: r };
    detail = detail || r.body;
    rows = rows.concat(r.body.propagation.endpoints || []);
    if (r.body.propagation.next_offset == null) return { detail, rows };
    offset = r.body.propagation.next_offset;
  }
}

let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  try {
    if (!view.key) { banner("Enter an API key to watch (a viewer key is enough)."); return; }
    const list = await api("/v1/promotions");
    if (!list.ok) { banner(refusal(list)); return; }
    banner(view.refused);
    const promos = list.body.promotions;
    if (!view.promo && promos.length) view.promo = promos[promos.length - 1].id;
    drawPromotions(promos);
    if (!view.inventory) {
      const inv = await api("/v1/dashboard/endpoints");
      if (!inv.ok) { banner(refusal(inv)); return; }
      view.inventory = inv.body;
      fillSelect($("act-region"), inv.body.regions);
      fillSelect($("act-channel"), inv.body.channels.filter((c) => c !== "erp").concat(["erp"]));
    }
    if (!view.promo) return;
    const p = encodeURIComponent(view.promo);
    const [got, series, sales] = await Promise.all([
      deliveries(view.promo), api(`/v1/dashboard/promotions/${p}/series`), api(`/v1/dashboard/sales?promo=${p}`),
    ]);
    if (got.error) { banner(refusal(got.error)); return; }
    drawDetail(got.detail);
    drawHeatmap(got.rows);
    if (series.ok) {
      $("clock").textContent = `t = ${series.body.now.toFixed(1)} s`;
      drawCharts(series.body, sales.ok ? sales.body : null);
      drawAudit(series.body.audit);
    }
  } finally {
    busy = false;
  }
}

async function whoami() {
  if (!view.key) { $("whoami").textContent = "no key"; return; }
  const r = await api("/v1/dashboard/whoami");
  $("whoami").textContent = r.ok ? `${r.body.name} (${r.body.role})` : refusal(r);
}

// --- operator actions ------------------------------------------------------------------------

function confirmDialog(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

function showResult(text, ok) {
  const out = $("action-result");
  out.textContent = text;
  out.className = `result ${ok ? "ok" : "error"}`;
}

async function act(label, path, body) {
  if (!view.promo) { showResult("Select a promotion first.", false); return; }
  if (!(await confirmDialog(`${label} — promotion ${view.promo}?`))) { showResult("Cancelled.", false); return; }
  const r = await api(`/v1/promotions/${encodeURIComponent(view.promo)}/${path}`, {
    method: "POST", body: JSON.stringify(body || {}),
  });
  if (r.ok) {
    view.refused = "";
    showResult(`${label}: done (state ${r.body.state}).`, true);
  } else {
    showResult(refusal(r), false);
    if (r.status === 401 || r.status === 403) view.refused = `${label}: ${refusal(r)}`;
    banner(view.refused);
  }
  refresh();
}

function wire() {
  drawLegend();
  $("api-key").value = view.key;
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    view.key = $("api-key").value.trim();
    view.refused = "";
    sessionStorage.setItem(KEY_STORE, view.key);
    showResult("", true);
    whoami();
    refresh();
  });
  $("key-forget").addEventListener("click", () => {
    view.key = "";
    view.refused = "";
    $("api-key").value = "";
    sessionStorage.removeItem(KEY_STORE);
    whoami();
    refresh();
  });
  const channel = () => $("act-channel").value;
  const region = () => $("act-region").value;
  $("act-publish").addEventListener("click", () => act("Publish to every channel in scope", "publish", {}));
  $("act-pause").addEventListener("click", () => act(`Pause channel ${channel()}`, "pause", { channel: channel() }));
  $("act-resume").addEventListener("click", () => act(`Resume channel ${channel()}`, "resume", { channel: channel() }));
  $("act-rollback-channel").addEventListener("click", () =>
    act(`Roll back channel ${channel()}`, "rollback", { channels: [channel()] }));
  // A region scope covers the region's stores only (docs/scope.md); naming pos says so
  // on the wire too, and the API refuses a region the estate does not have (422).
  $("act-rollback-region").addEventListener("click", () =>
    act(`Roll back the stores of region ${region()}`, "rollback", { channels: ["pos"], regions: [region()] }));
  whoami();
  refresh();
  setInterval(refresh, POLL_MS);
}

wire();
