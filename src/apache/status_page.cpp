// The status page's HTML shell, script, style sheet and icon (see
// status_page.h). They are kept here as raw string literals, one per file,
// so they read and diff like the files they are; no build step generates
// them. The script draws its charts itself (SVG); nothing is loaded from
// elsewhere, and nothing is inline, so the page runs under a strict
// Content-Security-Policy (status.cpp sends one).
#include "apache/status_page.h"

namespace wsb {

namespace {

// ---------------------------------------------------------------- status.html
// Relative URLs that start with "?" keep the page's own path, so the page
// works at any URL the handler is mounted at.
constexpr std::string_view kHtml = R"html(<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="color-scheme" content="light dark">
  <meta name="robots" content="noindex, nofollow">
  <title>Status · mod_wsbridge</title>
  <link rel="icon" type="image/svg+xml" href="?asset=favicon.svg">
  <link rel="stylesheet" href="?asset=status.css">
  <script src="?asset=status-extra.js" defer></script>
  <script src="?asset=status.js" defer></script>
</head>
<body>
  <header class="top">
    <svg class="logo" viewBox="0 0 32 32" aria-hidden="true"><rect width="32" height="32" rx="8"/><path d="M9 11h14v8H15l-4 3v-3H9z"/></svg>
    <div class="title">
      <h1>mod_wsbridge status</h1>
      <p class="sub" id="server-line" data-testid="server-line">Waiting for the first figures…</p>
    </div>
    <span class="state" id="poll-state" data-testid="poll-state" data-state="loading" role="status">
      <span class="dot" aria-hidden="true"></span><span id="poll-text">Loading…</span>
    </span>
  </header>

  <main>
    <section class="cards" aria-label="Now">
      <div class="card">
        <h2>Open connections</h2>
        <p class="big" id="open-total" data-testid="open-total">–</p>
        <p class="split" id="open-apps" data-testid="open-apps"></p>
      </div>
      <div class="card">
        <h2>Messages / s</h2>
        <p class="big"><span class="in" id="msg-in" data-testid="msg-rate-in">–</span> <small>in</small></p>
        <p class="split"><span class="out" id="msg-out" data-testid="msg-rate-out">–</span> out</p>
      </div>
      <div class="card">
        <h2>Traffic</h2>
        <p class="big"><span class="in" id="bytes-in" data-testid="bytes-rate-in">–</span> <small>in</small></p>
        <p class="split"><span class="out" id="bytes-out" data-testid="bytes-rate-out">–</span> out</p>
      </div>
      <div class="card">
        <h2>Upgrades</h2>
        <p class="big" id="accepted" data-testid="accepted">–</p>
        <p class="split">accepted · <span id="refused-total" data-testid="refused-total">–</span> refused</p>
      </div>
    </section>

    <section class="charts" aria-label="The last minutes">
      <figure class="chart">
        <figcaption><h2>Open connections</h2><span class="legend" id="legend-open"></span></figcaption>
        <svg id="chart-open" data-testid="chart-open" role="img" aria-label="Open connections over time"></svg>
      </figure>
      <figure class="chart">
        <figcaption><h2>Messages / s</h2><span class="legend"><i class="in"></i>in <i class="out"></i>out</span></figcaption>
        <svg id="chart-messages" data-testid="chart-messages" role="img" aria-label="Messages per second over time"></svg>
      </figure>
      <figure class="chart">
        <figcaption><h2>Bytes / s</h2><span class="legend"><i class="in"></i>in <i class="out"></i>out</span></figcaption>
        <svg id="chart-bytes" data-testid="chart-bytes" role="img" aria-label="Bytes per second over time"></svg>
      </figure>
      <p class="note" id="window-note"></p>
    </section>

    <section class="panel">
      <h2>Children</h2>
      <p class="note">Apache child processes that have accepted WebSocket connections.</p>
      <div class="scroll">
        <table data-testid="children-table">
          <thead><tr id="children-head"></tr></thead>
          <tbody id="children-body"></tbody>
        </table>
      </div>
    </section>

    <section class="panel">
      <h2>Applications</h2>
      <div class="scroll">
        <table data-testid="apps-table">
          <thead><tr>
            <th scope="col">app</th><th scope="col" class="num">open</th><th scope="col" class="num">accepted</th>
            <th scope="col" class="num" title="of them on HTTP/2 streams (RFC 8441)">accepted h2</th>
            <th scope="col" class="num">messages in</th><th scope="col" class="num">messages out</th>
            <th scope="col" class="num">bytes in</th><th scope="col" class="num">bytes out</th>
            <th scope="col" class="num">queue overflows</th><th scope="col" class="num">pings sent</th>
            <th scope="col" class="num">hub writes</th><th scope="col" class="num">hub handbacks</th>
            <th scope="col" class="num">rate limited</th>
          </tr></thead>
          <tbody id="apps-body"></tbody>
        </table>
      </div>
    </section>

    <div class="columns">
      <section class="panel">
        <h2>Closes by code</h2>
        <div class="scroll">
          <table data-testid="closes-table">
            <thead><tr id="closes-head"></tr></thead>
            <tbody id="closes-body"></tbody>
          </table>
        </div>
      </section>
      <section class="panel">
        <h2>Refused upgrades</h2>
        <div class="scroll">
          <table data-testid="refused-table">
            <thead><tr><th scope="col">reason</th><th scope="col">answer</th><th scope="col" class="num">count</th></tr></thead>
            <tbody id="refused-body"></tbody>
          </table>
        </div>
      </section>
      <section class="panel">
        <h2>Per client address</h2>
        <dl class="kv" id="per-ip" data-testid="per-ip"></dl>
      </section>
      <section class="panel">
        <h2>Bus</h2>
        <dl class="kv" id="bus" data-testid="bus"></dl>
      </section>
      <section class="panel">
        <h2>Hub <small id="hub-pid"></small></h2>
        <dl class="kv" id="hub" data-testid="hub"></dl>
      </section>
      <section class="panel">
        <h2>Pusher webhooks <small id="webhooks-pid"></small></h2>
        <p class="note">Counted by each child for the webhooks of its own hub: these are the figures of the child that answered, not of the server.</p>
        <dl class="kv" id="webhooks" data-testid="webhooks"></dl>
      </section>
      <section class="panel">
        <h2>Backend bridge</h2>
        <dl class="kv" id="backend" data-testid="backend"></dl>
      </section>
      <section class="panel">
        <h2>Capacity <small id="capacity-pid"></small></h2>
        <dl class="kv" id="capacity" data-testid="capacity"></dl>
      </section>
    </div>
  </main>

  <footer>
    Raw figures: <a href="?format=json">JSON</a> · <a href="?format=prometheus">Prometheus</a>.
    Rates and charts are computed in this tab from the counters and kept for five minutes.
  </footer>
  <noscript><p class="noscript">This page needs JavaScript. The figures are at <a href="?format=json">?format=json</a>.</p></noscript>
</body>
</html>
)html";

// ---------------------------------------------------------------- status.js
constexpr std::string_view kScript = R"js(// mod_wsbridge status page. Polls the figures of this same URL
// (?format=json) every 2 s (?interval=SECONDS changes that) and shows them.
// Rates are computed here from counter deltas; the samples are kept in this
// tab for five minutes and drawn as small SVG line charts.
(() => {
  "use strict";

  const params = new URLSearchParams(location.search);
  const INTERVAL_MS = 1000 * Math.min(60, Math.max(0.5, Number(params.get("interval")) || 2));
  const HISTORY_MS = 5 * 60 * 1000;
  const TIMEOUT_MS = Math.max(5000, 2 * INTERVAL_MS);
  const JSON_URL = new URL("?format=json", location.href).href;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const CLOSE_NAMES = {
    1000: "normal", 1001: "going away", 1002: "protocol error", 1003: "unsupported data",
    1005: "no code", 1006: "dropped, no close frame", 1007: "invalid data", 1008: "policy",
    1009: "too big", 1010: "extension needed", 1011: "server error", 1012: "restart",
    1013: "try again later", 1014: "bad gateway", 1015: "TLS failure",
    "3000-4999": "application codes", other: "other",
  };
  const REFUSALS = {
    bad_request: ["400", "bad handshake"],
    unauthorized: ["401", "missing or bad token"],
    forbidden_origin: ["403", "Origin not allowed"],
    method_not_allowed: ["405", "not a GET"],
    upgrade_required: ["426", "plain GET or old version"],
    overloaded: ["503", "WSBridgeMaxConnections or the MPM is full"],
    worker_reserve: ["503", "WSBridgeReserveWorkers"],
    restarting: ["503", "the child is stopping"],
    unavailable: ["503", "bus or backend not answering"],
    per_ip: ["429", "WSBridgeMaxConnectionsPerIP"],
  };
  // Counters that mean trouble when they are not zero.
  const WARN_KEYS = new Set(["queue_overflows", "deliveries_refused", "overruns", "pending_dropped",
    "outages", "bus_overruns", "untracked", "cid_duplicates", "rate_limited"]);
  const LABELS = {
    type: "type", connected: "connected", outages: "outages", publish_links: "publish links",
    resets: "resets", last_error: "last error", first_seq: "first seq", last_seq: "last seq",
    bus_overruns: "overruns (all children)", events_applied: "events applied",
    frames_delivered: "frames delivered", deliveries_refused: "deliveries refused",
    rooms: "rooms", local_connections: "chat connections here", pending_publishes: "pending publishes",
    pending_dropped: "pending dropped", id: "bus id", file: "file (WSBridgeBusFile)",
    cid_duplicates: "cid repeats dropped (dedupe)", direct_cids: "direct cids remembered",
    limit: "WSBridgeMaxConnectionsPerIP", addresses: "addresses with WebSockets", connections: "their WebSockets",
    busiest: "most from one address", refused: "refused (429)", untracked: "let in uncounted (table full)",
    reclaimed: "given back from dead children",
  };

  const $ = (id) => document.getElementById(id);
  const samples = []; // {t, open: {app: n}, mi, mo, bi, bo}, oldest first
  let lastStatus = null;
  let lastOk = 0;

  // ------------------------------------------------------------ formatting

  const intFmt = new Intl.NumberFormat("en-US");
  const fmtInt = (n) => intFmt.format(n);

  function fmtRate(v) {
    if (v == null) return "–";
    const digits = v >= 100 ? 0 : v >= 10 ? 1 : 2;
    return new Intl.NumberFormat("en-US", { maximumFractionDigits: digits }).format(v);
  }

  function fmtBytes(v, perSecond) {
    if (v == null) return "–";
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    const digits = i === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
    const n = new Intl.NumberFormat("en-US", { maximumFractionDigits: digits }).format(v);
    return `${n} ${units[i]}${perSecond ? "/s" : ""}`;
  }

  function fmtAgo(ms) {
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s} s`;
    return `${+(s / 60).toFixed(1)} min`;
  }

  // Sets an element's text and keeps the raw number in data-value (for tests
  // and for anybody who reads the DOM).
  function show(id, text, value) {
    const e = $(id);
    e.textContent = text;
    if (value !== undefined) e.dataset.value = value == null ? "" : String(value);
  }

  function node(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v != null) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  }

  function cell(value, cls) {
    const isNum = typeof value === "number";
    const td = node("td", { class: [isNum ? "num" : "", cls || ""].join(" ").trim() || null },
      isNum ? fmtInt(value) : value);
    if (isNum) td.dataset.value = String(value);
    return td;
  }

  function bytesCell(n) {
    const td = node("td", { class: "num", title: `${fmtInt(n)} bytes` }, fmtBytes(n));
    td.dataset.value = String(n);
    return td;
  }

  function row(cells, attrs) {
    const tr = node("tr", attrs);
    for (const c of cells) tr.append(c instanceof Node ? c : cell(c));
    return tr;
  }

  // ------------------------------------------------------------ samples and rates

  const sum = (apps, key) => Object.values(apps).reduce((n, f) => n + (f[key] || 0), 0);

  function record(s, t) {
    const apps = s.apps || {};
    samples.push({
      t,
      open: Object.fromEntries(Object.entries(apps).map(([name, f]) => [name, f.open])),
      mi: sum(apps, "messages_in"), mo: sum(apps, "messages_out"),
      bi: sum(apps, "bytes_in"), bo: sum(apps, "bytes_out"),
    });
    while (samples.length > 2 && samples[1].t < t - HISTORY_MS) samples.shift();
  }

  // Per second between consecutive samples; null where a counter went down
  // (the server was restarted and started counting from zero).
  function rates(key) {
    const out = [];
    for (let i = 1; i < samples.length; i++) {
      const a = samples[i - 1], b = samples[i];
      const dt = (b.t - a.t) / 1000;
      out.push({ t: b.t, v: dt > 0 && b[key] >= a[key] ? (b[key] - a[key]) / dt : null });
    }
    return out;
  }

  const lastRate = (key) => { const r = rates(key); return r.length ? r[r.length - 1].v : null; };

  // ------------------------------------------------------------ charts

  function svg(parent, tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    parent.append(e);
    return e;
  }

  // A "nice" grid step (1, 2, 2.5 or 5 times a power of ten) for about four
  // lines up to max, and the top of the scale.
  function scale(max, integer) {
    if (!(max > 0)) max = 1;
    const raw = max / 4;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    let step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw && (!integer || Number.isInteger(s)));
    if (integer) step = Math.max(1, step || Math.ceil(raw));
    return { step, top: step * Math.max(1, Math.ceil(max / step - 1e-9)) };
  }

  // The time axis: the whole history once there are five minutes of it,
  // until then what there is (at least ten polls), so a new page fills up.
  function timeWindow() {
    const now = samples.length ? samples[samples.length - 1].t : Date.now();
    const span = samples.length ? now - samples[0].t : 0;
    return { now, span: Math.min(HISTORY_MS, Math.max(10 * INTERVAL_MS, span)) };
  }

  // Draws series [{name, points: [{t, v}]}] as lines (a null v breaks the
  // line) with a light area under them, a horizontal grid and time labels.
  function drawChart(el, series, fmt, integer) {
    const W = Math.max(220, Math.round(el.clientWidth)), H = Math.max(120, Math.round(el.clientHeight));
    const pad = { l: 56, r: 12, t: 10, b: 24 };
    const { now, span } = timeWindow();
    const t0 = now - span;
    const visible = (p) => p.v != null && p.t >= t0;
    let max = 0;
    for (const s of series) for (const p of s.points) if (visible(p)) max = Math.max(max, p.v);
    const { step, top } = scale(max * 1.1, integer); // a little headroom over the highest point
    const x = (t) => pad.l + ((W - pad.l - pad.r) * (t - t0)) / span;
    const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / top);

    el.setAttribute("viewBox", `0 0 ${W} ${H}`);
    el.replaceChildren();
    for (let v = 0; v <= top + step / 2; v += step) {
      const yy = Math.round(y(v)) + 0.5;
      svg(el, "line", { class: v === 0 ? "axis" : "grid", x1: pad.l, x2: W - pad.r, y1: yy, y2: yy });
      svg(el, "text", { class: "ylabel", x: pad.l - 8, y: yy + 4 }).textContent = fmt(v);
    }
    const tick = [5, 10, 15, 30, 60, 120, 300].map((s) => s * 1000).find((s) => span / s <= 5);
    for (let ago = 0; ago <= span + 1; ago += tick) {
      const label = svg(el, "text", { class: "xlabel", x: x(now - ago), y: H - 6 });
      label.textContent = ago === 0 ? "now" : `−${fmtAgo(ago)}`;
      if (ago === 0) label.setAttribute("text-anchor", "end");
    }
    for (const s of series) {
      const segments = [[]];
      for (const p of s.points) {
        if (p.t < t0) continue;
        if (p.v == null) { if (segments[segments.length - 1].length) segments.push([]); continue; }
        segments[segments.length - 1].push([x(p.t).toFixed(1), y(p.v).toFixed(1)]);
      }
      const full = segments.filter((seg) => seg.length);
      const line = full.map((seg) => seg.map(([a, b], i) => `${i ? "L" : "M"}${a},${b}`).join("")).join("");
      const base = y(0).toFixed(1);
      const area = full.filter((seg) => seg.length > 1)
        .map((seg) => `M${seg[0][0]},${base}` + seg.map(([a, b]) => `L${a},${b}`).join("") + `L${seg[seg.length - 1][0]},${base}Z`)
        .join("");
      const n = full.reduce((k, seg) => k + seg.length, 0);
      svg(el, "path", { class: `area ${s.name}`, d: area });
      svg(el, "path", { class: `line ${s.name}`, d: line, "data-series": s.name, "data-points": n });
      const last = full.length ? full[full.length - 1].at(-1) : null;
      if (last) svg(el, "circle", { class: `dot ${s.name}`, cx: last[0], cy: last[1], r: 3 });
    }
  }

  function drawCharts() {
    const apps = lastStatus ? Object.keys(lastStatus.apps || {}) : [];
    drawChart($("chart-open"), apps.map((name, i) => ({
      name: `s${i}`,
      points: samples.map((s) => ({ t: s.t, v: s.open[name] ?? null })),
    })), fmtInt, true);
    drawChart($("chart-messages"), [{ name: "in", points: rates("mi") }, { name: "out", points: rates("mo") }], fmtRate);
    drawChart($("chart-bytes"), [{ name: "in", points: rates("bi") }, { name: "out", points: rates("bo") }],
      (v) => fmtBytes(v, false));
    const { span } = timeWindow();
    $("window-note").textContent = samples.length < 2 ? "The charts fill in as figures come in."
      : span >= HISTORY_MS ? "The last five minutes." : `Since this page opened: ${fmtAgo(samples.at(-1).t - samples[0].t)}.`;
  }

  // ------------------------------------------------------------ tables

  function renderCards(s) {
    const apps = Object.entries(s.apps || {});
    show("open-total", fmtInt(s.open), s.open);
    const split = $("open-apps");
    split.replaceChildren();
    apps.forEach(([name, f], i) => {
      if (i) split.append(" · ");
      split.append(`${name} `, node("b", { id: `open-${name}`, "data-testid": `open-${name}`, "data-value": f.open }, fmtInt(f.open)));
    });
    const mi = lastRate("mi"), mo = lastRate("mo"), bi = lastRate("bi"), bo = lastRate("bo");
    show("msg-in", fmtRate(mi), mi);
    show("msg-out", fmtRate(mo), mo);
    show("bytes-in", fmtBytes(bi, true), bi);
    show("bytes-out", fmtBytes(bo, true), bo);
    const accepted = sum(s.apps || {}, "accepted");
    const refused = Object.values(s.refused || {}).reduce((n, v) => n + v, 0);
    show("accepted", fmtInt(accepted), accepted);
    show("refused-total", fmtInt(refused), refused);
    // The legend of the open-connections chart names the apps.
    const legend = $("legend-open");
    legend.replaceChildren();
    apps.forEach(([name], i) => legend.append(node("i", { class: `s${i}` }), `${name} `));
  }

  function renderChildren(s) {
    const names = Object.keys(s.apps || {});
    const head = $("children-head");
    head.replaceChildren(node("th", { scope: "col" }, "pid"));
    for (const n of names) head.append(node("th", { scope: "col", class: "num" }, `${n} open`));
    for (const h of ["accepted", "HTTP/2", "msgs in", "msgs out", "hub writes", "overflows"]) head.append(node("th", { scope: "col", class: "num" }, h));
    head.append(node("th", { scope: "col", class: "bar-col" }, "share of open"));

    const children = [...(s.children || [])].sort((a, b) => a.pid - b.pid);
    const openOf = (c) => names.reduce((n, a) => n + (c[a]?.open || 0), 0);
    const most = Math.max(1, ...children.map(openOf));
    const body = $("children-body");
    body.replaceChildren();
    for (const c of children) {
      const pid = node("td", {}, String(c.pid));
      if (c.pid === s.pid) pid.append(" ", node("span", { class: "tag", title: "this child answered the last poll" }, "answered"));
      // A bar as long as the child's open connections (the busiest child
      // is full length), one colour per app.
      const bar = node("div", { class: "bar", title: names.map((a) => `${a} ${c[a]?.open || 0}`).join(", ") });
      names.forEach((a, i) => {
        const seg = node("span", { class: `s${i}` });
        seg.style.width = `${(100 * (c[a]?.open || 0)) / most}%`;
        bar.append(seg);
      });
      const barCell = node("td", { class: "bar-col" });
      barCell.append(bar);
      const tot = (k) => names.reduce((n, a) => n + (c[a]?.[k] || 0), 0);
      const overflows = tot("queue_overflows");
      body.append(row([pid, ...names.map((a) => c[a]?.open || 0), tot("accepted"), tot("accepted_h2"), tot("messages_in"),
        tot("messages_out"), tot("hub_writes"), cell(overflows, overflows ? "warn" : ""), barCell],
      { "data-testid": "child-row", "data-pid": c.pid }));
    }
    if (!children.length) body.append(row([node("td", { colspan: head.children.length, class: "empty" }, "No child has accepted a connection yet.")]));
  }

  // The applications table's columns, in the order of its header.
  const APP_KEYS = ["open", "accepted", "accepted_h2", "messages_in", "messages_out", "bytes_in", "bytes_out",
    "queue_overflows", "pings_sent", "hub_writes", "hub_handbacks", "rate_limited"];

  function renderApps(s) {
    const body = $("apps-body");
    body.replaceChildren();
    for (const [name, f] of Object.entries(s.apps || {})) {
      const cells = APP_KEYS.map((k) => {
        const v = f[k] || 0;
        const td = k.startsWith("bytes_") ? bytesCell(v) : cell(v, v && WARN_KEYS.has(k) ? "warn" : "");
        td.dataset.key = k;
        return td;
      });
      body.append(row([node("th", { scope: "row" }, name), ...cells], { "data-app": name }));
    }
  }

  function renderCloses(s) {
    const names = Object.keys(s.apps || {});
    const head = $("closes-head");
    head.replaceChildren(node("th", { scope: "col" }, "code"));
    for (const n of names) head.append(node("th", { scope: "col", class: "num" }, n));
    const codes = new Set();
    for (const n of names) for (const c of Object.keys(s.apps[n].closes || {})) codes.add(c);
    const sorted = [...codes].sort((a, b) => (parseInt(a, 10) || 99999) - (parseInt(b, 10) || 99999));
    const body = $("closes-body");
    body.replaceChildren();
    for (const code of sorted) {
      const th = node("th", { scope: "row" }, code);
      th.append(" ", node("span", { class: "muted" }, CLOSE_NAMES[code] || ""));
      body.append(row([th, ...names.map((n) => s.apps[n].closes?.[code] || 0)], { "data-code": code }));
    }
    if (!sorted.length) body.append(row([node("td", { colspan: names.length + 1, class: "empty" }, "No connection has closed yet.")]));
  }

  function renderRefused(s) {
    const body = $("refused-body");
    body.replaceChildren();
    for (const [reason, n] of Object.entries(s.refused || {})) {
      const [answer, why] = REFUSALS[reason] || ["", ""];
      const th = node("th", { scope: "row" }, reason.replace(/_/g, " "));
      body.append(row([th, node("td", { class: "muted wrap" }, why ? `${answer} · ${why}` : answer), n], { "data-reason": reason }));
    }
  }

  // labels: names for keys this script does not know (status-extra.js).
  function fillKv(dl, obj, labels) {
    dl.replaceChildren();
    for (const [k, v] of Object.entries(obj || {})) {
      let text = v, cls = null;
      if (typeof v === "boolean") { text = v ? "yes" : "no"; cls = v ? "ok" : "warn"; }
      else if (typeof v === "number") { text = fmtInt(v); if (v && WARN_KEYS.has(k)) cls = "warn"; }
      else if (v === "" || v == null) text = "—";
      else if (typeof v === "object") text = JSON.stringify(v);
      const label = (labels && labels[k]) || LABELS[k] || k.replace(/_/g, " ");
      dl.append(node("dt", {}, label), node("dd", { class: cls, "data-key": k, "data-value": typeof v === "number" ? v : null },
        String(text)));
    }
  }

  function renderPerIp(s) {
    const p = s.per_ip || {};
    fillKv($("per-ip"), { limit: p.limit ? p.limit : "no limit", addresses: p.addresses, connections: p.connections,
      busiest: p.busiest, refused: (s.refused || {}).per_ip || 0, table: `${p.table_used} of ${p.table_entries} entries used`,
      untracked: p.untracked, reclaimed: p.reclaimed });
  }

  function renderBusAndHub(s) {
    fillKv($("bus"), { ...(s.bus || {}), bus_overruns: s.bus_overruns });
    if (s.hub) fillKv($("hub"), s.hub);
    else $("hub").replaceChildren(node("dd", { class: "empty" }, "No chat hub in this child."));
    $("hub-pid").textContent = `child ${s.pid}`;
  }

  function render(s) {
    const kids = (s.children || []).length;
    $("server-line").textContent = `version ${s.version || "?"} · ${s.mpm || "?"} MPM · ` +
      `${kids} ${kids === 1 ? "child" : "children"} with connections · answered by child ${s.pid}`;
    renderCards(s);
    renderChildren(s);
    renderApps(s);
    renderCloses(s);
    renderRefused(s);
    renderPerIp(s);
    renderBusAndHub(s);
    // The panels of status-extra.js (loaded first, so it is listening).
    document.dispatchEvent(new CustomEvent("wsb:status", { detail: { s, fillKv, node, fmtInt } }));
    drawCharts();
  }

  // ------------------------------------------------------------ polling

  function setState(state, text) {
    const pill = $("poll-state");
    pill.dataset.state = state;
    $("poll-text").textContent = text;
  }

  async function poll() {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const res = await fetch(JSON_URL, { cache: "no-store", signal: ctl.signal, headers: { Accept: "application/json" } });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const s = await res.json();
      lastOk = Date.now();
      lastStatus = s;
      record(s, lastOk);
      render(s);
      document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
      setState("live", `Live · every ${INTERVAL_MS / 1000} s`);
    } catch (e) {
      const why = e.name === "AbortError" ? "no answer" : e.message;
      setState("error", lastOk ? `Last update ${fmtAgo(Date.now() - lastOk)} ago (${why})` : `No figures (${why})`);
    } finally {
      clearTimeout(timer);
      setTimeout(poll, INTERVAL_MS);
    }
  }

  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (lastStatus) drawCharts(); }, 100);
  });

  poll();
})();
)js";

// ---------------------------------------------------------------- status.css
constexpr std::string_view kStyle = R"css(/* mod_wsbridge status page. Light and dark follow prefers-color-scheme. */

:root {
  color-scheme: light dark;
  --font: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Helvetica Neue", Arial, sans-serif;
  --bg: #f4f5f9;
  --panel: #ffffff;
  --border: #e2e5ee;
  --grid: #eceef4;
  --text: #1c1f2b;
  --muted: #636a7e;
  --accent: #4f5bd5;
  --on-accent: #ffffff;
  --ok: #1f9d55;
  --warn: #c77c02;
  --bad: #c62f3b;
  --in: #4f5bd5;
  --out: #e0792b;
  --s0: #1c9aa6;
  --s1: #8a4fd5;
  --radius: 12px;
}

@media (prefers-color-scheme: dark) {
  :root {
    --bg: #14161c;
    --panel: #1a1d25;
    --border: #2a2e3a;
    --grid: #232733;
    --text: #e7e9f0;
    --muted: #a0a6b8;
    --accent: #8e98ff;
    --on-accent: #0f1220;
    --ok: #3ecf7a;
    --warn: #f0b341;
    --bad: #ff7b86;
    --in: #8e98ff;
    --out: #f5a05a;
    --s0: #45c6d1;
    --s1: #b78cff;
  }
}

*, *::before, *::after { box-sizing: border-box; }

body {
  margin: 0;
  font: 14px/1.45 var(--font);
  color: var(--text);
  background: var(--bg);
  -webkit-font-smoothing: antialiased;
}

a { color: var(--accent); }
h1, h2 { margin: 0; letter-spacing: -0.01em; }
small { font-size: 0.8em; font-weight: 500; color: var(--muted); }
.muted { color: var(--muted); }
.note { margin: 0.25rem 0 0.6rem; color: var(--muted); font-size: 0.85rem; }
.ok { color: var(--ok); }
.warn { color: var(--warn); font-weight: 600; }

/* ---------- header ---------- */

.top {
  display: flex;
  align-items: center;
  gap: 0.8rem;
  max-width: 1240px;
  margin: 0 auto;
  padding: 1.1rem 1.25rem 0.6rem;
}
.logo { width: 34px; height: 34px; flex: none; }
.logo rect { fill: var(--accent); }
.logo path { fill: var(--on-accent); }
.title { flex: 1; min-width: 0; }
.title h1 { font-size: 1.25rem; }
.sub { margin: 0; color: var(--muted); font-size: 0.85rem; }

.state {
  display: inline-flex;
  align-items: center;
  gap: 0.4rem;
  flex: none;
  padding: 0.25rem 0.7rem;
  border: 1px solid var(--border);
  border-radius: 999px;
  background: var(--panel);
  color: var(--muted);
  font-size: 0.8rem;
  font-weight: 600;
}
.state .dot { width: 8px; height: 8px; border-radius: 50%; background: var(--muted); }
.state[data-state="live"] { color: var(--ok); }
.state[data-state="live"] .dot { background: var(--ok); box-shadow: 0 0 0 3px color-mix(in srgb, var(--ok) 20%, transparent); }
.state[data-state="error"] { color: var(--bad); }
.state[data-state="error"] .dot { background: var(--bad); }

/* ---------- layout ---------- */

main {
  display: grid;
  gap: 1rem;
  max-width: 1240px;
  margin: 0 auto;
  padding: 0.5rem 1.25rem 1rem;
}

.cards {
  display: grid;
  grid-template-columns: repeat(auto-fit, minmax(min(200px, 100%), 1fr));
  gap: 1rem;
}
.card, .panel, .chart {
  min-width: 0;
  margin: 0;
  padding: 0.85rem 1rem;
  background: var(--panel);
  border: 1px solid var(--border);
  border-radius: var(--radius);
}
.card h2, .chart h2, .panel h2 {
  font-size: 0.74rem;
  font-weight: 700;
  text-transform: uppercase;
  letter-spacing: 0.06em;
  color: var(--muted);
}
.big { margin: 0.2rem 0 0; font-size: 1.9rem; font-weight: 700; line-height: 1.2; font-variant-numeric: tabular-nums; }
.split { margin: 0.1rem 0 0; color: var(--muted); font-variant-numeric: tabular-nums; }
.split b { color: var(--text); }
.big .in { color: var(--in); }
.split .out { color: var(--out); font-weight: 700; }

.charts {
  display: grid;
  grid-template-columns: repeat(auto-fit, minmax(min(330px, 100%), 1fr));
  gap: 1rem;
}
.charts .note { grid-column: 1 / -1; margin: -0.5rem 0 0; }
.chart figcaption { display: flex; align-items: baseline; justify-content: space-between; gap: 0.5rem; flex-wrap: wrap; }
.legend { color: var(--muted); font-size: 0.8rem; }
.legend i { display: inline-block; width: 10px; height: 3px; margin: 0 0.3rem 0.2rem 0.5rem; border-radius: 2px; vertical-align: middle; background: var(--muted); }
.chart svg { display: block; width: 100%; height: 170px; margin-top: 0.4rem; overflow: visible; }

/* chart parts (drawn by status.js) */
.chart .grid { stroke: var(--grid); stroke-width: 1; }
.chart .axis { stroke: var(--border); stroke-width: 1; }
.chart text { fill: var(--muted); font: 11px var(--font); font-variant-numeric: tabular-nums; }
.chart .ylabel { text-anchor: end; }
.chart .xlabel { text-anchor: middle; }
.chart .line { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
.chart .area { stroke: none; opacity: 0.09; }
.in { --c: var(--in); }
.out { --c: var(--out); }
.s0 { --c: var(--s0); }
.s1 { --c: var(--s1); }
.chart .line, .chart .dot { stroke: var(--c); }
.chart .area, .chart .dot, .legend i, .bar span { fill: var(--c); background: var(--c); }
.chart .dot { stroke-width: 2; stroke: var(--panel); }

.columns {
  display: grid;
  grid-template-columns: repeat(auto-fit, minmax(min(440px, 100%), 1fr));
  gap: 1rem;
  align-items: start;
}

/* ---------- tables ---------- */

.scroll { overflow-x: auto; margin-top: 0.4rem; }
table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 0.4rem 0.6rem; text-align: left; border-bottom: 1px solid var(--border); white-space: nowrap; }
thead th { font-size: 0.78rem; font-weight: 600; color: var(--muted); }
tbody th { font-weight: 600; }
tbody tr:last-child > * { border-bottom: 0; }
.num { text-align: right; }
td.wrap { white-space: normal; }
.empty { color: var(--muted); text-align: center; }
.tag {
  padding: 0.05rem 0.4rem;
  border-radius: 999px;
  background: color-mix(in srgb, var(--accent) 15%, transparent);
  color: var(--accent);
  font-size: 0.72rem;
  font-weight: 600;
}
.bar-col { width: 30%; min-width: 120px; }
.bar { display: flex; height: 10px; border-radius: 5px; background: var(--grid); overflow: hidden; }
.bar span { display: block; height: 100%; }

.kv { display: grid; grid-template-columns: minmax(0, max-content) minmax(0, 1fr); gap: 0.3rem 1rem; margin: 0.6rem 0 0; }
.kv dt { color: var(--muted); overflow-wrap: anywhere; }
.kv > .empty { grid-column: 1 / -1; }
.kv dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }

footer {
  max-width: 1240px;
  margin: 0 auto;
  padding: 0 1.25rem 1.5rem;
  color: var(--muted);
  font-size: 0.85rem;
}
.noscript { text-align: center; }

/* ---------- phones ---------- */

@media (max-width: 600px) {
  .top { padding: 0.8rem 0.8rem 0.4rem; flex-wrap: wrap; row-gap: 0.4rem; }
  .title { flex: 1 1 calc(100% - 34px - 0.8rem); }
  .top .state { margin-left: calc(34px + 0.8rem); }
  main { padding: 0.4rem 0.8rem 0.8rem; gap: 0.75rem; }
  .cards { grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0.75rem; }
  .big { font-size: 1.45rem; }
  .chart svg { height: 150px; }
  footer { padding: 0 0.8rem 1rem; }
}
)css";

// ---------------------------------------------------------------- favicon.svg
constexpr std::string_view kIcon = R"svg(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="8" fill="#4f5bd5"/><path d="M9 11h14v8H15l-4 3v-3H9z" fill="#fff"/><circle cx="25" cy="25" r="5" fill="#1f9d55" stroke="#fff" stroke-width="2"/></svg>
)svg";

const StatusAsset kPage{"", "text/html; charset=utf-8", kHtml};
const StatusAsset kAssets[] = {
    {"status.js", "text/javascript; charset=utf-8", kScript},
    {"status.css", "text/css; charset=utf-8", kStyle},
    {"favicon.svg", "image/svg+xml", kIcon},
    status_page_extra_script(),
};

}  // namespace

const StatusAsset& status_page_html() { return kPage; }

const StatusAsset* status_page_asset(std::string_view name) {
  for (const StatusAsset& a : kAssets)
    if (a.name == name) return &a;
  return nullptr;
}

}  // namespace wsb
