"""The live dashboard's page: one HTML document with its CSS and JavaScript inline, as bytes.

`GET /dashboard` sends `PAGE` as it is; the page polls `GET /dashboard/data` every POLL_MS and draws
everything itself (tables, and charts in inline SVG), so it works air-gapped and under the strict
Content-Security-Policy the gateway sends with it (default-src 'none'; inline style and script only;
connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none').

Policies:
- Nothing external: no CDN, font, image or script URL; the favicon is an empty data: URL (so the
  browser does not ask for /favicon.ico); no eval or string-built functions.
- Text from the data (client, model, error messages) reaches the document only as text nodes
  (`textContent`, `append(string)`, `setAttribute`), never as markup.
- Polls never overlap: the next one is scheduled when the last one ends, at least MIN_GAP_MS apart,
  and none run while the tab is hidden.
- 401 from /dashboard/data: the board is cleared and hidden, polling stops, and a login form asks
  for a key. It is POSTed as JSON to /dashboard/login; 204 means the gateway set an HttpOnly
  session cookie, and polling resumes at once. The key is never kept, stored or put in a URL (the
  input has no name, so even a form submitted without this script sends nothing). "log out" POSTs
  `{}` as JSON to /dashboard/logout (the gateway wants JSON for both, so no cross-site form can post
  them), clears the board and polls, which shows the form again.
- "–" stands wherever no number is known yet; numbers carry thousands separators (en-US), times
  are local HH:MM:SS.
- Stable hooks for tests: #now-rps, #now-streams, #recent-count (rows shown), tr[data-request-id]
  (with data-client and data-status), #tokens-today-total, #login-form, #login-error, #logout.
"""

from __future__ import annotations

__all__ = ["PAGE"]

_HTML = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>switchboard dashboard</title>
<link rel="icon" href="data:,">
<style>
:root {
  --bg: #f6f7f9; --panel: #ffffff; --line: #dde1e6; --text: #1b1f24; --muted: #5f6b7a;
  --accent: #2563eb; --accent2: #9333ea; --good: #15803d; --warn: #b45309; --bad: #c0262d;
  --bad-bg: #fdecec; --warn-bg: #fdf3e3; --good-bg: #e8f5ec; --row: #f2f4f7;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1216; --panel: #171b21; --line: #2a313a; --text: #e4e8ee; --muted: #93a0b0;
    --accent: #60a5fa; --accent2: #c084fc; --good: #4ade80; --warn: #fbbf24; --bad: #f87171;
    --bad-bg: #3a1a1c; --warn-bg: #3a2c12; --good-bg: #12301d; --row: #1d232b;
  }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--text); font: 13px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 14px; padding: 8px 12px; border-bottom: 1px solid var(--line); background: var(--panel); position: sticky; top: 0; z-index: 2; }
header h1 { font-size: 15px; margin: 0; font-weight: 650; letter-spacing: .01em; }
header .meta { color: var(--muted); }
header .spacer { flex: 1; }
.num, td.n, th.n { font-variant-numeric: tabular-nums; text-align: right; white-space: nowrap; }
.mono { font-family: var(--mono); font-size: 12px; }
.muted { color: var(--muted); }
.bad { color: var(--bad); } .warn { color: var(--warn); } .good { color: var(--good); }
button { font: inherit; color: var(--text); background: var(--row); border: 1px solid var(--line); border-radius: 4px; padding: 3px 10px; cursor: pointer; }
button:hover { border-color: var(--muted); }
button:disabled { opacity: .6; cursor: default; }
input { font: inherit; color: var(--text); background: var(--bg); border: 1px solid var(--line); border-radius: 4px; padding: 4px 8px; }
input:focus, button:focus-visible { outline: 2px solid var(--accent); outline-offset: 0; }
#status.stale, #status.down { color: var(--bad); }
main { padding: 10px 12px 24px; }
.grid { display: grid; gap: 10px; grid-template-columns: repeat(auto-fit, minmax(min(100%, 540px), 1fr)); }
.full { grid-column: 1 / -1; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px 10px; min-width: 0; }
.panel h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 6px; font-weight: 650; display: flex; gap: 8px; align-items: baseline; flex-wrap: wrap; }
.panel h2 .aside { text-transform: none; letter-spacing: 0; font-weight: 400; }
.panel h3 { font-size: 12px; margin: 10px 0 4px; font-weight: 600; }
.tiles { display: flex; flex-wrap: wrap; gap: 6px; margin-bottom: 8px; }
.tile { flex: 1 1 auto; min-width: 96px; border: 1px solid var(--line); border-radius: 5px; padding: 4px 8px; }
.tile .label { display: block; color: var(--muted); font-size: 11px; white-space: nowrap; }
.tile .value { display: block; font-size: 20px; font-weight: 600; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 2px 6px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { text-align: left; font-weight: 600; color: var(--muted); font-size: 11px; white-space: nowrap; position: sticky; top: 0; background: var(--panel); }
tbody tr:hover td { background: var(--row); }
td.mono { white-space: nowrap; }
td.name { white-space: nowrap; max-width: 22em; overflow: hidden; text-overflow: ellipsis; }
pre.lines { margin: 0 0 6px; font-family: var(--mono); font-size: 12px; white-space: pre-wrap; word-break: break-word; }
.badge { display: inline-block; padding: 0 6px; border-radius: 9px; font-size: 11px; font-weight: 600; white-space: nowrap; }
.badge.healthy { color: var(--good); background: var(--good-bg); }
.badge.cooling { color: var(--warn); background: var(--warn-bg); }
.badge.disabled { color: var(--bad); background: var(--bad-bg); }
.provider { margin-top: 8px; }
.provider .head { display: flex; gap: 10px; flex-wrap: wrap; align-items: baseline; }
.provider .head b { font-family: var(--mono); }
svg.spark { display: block; overflow: visible; }
.chart { display: flex; align-items: flex-start; gap: 4px; min-width: 110px; }
.chart svg { flex: 1; width: 100%; height: 30px; min-width: 80px; }
.chart .peak { font-size: 10px; font-family: var(--mono); line-height: 1; }
#latency-table td:last-child { width: 40%; }
svg .p50 { stroke: var(--accent); fill: none; stroke-width: 1.5; stroke-linejoin: round; stroke-linecap: round; }
svg .p95 { stroke: var(--accent); fill: none; stroke-width: 1; opacity: .45; stroke-linejoin: round; stroke-linecap: round; }
svg .ttft { stroke: var(--accent2); fill: none; stroke-width: 1.2; stroke-dasharray: 3 2; stroke-linecap: round; }
svg .base { stroke: var(--line); stroke-width: 1; }
svg .bar { fill: var(--accent); opacity: .8; }
svg text { fill: var(--muted); font-size: 10px; font-family: var(--mono); }
.legend { display: inline-flex; gap: 10px; font-size: 11px; color: var(--muted); text-transform: none; letter-spacing: 0; font-weight: 400; }
.legend i { display: inline-block; width: 14px; height: 0; border-top: 2px solid var(--accent); vertical-align: middle; margin-right: 3px; }
.legend i.p95 { opacity: .45; border-top-width: 1px; }
.legend i.ttft { border-top: 2px dashed var(--accent2); }
.split { display: grid; gap: 10px; grid-template-columns: repeat(auto-fit, minmax(min(100%, 320px), 1fr)); }
#recent-table td { white-space: nowrap; }
#recent-table tr.err > td { background: var(--bad-bg); }
#recent-table tr.err td.status { color: var(--bad); font-weight: 650; }
#recent-table tr.errmsg td { background: var(--bad-bg); color: var(--bad); white-space: normal; padding-left: 18px; font-family: var(--mono); font-size: 12px; }
#recent-scroll { max-height: 70vh; overflow: auto; }
.toolbar { display: flex; gap: 8px; align-items: center; margin-bottom: 6px; flex-wrap: wrap; }
.toolbar input[type=search] { flex: 1; min-width: 12em; max-width: 36em; }
.toolbar label { white-space: nowrap; }
#login { display: flex; justify-content: center; padding: 48px 12px; }
#login-form { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 14px 16px; display: grid; gap: 8px; width: min(100%, 340px); }
#login-form h2 { margin: 0; font-size: 14px; }
#login-form .row { display: flex; gap: 8px; }
#login-form .row input { flex: 1; min-width: 0; }
#login-error { color: var(--bad); min-height: 1.3em; }
@media (max-width: 640px) {
  main { padding: 8px 6px 20px; }
  .opt { display: none; }
  .tile .value { font-size: 17px; }
  td.name { white-space: normal; max-width: 12em; word-break: break-word; }
}
</style>
</head>
<body>
<header>
  <h1>switchboard</h1>
  <span class="meta mono" id="version">–</span>
  <span class="meta">viewer <b id="viewer">–</b></span>
  <span class="meta" id="worker" hidden></span>
  <span class="spacer"></span>
  <span class="meta" id="status" role="status" aria-live="polite">connecting…</span>
  <button type="button" id="logout" hidden>log out</button>
</header>

<div id="login" hidden>
  <form id="login-form" method="post" action="/dashboard/login" autocomplete="on" novalidate>
    <h2>switchboard dashboard</h2>
    <label for="login-key" class="muted">API key (a client key or the admin key)</label>
    <input type="text" autocomplete="username" value="switchboard" hidden readonly tabindex="-1" aria-hidden="true">
    <div class="row">
      <input type="password" id="login-key" autocomplete="current-password" spellcheck="false" required>
      <button type="submit" id="login-submit">log in</button>
    </div>
    <div id="login-error" role="alert"></div>
  </form>
</div>

<main id="board">
<div class="grid">

<section class="panel" id="now">
  <h2>Now <span class="aside muted" id="now-note">requests/s over 10 s</span></h2>
  <div class="tiles">
    <div class="tile"><span class="label">requests/s</span><span class="value" id="now-rps">–</span></div>
    <div class="tile"><span class="label">req, last min</span><span class="value" id="now-rpm">–</span></div>
    <div class="tile"><span class="label">errors, last min</span><span class="value" id="now-errors">–</span></div>
    <div class="tile"><span class="label">open streams</span><span class="value" id="now-streams">–</span></div>
    <div class="tile"><span class="label">queue waits</span><span class="value" id="now-queue">–</span></div>
    <div class="tile"><span class="label" title="upstream connections: lent out / idle">pool active / idle</span><span class="value" id="now-pool">–</span></div>
  </div>
  <div class="scroll"><table id="now-providers">
    <thead><tr><th>provider</th><th class="n">req/s</th><th class="n">req/min</th><th class="n">err/min</th><th class="n">in flight</th></tr></thead>
    <tbody><tr><td>–</td><td class="n">–</td><td class="n">–</td><td class="n">–</td><td class="n">–</td></tr></tbody>
  </table></div>
</section>

<section class="panel" id="routes">
  <h2>Routes</h2>
  <pre class="lines" id="routes-lines">–</pre>
  <pre class="lines" id="routes-rules" hidden></pre>
  <pre class="lines" id="routes-aliases" hidden></pre>
  <div class="muted" id="routes-fallbacks" hidden></div>
  <div id="providers"></div>
</section>

<section class="panel" id="latency">
  <h2>Latency <span class="aside muted" id="latency-window">per minute</span>
    <span class="legend"><span><i></i>total p50</span><span><i class="p95"></i>total p95</span><span><i class="ttft"></i>TTFT p50</span></span></h2>
  <div class="scroll"><table id="latency-table">
    <thead><tr><th>provider / model</th><th class="n">n</th><th class="n">TTFT p50</th><th class="n opt">TTFT p95</th><th class="n">total p50</th><th class="n">total p95</th><th>ms per minute (peak)</th></tr></thead>
    <tbody><tr><td>–</td><td class="n">–</td><td class="n">–</td><td class="n opt">–</td><td class="n">–</td><td class="n">–</td><td></td></tr></tbody>
  </table></div>
</section>

<section class="panel" id="tokens">
  <h2>Tokens <span class="aside muted">usage ledger, UTC days</span></h2>
  <div class="muted" id="tokens-off" hidden>usage ledger off (USAGE_DB=off)</div>
  <div id="tokens-on">
    <div class="tiles">
      <div class="tile"><span class="label">today, tokens</span><span class="value" id="tokens-today-total">–</span></div>
      <div class="tile"><span class="label">today, requests</span><span class="value" id="tokens-today-requests">–</span></div>
      <div class="tile"><span class="label">today, cache read</span><span class="value" id="tokens-today-cache">–</span></div>
      <div class="tile"><span class="label">7 days, tokens</span><span class="value" id="tokens-week-total">–</span></div>
    </div>
    <div id="tokens-week-chart"></div>
    <h3>By client</h3>
    <div class="scroll"><table id="tokens-by-client">
      <thead><tr><th>client</th><th class="n">req</th><th class="n opt" title="the whole prompt: fresh input, cache reads and cache writes">prompt</th><th class="n opt">output</th><th class="n" title="cache reads / the whole prompt (fresh input, cache reads and writes)">cache</th><th class="n">today</th><th class="n">7 days</th></tr></thead>
      <tbody><tr><td>–</td><td class="n">–</td><td class="n opt">–</td><td class="n opt">–</td><td class="n">–</td><td class="n">–</td><td class="n">–</td></tr></tbody>
    </table></div>
    <h3>By model</h3>
    <div class="scroll"><table id="tokens-by-model">
      <thead><tr><th>model</th><th class="n">req</th><th class="n opt" title="the whole prompt: fresh input, cache reads and cache writes">prompt</th><th class="n opt">output</th><th class="n" title="cache reads / the whole prompt (fresh input, cache reads and writes)">cache</th><th class="n">today</th><th class="n">7 days</th></tr></thead>
      <tbody><tr><td>–</td><td class="n">–</td><td class="n opt">–</td><td class="n opt">–</td><td class="n">–</td><td class="n">–</td><td class="n">–</td></tr></tbody>
    </table></div>
  </div>
</section>

<section class="panel full" id="recent">
  <h2>Recent requests <span class="aside muted"><span id="recent-count">–</span> shown<span id="recent-of"></span></span></h2>
  <div class="toolbar">
    <input type="search" id="recent-filter" placeholder="filter: client, model, status, request id, error…  (press /)" aria-label="filter recent requests" spellcheck="false" autocomplete="off">
    <label class="muted"><input type="checkbox" id="recent-errors-only"> errors only</label>
  </div>
  <div id="recent-scroll"><table id="recent-table">
    <thead><tr><th>time</th><th>client</th><th class="opt">front</th><th class="opt">rule</th><th>model</th><th class="n">status</th><th class="n">in</th><th class="n">out</th><th class="n opt">cache r</th><th class="n">ms</th><th class="n opt">TTFT</th><th class="opt">request id</th></tr></thead>
    <tbody></tbody>
  </table></div>
</section>

</div>
</main>

<script>
'use strict';
(function () {
  const POLL_MS = 2000;
  const MIN_GAP_MS = 500;
  const STALE_MS = 8000;
  const DASH = '\u2013';
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const INT = new Intl.NumberFormat('en-US', {maximumFractionDigits: 0});
  const DEC = new Intl.NumberFormat('en-US', {maximumFractionDigits: 2});
  const PCT = new Intl.NumberFormat('en-US', {maximumFractionDigits: 1});

  // ---- small helpers --------------------------------------------------------------------

  const byId = (id) => document.getElementById(id);
  const isNum = (v) => typeof v === 'number' && isFinite(v);
  const int = (v) => isNum(v) ? INT.format(Math.round(v)) : DASH;
  const dec = (v) => isNum(v) ? DEC.format(v) : DASH;
  const share = (part, whole) => isNum(part) && isNum(whole) && whole > 0 ? PCT.format(100 * part / whole) + '%' : DASH;
  const str = (v) => typeof v === 'string' && v !== '' ? v : DASH;
  const pad = (n) => String(n).padStart(2, '0');
  function clock(seconds) {
    if (!isNum(seconds)) return DASH;
    const d = new Date(seconds * 1000);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function isoDay(ms) {
    const d = new Date(ms);
    return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate());
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === 'class') node.className = value;
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }
  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) node.append(child);
    return node;
  }
  const td = (text, cls, title) => el('td', {class: cls, title: title}, text);
  const num = (text, extra) => td(text, 'n' + (extra ? ' ' + extra : ''));
  function setText(id, text, cls) {
    const node = byId(id);
    node.textContent = text;
    if (cls !== undefined) node.className = node.className.replace(/\b(bad|warn|good)\b/g, '').trim() + (cls ? ' ' + cls : '');
  }
  function placeholderRow(columns, text) {
    return el('tr', null, el('td', {colspan: columns, class: 'muted'}, text));
  }
  const list = (v) => Array.isArray(v) ? v : [];
  const obj = (v) => v && typeof v === 'object' && !Array.isArray(v) ? v : {};

  // ---- Now ------------------------------------------------------------------------------

  function renderNow(data) {
    const now = obj(data.now);
    setText('now-rps', dec(now.rps));
    setText('now-rpm', int(now.requests_last_minute));
    setText('now-errors', int(now.errors_last_minute), now.errors_last_minute > 0 ? 'bad' : '');
    setText('now-streams', int(now.open_streams));
    setText('now-queue', int(now.queue_waits), now.queue_waits > 0 ? 'warn' : '');
    const pool = obj(now.pool);
    setText('now-pool', int(pool.active) + ' / ' + int(pool.idle));
    const byProvider = obj(now.by_provider);
    const inFlight = {};
    for (const provider of list(data.providers)) inFlight[provider.name] = provider.in_flight;
    const names = Array.from(new Set([...Object.keys(inFlight), ...Object.keys(byProvider)])).sort();
    const rows = names.map((name) => {
      const p = obj(byProvider[name]);
      return el('tr', {'data-provider': name}, td(name, 'name mono'), num(dec(isNum(p.rps) ? p.rps : 0)),
        num(int(p.requests_last_minute || 0)), num(int(p.errors_last_minute || 0), p.errors_last_minute > 0 ? 'bad' : ''),
        num(int(inFlight[name])));
    });
    byId('now-providers').tBodies[0].replaceChildren(...(rows.length ? rows : [placeholderRow(5, 'no providers')]));
  }

  // ---- Routes ---------------------------------------------------------------------------

  function showLines(id, lines, prefix) {
    const node = byId(id);
    node.hidden = lines.length === 0;
    node.textContent = lines.map((line) => (prefix || '') + line).join('\n');
  }
  function renderRoutes(data) {
    const routes = list(data.routes).map(String);
    byId('routes-lines').textContent = routes.length ? routes.join('\n') : 'no routing table';
    showLines('routes-rules', list(data.route_rules).map(String), 'rule   ');
    showLines('routes-aliases', Object.entries(obj(data.aliases)).map(([from, to]) => from + ' = ' + to), 'alias  ');
    const fallbacks = list(data.fallbacks).map(String);
    const fallbackNode = byId('routes-fallbacks');
    fallbackNode.hidden = fallbacks.length === 0;
    fallbackNode.textContent = 'fallbacks, in order: ' + fallbacks.join(' \u2192 ');
    const now = Date.now();
    const blocks = list(data.providers).map((provider) => {
      const keys = list(provider.keys);
      const head = el('div', {class: 'head'}, el('b', null, str(provider.name)), el('span', {class: 'muted mono'}, str(provider.describe)),
        el('span', {class: 'muted'}, int(provider.in_flight) + ' in flight'),
        keys.length ? null : el('span', {class: 'muted'}, 'one key'));
      if (!keys.length) return el('div', {class: 'provider', 'data-provider': provider.name}, head);
      const rows = keys.map((key) => {
        const state = ['healthy', 'cooling', 'disabled'].includes(key.state) ? key.state : 'unknown';
        let label = state;
        let title = null;
        if (state === 'cooling' && isNum(key.cooling_until)) {
          const until = now + key.cooling_until * 1000;
          label = 'cooling until ' + clock(until / 1000);
          title = Math.ceil(key.cooling_until) + ' s left when last polled';
        }
        return el('tr', {'data-key': key.fingerprint, 'data-state': state}, td(str(key.fingerprint), 'mono'),
          el('td', null, el('span', {class: 'badge ' + state, title: title}, label)),
          num(int(key.requests)), num(int(key.rate_limited)), num(int(key.quota_exhausted)), num(int(key.failures)));
      });
      const table = el('table', null,
        el('thead', null, el('tr', null, el('th', null, 'key'), el('th', null, 'state'), el('th', {class: 'n'}, 'requests'),
          el('th', {class: 'n', title: 'answered 429: rate limited'}, '429'), el('th', {class: 'n'}, 'quota'), el('th', {class: 'n'}, 'failures'))),
        el('tbody', null, ...rows));
      return el('div', {class: 'provider', 'data-provider': provider.name}, head, el('div', {class: 'scroll'}, table));
    });
    byId('providers').replaceChildren(...blocks);
  }

  // ---- Latency --------------------------------------------------------------------------

  const SPARK_W = 160;  // the chart's own units; it is drawn as wide as its cell
  const SPARK_H = 30;
  function sparkPath(points, key, x, y) {
    let d = '';
    const at = (i) => i >= 0 && i < points.length && isNum(points[i][key]);
    points.forEach((point, i) => {
      if (!at(i)) return;
      const px = x(i);
      const py = y(point[key]).toFixed(1);
      if (at(i - 1)) d += 'L' + px.toFixed(1) + ' ' + py;
      else if (at(i + 1)) d += 'M' + px.toFixed(1) + ' ' + py;
      else d += 'M' + Math.max(0, px - 3).toFixed(1) + ' ' + py + 'L' + Math.min(SPARK_W, px + 3).toFixed(1) + ' ' + py;  // a lone minute: a short dash
    });
    return d;
  }
  function sparkline(row) {
    const points = list(row.series);
    let max = 0;
    for (const point of points) for (const key of ['total_p95', 'total_p50', 'ttft_p50']) if (isNum(point[key])) max = Math.max(max, point[key]);
    const chart = svg('svg', {class: 'spark', viewBox: '0 0 ' + SPARK_W + ' ' + SPARK_H, preserveAspectRatio: 'none', role: 'img'});
    const base = SPARK_H - 1;
    chart.append(svg('line', {class: 'base', x1: 0, y1: base, x2: SPARK_W, y2: base, 'vector-effect': 'non-scaling-stroke'}));
    const cell = el('div', {class: 'chart'}, chart, el('span', {class: 'peak muted'}, max ? int(max) : DASH));
    if (!max || !points.length) {
      chart.append(svg('title', null, 'no requests in the window'));
      return cell;
    }
    const x = (i) => points.length > 1 ? 1 + i * (SPARK_W - 2) / (points.length - 1) : SPARK_W / 2;
    const y = (v) => base - (v / max) * (SPARK_H - 4);
    for (const [key, cls] of [['total_p95', 'p95'], ['total_p50', 'p50'], ['ttft_p50', 'ttft']]) {
      const d = sparkPath(points, key, x, y);
      if (d) chart.append(svg('path', {class: cls, d: d, 'vector-effect': 'non-scaling-stroke'}));
    }
    const last = [...points].reverse().find((point) => point.count > 0) || {};
    chart.append(svg('title', null, row.provider + '/' + row.model + ', per minute: total p50 and p95, TTFT p50 (ms); top ' + int(max) +
      ' ms; last minute with requests: ' + int(last.count) + ' requests, total p50 ' + int(last.total_p50) + ' ms'));
    return cell;
  }
  function renderLatency(data) {
    const rows = list(data.latency).map((row) => el('tr', {'data-provider': row.provider, 'data-model': row.model},
      td(str(row.provider) + ' / ' + str(row.model), 'name mono'), num(int(row.count)), num(int(row.ttft_p50)), num(int(row.ttft_p95), 'opt'),
      num(int(row.total_p50)), num(int(row.total_p95)), el('td', null, sparkline(row))));
    const minutes = list((list(data.latency)[0] || {}).series).length;
    byId('latency-window').textContent = minutes ? 'last ' + minutes + ' min, per minute' : 'per minute';
    byId('latency-table').tBodies[0].replaceChildren(...(rows.length ? rows : [placeholderRow(7, 'no successful requests in the window')]));
  }

  // ---- Tokens ---------------------------------------------------------------------------

  const COUNTS = ['requests', 'errors', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'total_tokens'];
  function sumInto(target, row) {
    for (const key of COUNTS) target[key] = (target[key] || 0) + (isNum(row[key]) ? row[key] : 0);
    return target;
  }
  // The ledger's input_tokens are the fresh ones: the whole prompt adds cache reads and writes.
  const prompt = (sums) => (sums.input_tokens || 0) + (sums.cache_read_tokens || 0) + (sums.cache_write_tokens || 0);
  function groupBy(rows, key) {
    const groups = new Map();
    for (const row of rows) {
      const name = str(row[key]);
      groups.set(name, sumInto(groups.get(name) || {}, row));
    }
    return groups;
  }
  function tokensTable(id, today, week, key) {
    const byToday = groupBy(today, key);
    const byWeek = groupBy(week, key);
    const names = Array.from(new Set([...byToday.keys(), ...byWeek.keys()]));
    names.sort((a, b) => ((byWeek.get(b) || {}).total_tokens || 0) - ((byWeek.get(a) || {}).total_tokens || 0) || (a < b ? -1 : 1));
    const rows = names.map((name) => {
      const t = byToday.get(name) || {};
      const w = byWeek.get(name) || {};
      return el('tr', {'data-name': name}, td(name, 'name mono'), num(int(t.requests || 0)), num(int(prompt(t)), 'opt'),
        num(int(t.output_tokens || 0), 'opt'), num(share(t.cache_read_tokens, prompt(t))), num(int(t.total_tokens || 0)),
        num(int(w.total_tokens || 0)));
    });
    byId(id).tBodies[0].replaceChildren(...(rows.length ? rows : [placeholderRow(7, 'nothing recorded in 7 days')]));
  }
  function weekChart(week, generatedAt) {
    const byDay = groupBy(week, 'day');
    const end = isNum(generatedAt) ? generatedAt * 1000 : Date.now();
    const days = [];
    for (let back = 6; back >= 0; back--) days.push(isoDay(end - back * 86400000));
    const W = 7 * 44;
    const H = 56;
    const max = Math.max(0, ...days.map((day) => (byDay.get(day) || {}).total_tokens || 0));
    const chart = svg('svg', {class: 'spark', width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img'});
    chart.append(svg('title', null, 'tokens per UTC day, last 7 days'));
    days.forEach((day, i) => {
      const total = (byDay.get(day) || {}).total_tokens || 0;
      const h = max ? Math.max(total ? 1 : 0, (total / max) * (H - 16)) : 0;
      const bar = svg('rect', {class: 'bar', x: i * 44 + 4, y: H - 12 - h, width: 36, height: h, rx: 1});
      bar.append(svg('title', null, day + ': ' + int(total) + ' tokens, ' + int((byDay.get(day) || {}).requests || 0) + ' requests'));
      const label = svg('text', {x: i * 44 + 22, y: H - 1, 'text-anchor': 'middle'});
      label.textContent = day.slice(5);
      chart.append(svg('line', {class: 'base', x1: i * 44 + 2, y1: H - 12, x2: i * 44 + 42, y2: H - 12}), bar, label);
    });
    return chart;
  }
  function renderTokens(data) {
    const tokens = obj(data.tokens);
    const on = tokens.ledger !== false;
    byId('tokens-off').hidden = on;
    byId('tokens-on').hidden = !on;
    if (!on) return;
    const today = list(tokens.today);
    const week = list(tokens.week);
    const t = today.reduce(sumInto, {});
    const w = week.reduce(sumInto, {});
    setText('tokens-today-total', int(t.total_tokens || 0));
    setText('tokens-today-requests', int(t.requests || 0));
    setText('tokens-today-cache', share(t.cache_read_tokens, prompt(t)));
    setText('tokens-week-total', int(w.total_tokens || 0));
    byId('tokens-week-chart').replaceChildren(weekChart(week, data.generated_at));
    tokensTable('tokens-by-client', today, week, 'client');
    tokensTable('tokens-by-model', today, week, 'model');
  }

  // ---- Recent requests ------------------------------------------------------------------

  let recent = [];
  let recentDrawn = null;  // what the table shows: [first request id, length, filter], to skip redraws
  const SEARCHED = ['client', 'front', 'route_rule', 'provider', 'model', 'upstream', 'status', 'request_id', 'error'];
  function matches(entry, terms, errorsOnly) {
    if (errorsOnly && !(entry.status >= 400)) return false;
    if (!terms.length) return true;
    const text = (clock(entry.time) + ' ' + SEARCHED.map((key) => entry[key] === null || entry[key] === undefined ? '' : String(entry[key])).join(' ')).toLowerCase();
    return terms.every((term) => text.includes(term));
  }
  function recentRow(entry) {
    const failed = entry.status >= 400 || Boolean(entry.error);
    const upstream = typeof entry.upstream === 'string' && entry.upstream !== '-' ? entry.upstream : null;
    const model = el('td', {class: 'name', title: upstream ? 'sent to ' + upstream : null}, str(entry.model));
    if (upstream && entry.provider && upstream !== entry.provider + '/' + entry.model) model.append(el('span', {class: 'muted'}, ' \u2192 ' + upstream));
    const status = td(isNum(entry.status) && entry.status > 0 ? String(entry.status) : DASH, 'n status');
    const row = el('tr', {'data-request-id': str(entry.request_id), 'data-client': str(entry.client), 'data-status': entry.status,
      class: failed ? 'err' : null},
      td(clock(entry.time), 'mono', isNum(entry.time) ? new Date(entry.time * 1000).toISOString() : null), td(str(entry.client), 'name'),
      td(str(entry.front), 'opt'), td(str(entry.route_rule), 'opt name'), model, status,
      num(int(entry.input_tokens)), num(int(entry.output_tokens)), num(int(entry.cache_read_tokens), 'opt'), num(int(entry.ms)),
      num(int(entry.ttft_ms), 'opt'), td(str(entry.request_id), 'mono opt'));
    if (!entry.error) return [row];
    return [row, el('tr', {class: 'errmsg'}, el('td', {colspan: 12}, String(entry.error)))];
  }
  function renderRecent(force) {
    const filter = byId('recent-filter').value.trim().toLowerCase();
    const errorsOnly = byId('recent-errors-only').checked;
    const key = [recent.length ? recent[0].request_id : '', recent.length, filter, errorsOnly].join('\u0000');
    if (!force && key === recentDrawn) return;
    recentDrawn = key;
    const terms = filter.split(/\s+/).filter(Boolean);
    const shown = recent.filter((entry) => matches(entry, terms, errorsOnly));
    const rows = [];
    for (const entry of shown) rows.push(...recentRow(entry));
    if (!rows.length) rows.push(placeholderRow(12, recent.length ? 'no request matches the filter' : 'no requests yet'));
    byId('recent-table').tBodies[0].replaceChildren(...rows);
    setText('recent-count', int(shown.length));
    byId('recent-of').textContent = shown.length === recent.length ? '' : ' of ' + int(recent.length);
  }

  // ---- the whole board ------------------------------------------------------------------

  function render(data) {
    byId('version').textContent = data.version ? 'v' + data.version : DASH;
    const viewer = obj(data.viewer);
    const who = viewer.client && viewer.client !== 'admin' ? viewer.client + ', admin' : 'admin';
    byId('viewer').textContent = viewer.admin ? who + ' (all clients)' : str(viewer.client);
    const worker = obj(data.worker);
    // Several workers: the live numbers are those of every worker that shared them in the last seconds
    // (normally all of them); the tokens are everyone's, from the ledger.
    byId('worker').hidden = !(worker.of > 1);
    byId('worker').textContent = worker.of > 1 ? 'live numbers of ' + int(isNum(worker.merged) ? worker.merged : 1) + ' of ' + int(worker.of) + ' workers' : '';
    renderNow(data);
    renderRoutes(data);
    renderLatency(data);
    renderTokens(data);
    recent = list(data.recent);
    renderRecent(false);
  }
  function clearBoard() {
    recent = [];
    recentDrawn = null;
    for (const node of document.querySelectorAll('.tile .value')) node.textContent = DASH;
    for (const id of ['now-providers', 'latency-table', 'tokens-by-client', 'tokens-by-model', 'recent-table']) byId(id).tBodies[0].replaceChildren();
    for (const id of ['providers', 'tokens-week-chart']) byId(id).replaceChildren();
    byId('routes-lines').textContent = DASH;
    for (const id of ['routes-rules', 'routes-aliases', 'routes-fallbacks']) byId(id).hidden = true;
    byId('recent-count').textContent = DASH;
    byId('recent-of').textContent = '';
    byId('version').textContent = DASH;
    byId('viewer').textContent = DASH;
  }

  // ---- polling, login, logout -----------------------------------------------------------

  let timer = null;
  let polling = false;
  let loggedOut = false;  // the last answer was 401: wait for a login instead of polling
  let lastStart = 0;
  let lastData = 0;
  function status(text, cls) {
    const node = byId('status');
    node.textContent = text;
    node.className = 'meta' + (cls ? ' ' + cls : '');
  }
  function schedule(ms) {
    if (timer !== null || loggedOut) return;
    timer = setTimeout(poll, Math.max(ms, MIN_GAP_MS - (Date.now() - lastStart)));
  }
  function pollSoon() {
    if (timer !== null) { clearTimeout(timer); timer = null; }
    loggedOut = false;
    schedule(0);
  }
  async function poll() {
    timer = null;
    if (polling) return;
    if (document.hidden) return;  // visibilitychange polls again when the tab is shown
    polling = true;
    lastStart = Date.now();
    try {
      const answer = await fetch('/dashboard/data', {cache: 'no-store', credentials: 'same-origin', headers: {accept: 'application/json'}});
      if (answer.status === 401) {
        showLogin();
        return;
      }
      if (!answer.ok) {
        status('the gateway answered HTTP ' + answer.status + (lastData ? '; last data ' + clock(lastData / 1000) : ''), 'down');
        return;
      }
      const data = await answer.json();
      hideLogin();
      byId('logout').hidden = data.sessions === false;  // no keys configured: nothing to log out of
      try {
        render(data);
        lastData = Date.now();
        status('updated ' + clock(lastData / 1000));
      } catch (error) {
        status('page error: ' + (error && error.message ? error.message : String(error)), 'down');
      }
    } catch (error) {
      status('no answer from the gateway' + (lastData ? '; last data ' + clock(lastData / 1000) : ''), 'down');
    } finally {
      polling = false;
      schedule(POLL_MS);
    }
  }
  function showLogin() {
    loggedOut = true;
    clearBoard();
    byId('board').hidden = true;
    byId('logout').hidden = true;
    const wasHidden = byId('login').hidden;
    byId('login').hidden = false;
    status('log in to see the dashboard');
    if (wasHidden) byId('login-key').focus();
  }
  function hideLogin() {
    byId('login').hidden = true;
    byId('board').hidden = false;
    byId('logout').hidden = false;
  }
  byId('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = byId('login-key');
    const button = byId('login-submit');
    const error = byId('login-error');
    if (!input.value) { error.textContent = 'enter a key'; return; }
    error.textContent = '';
    button.disabled = true;
    try {
      const answer = await fetch('/dashboard/login', {method: 'POST', cache: 'no-store', credentials: 'same-origin',
        headers: {'content-type': 'application/json'}, body: JSON.stringify({key: input.value})});
      if (answer.status === 204 || answer.ok) {
        input.value = '';
        status('logged in');
        pollSoon();
      } else if (answer.status === 401) {
        error.textContent = 'invalid key';
        input.select();
      } else {
        error.textContent = 'login failed: HTTP ' + answer.status;
      }
    } catch (failure) {
      error.textContent = 'no answer from the gateway';
    } finally {
      button.disabled = false;
    }
  });
  byId('logout').addEventListener('click', async () => {
    const button = byId('logout');
    button.disabled = true;
    try {
      // JSON, as login: a cross-site form cannot send it without a preflight the gateway never grants.
      const answer = await fetch('/dashboard/logout', {method: 'POST', cache: 'no-store', credentials: 'same-origin',
        headers: {'content-type': 'application/json'}, body: '{}'});
      if (!answer.ok) {
        status('log out failed: HTTP ' + answer.status, 'down');
        return;
      }
    } catch (failure) {
      status('log out failed: no answer from the gateway', 'down');
      return;
    } finally {
      button.disabled = false;
    }
    clearBoard();
    pollSoon();
  });
  byId('recent-filter').addEventListener('input', () => renderRecent(false));
  byId('recent-errors-only').addEventListener('change', () => renderRecent(false));
  document.addEventListener('keydown', (event) => {
    const target = event.target;
    const typing = target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA');
    if (event.key === '/' && !typing && !byId('board').hidden) {
      event.preventDefault();
      byId('recent-filter').focus();
    } else if (event.key === 'Escape' && target === byId('recent-filter')) {
      target.value = '';
      renderRecent(false);
    }
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && !loggedOut) pollSoon();
  });
  setInterval(() => {
    if (lastData && !loggedOut && Date.now() - lastData > STALE_MS) byId('status').classList.add('stale');
  }, 1000);
  poll();
})();
</script>
</body>
</html>
"""

PAGE: bytes = _HTML.encode("utf-8")
