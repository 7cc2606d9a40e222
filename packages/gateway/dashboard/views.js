// What the page shows, as preact components over one snapshot (see DashboardSnapshot in
// @easyremote/protocol) and the charts' history. No component keeps state of its own: the
// page renders everything again from each snapshot.
import { h } from './vendor/preact.mjs';
import htm from './vendor/htm.mjs';
import { Chart } from './chart.js';

export const html = htm.bind(h);

/** Charts drawn at most: the busiest functions first. */
const MAX_CHARTS = 12;

const GIB = 1024 ** 3;
const percent = (x) => `${Math.round(x)}%`;
const gib = (bytes) => `${(bytes / GIB).toFixed(bytes >= 10 * GIB ? 0 : 1)} GiB`;
const ms = (x) => (x >= 100 ? `${Math.round(x)} ms` : x >= 1 ? `${x.toFixed(1)} ms` : `${x.toFixed(2)} ms`);
const rate = (x) => (x >= 10 ? x.toFixed(0) : x.toFixed(1));
const ago = (epochMs, now) => {
  const s = Math.max(0, Math.round((now - epochMs) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
};

/** A 0..1 figure as a bar, coloured from 0.7 and from 0.9. */
function Bar({ value, label }) {
  const v = Math.max(0, Math.min(1, value));
  return html`<span class="bar" title=${label}>
    <span class=${`fill ${v >= 0.9 ? 'high' : v >= 0.7 ? 'mid' : ''}`} style=${{ width: `${v * 100}%` }}></span>
    <span class="bar-label">${label}</span>
  </span>`;
}

function health(node) {
  if (node.state === 'draining') return { word: 'draining', cls: 'warn' };
  if (node.state !== 'active') return { word: node.state, cls: 'bad' };
  if (!node.healthy) return { word: 'unhealthy', cls: 'bad' };
  if (!node.available) return { word: 'busy', cls: 'warn' };
  return { word: 'healthy', cls: 'ok' };
}

export function Header({ status, hasToken, onToken, onForget }) {
  const submit = (e) => {
    e.preventDefault();
    const input = e.currentTarget.elements.token;
    onToken(input.value.trim());
    input.value = '';
  };
  const words = { connecting: 'connecting…', live: 'live', refused: 'refused', retrying: 'reconnecting…' };
  return html`<header>
    <h1>EasyRemote gateway</h1>
    <span class=${`pill ${status.state}`} data-testid="status" title=${status.message}>${words[status.state] ?? status.state}</span>
    ${status.message && html`<span class="status-message" data-testid="status-message">${status.message}</span>`}
    <form class="token" onSubmit=${submit}>
      <label>Token <input name="token" type="password" autocomplete="off" placeholder=${hasToken ? 'a token is set for this tab' : 'admin or client token'} data-testid="token" /></label>
      <button type="submit" data-testid="use-token">Use</button>
      ${hasToken && html`<button type="button" onClick=${onForget} data-testid="forget-token">Forget</button>`}
    </form>
  </header>`;
}

export function Notice({ notice }) {
  if (!notice) return null;
  return html`<p class=${`notice ${notice.ok ? 'ok' : 'error'}`} role="status" data-testid="notice">${notice.text}</p>`;
}

export function Summary({ snap }) {
  const healthy = snap.nodes.filter((n) => n.healthy).length;
  const inFlight = snap.nodes.reduce((sum, n) => sum + n.inFlight, 0);
  const queued = snap.functions.reduce((sum, f) => sum + f.queued, 0);
  const o = snap.live.overall;
  const cards = [
    ['nodes', `${healthy} / ${snap.nodes.length}`, 'healthy / connected'],
    ['rate', rate(snap.bucket.overall.calls / snap.bucket.seconds), 'calls/s (last second)'],
    ['calls', String(o.calls), 'calls in the last minute'],
    ['errors', String(o.errors), 'errors in the last minute'],
    ['latency', o.calls ? `${ms(o.p50Ms)} / ${ms(o.p99Ms)}` : '–', 'p50 / p99 (last minute)'],
    ['in-flight', `${inFlight}${queued ? ` + ${queued} queued` : ''}`, 'calls running now'],
  ];
  return html`<section class="cards">
    ${cards.map(([key, value, label]) => html`<div class="card" data-testid=${`card-${key}`}><b>${value}</b><span>${label}</span></div>`)}
  </section>`;
}

function Telemetry({ node }) {
  const t = node.telemetry;
  if (!t) return html`<td colspan="3" class="muted" title=${node.telemetryIssue}>${node.telemetryIssue ? 'telemetry dropped' : 'no telemetry'}</td>`;
  const mem = t.memoryTotalBytes > 0 ? t.memoryUsedBytes / t.memoryTotalBytes : 0;
  return html`
    <td><${Bar} value=${t.cpuPercent / 100} label=${percent(t.cpuPercent)} /></td>
    <td><${Bar} value=${mem} label=${`${gib(t.memoryUsedBytes)} / ${gib(t.memoryTotalBytes)}`} /></td>
    <td>${t.gpus.length === 0
      ? html`<span class="muted">none</span>`
      : t.gpus.map((g) => html`<div><${Bar} value=${g.utilizationPercent / 100} label=${`GPU${g.index} ${percent(g.utilizationPercent)} · ${gib(g.vramUsedBytes)} / ${gib(g.vramTotalBytes)}`} /></div>`)}</td>`;
}

export function Nodes({ snap, onDrain }) {
  const recent = new Map(snap.live.nodes.map((n) => [n.nodeId, n]));
  const total = new Map(snap.live.distribution.map((d) => [d.nodeId, d]));
  if (snap.nodes.length === 0) return html`<section><h2>Nodes</h2><p class="muted">No node is connected.</p></section>`;
  return html`<section>
    <h2>Nodes</h2>
    <table class="nodes" data-testid="nodes">
      <thead><tr><th>Node</th><th>Health</th><th>CPU</th><th>Memory</th><th>GPU</th><th>Load (in flight / slots)</th><th>RTT</th><th>Calls (1 min)</th><th>p50 / p99</th><th>Calls since start</th><th></th></tr></thead>
      <tbody>
        ${snap.nodes.map((n) => {
          const state = health(n);
          const r = recent.get(n.nodeId);
          const d = total.get(n.nodeId);
          return html`<tr key=${n.nodeId} data-node=${n.nodeId}>
            <td><b>${n.nodeId}</b>${n.kind === 'backend' ? html` <span class="pill backend" data-field="kind" title="registered over the LoadBalancer service: look-aside clients call it directly; the gateway relays no calls to it">backend</span>` : ''}<div class="muted small">${n.functions.join(', ')}</div>${n.direct ? html`<div class="muted small" data-field="direct">direct ${n.direct}</div>` : ''}</td>
            <td><span class=${`pill ${state.cls}`} data-field="health" title=${n.reason}>${state.word}</span>${n.reason && html`<div class="muted small">${n.reason}</div>`}</td>
            <${Telemetry} node=${n} />
            <td data-field="load"><${Bar} value=${n.slots > 0 ? n.inFlight / n.slots : 0} label=${`${n.inFlight} / ${n.slots > 0 ? n.slots : '∞'}`} /></td>
            <td>${n.rttMs === undefined ? '–' : ms(n.rttMs)}</td>
            <td data-field="recent-calls">${r ? r.calls : 0}</td>
            <td>${r ? `${ms(r.p50Ms)} / ${ms(r.p99Ms)}` : '–'}</td>
            <td data-field="total-calls">${d ? d.calls : 0}</td>
            <td><button type="button" class="drain" data-testid="drain" disabled=${n.state !== 'active'} onClick=${() => onDrain(n.nodeId)}>Drain</button></td>
          </tr>`;
        })}
      </tbody>
    </table>
  </section>`;
}

export function Distribution({ snap }) {
  const rows = snap.live.distribution;
  const connected = new Set(snap.nodes.map((n) => n.nodeId));
  return html`<section>
    <h2>Distribution of calls across nodes <span class="muted small">(since the gateway started)</span></h2>
    ${rows.length === 0
      ? html`<p class="muted">No node has served a call yet.</p>`
      : html`<div class="distribution" data-testid="distribution">
          ${rows.map((d) => html`<div class="dist-row" data-node=${d.nodeId}>
            <span class="dist-name">${d.nodeId}${connected.has(d.nodeId) ? '' : html` <span class="muted small">(gone)</span>`}</span>
            <${Bar} value=${d.share} label=${`${d.calls} calls · ${percent(d.share * 100)}${d.errors ? ` · ${d.errors} errors` : ''}`} />
          </div>`)}
        </div>`}
  </section>`;
}

export function Functions({ snap, history }) {
  const live = new Map(snap.live.functions.map((f) => [f.functionName, f]));
  const now = new Map(snap.bucket.functions.map((f) => [f.functionName, f]));
  const busiest = [...snap.functions].sort((a, b) => (live.get(b.name)?.calls ?? 0) - (live.get(a.name)?.calls ?? 0) || a.name.localeCompare(b.name));
  return html`<section>
    <h2>Functions</h2>
    ${busiest.length === 0 && html`<p class="muted">No function is registered.</p>`}
    <div class="functions">
      ${busiest.map((f, i) => {
        const l = live.get(f.name);
        const n = now.get(f.name);
        return html`<article class="function" key=${f.name} data-function=${f.name}>
          <h3>${f.name} <span class="muted small">${f.strategy} · ${f.kind} · ${f.providers} node${f.providers === 1 ? '' : 's'}</span></h3>
          <p class="figures">
            <b data-field="rate">${rate(n ? n.calls / snap.bucket.seconds : 0)} calls/s</b>
            <span>${f.inFlight} in flight${f.queued ? `, ${f.queued} queued` : ''}</span>
            <span class="muted">last minute:</span>
            <span data-field="calls">${l ? l.calls : 0} calls</span>
            <span>p50 ${l ? ms(l.p50Ms) : '–'}</span>
            <span>p99 ${l ? ms(l.p99Ms) : '–'}</span>
            <span>${l ? l.errors : 0} errors</span>
          </p>
          ${i < MAX_CHARTS && html`<${Chart} data=${history.data(f.name)} />`}
        </article>`;
      })}
    </div>
  </section>`;
}

export function Alerts({ snap }) {
  const { active, recent } = snap.alerts;
  const resolved = recent.filter((a) => a.resolvedAt !== null).slice(0, 5);
  const report = snap.recommendations;
  return html`<section class="columns">
    <div>
      <h2>Alerts</h2>
      <ul class="alerts" data-testid="alerts">
        ${active.length === 0 && html`<li class="muted">No active alert.</li>`}
        ${active.map((a) => html`<li key=${a.id}><span class=${`pill ${a.severity === 'critical' ? 'bad' : 'warn'}`}>${a.severity}</span> ${a.message} <span class="muted small">since ${ago(a.raisedAt, snap.at)}${a.occurrences > 1 ? `, seen ${a.occurrences} times` : ''}</span></li>`)}
        ${resolved.map((a) => html`<li key=${a.id} class="resolved"><span class="pill">resolved</span> ${a.message} <span class="muted small">${ago(a.resolvedAt, snap.at)}</span></li>`)}
      </ul>
    </div>
    <div>
      <h2>Recommendations</h2>
      <ul class="recommendations" data-testid="recommendations">
        ${report.recommendations.length === 0 && html`<li class="muted">None: ${report.healthyNodes} healthy node(s), utilisation imbalance ${report.utilisationImbalance.toFixed(2)}, average latency ${ms(report.averageLatencyMs)}.</li>`}
        ${report.recommendations.map((r) => html`<li>${r.message} <span class="muted small">(suggests ${r.suggestedStrategy})</span></li>`)}
      </ul>
    </div>
  </section>`;
}
