// The dashboard page: one state object, drawn again from scratch whenever it changes
// (a snapshot arrives every second). The token lives in sessionStorage: this tab only,
// gone when the tab closes, sent as `authorization: Bearer` on the stream and on drains.
import { render } from './vendor/preact.mjs';
import { connectEvents } from './events.js';
import { History } from './history.js';
import { Alerts, Distribution, Functions, Header, html, Nodes, Notice, Summary } from './views.js';

const TOKEN_KEY = 'easyremote.token';

const state = {
  snapshot: undefined,
  status: { state: 'connecting', message: '' },
  notice: undefined,
};
const history = new History();
const root = document.getElementById('app');
// The "Loading" line goes before preact's first render, which happens as soon as the stream starts.
root.replaceChildren();

function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

function authHeaders() {
  const t = token();
  return t ? { authorization: `Bearer ${t}` } : {};
}

function update(patch) {
  Object.assign(state, patch);
  draw();
}

async function drain(nodeId) {
  if (!confirm(`Drain node ${nodeId}? It takes no new calls, finishes the ones it has, then leaves.`)) return;
  try {
    const res = await fetch(`api/nodes/${encodeURIComponent(nodeId)}/drain`, { method: 'POST', headers: authHeaders() });
    const body = await res.json().catch(() => ({}));
    if (res.ok) update({ notice: { ok: true, text: body.draining ? `Node ${nodeId} is draining.` : `Node ${nodeId} was already draining.` } });
    else update({ notice: { ok: false, text: `Drain refused (${res.status}): ${body.message ?? res.statusText}` } });
  } catch (err) {
    update({ notice: { ok: false, text: `Drain failed: ${err.message}` } });
  }
}

const events = connectEvents(
  authHeaders,
  (snapshot) => {
    history.add(snapshot.bucket, snapshot.functions.map((f) => f.name));
    update({ snapshot });
  },
  (status) => update({ status }),
);

function useToken(value) {
  if (!value) return;
  sessionStorage.setItem(TOKEN_KEY, value);
  update({ notice: { ok: true, text: 'Token set for this tab.' } });
  events.restart();
}

function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  update({ notice: { ok: true, text: 'Token forgotten.' } });
  events.restart();
}

function App() {
  const snap = state.snapshot;
  return html`
    <${Header} status=${state.status} hasToken=${token() !== ''} onToken=${useToken} onForget=${forgetToken} />
    <${Notice} notice=${state.notice} />
    ${snap === undefined
      ? html`<p class="muted">Waiting for the gateway's first snapshot…</p>`
      : html`
          <${Summary} snap=${snap} />
          <${Nodes} snap=${snap} onDrain=${drain} />
          <${Functions} snap=${snap} history=${history} />
          <${Distribution} snap=${snap} />
          <${Alerts} snap=${snap} />
          <footer class="muted small">Snapshot of ${new Date(snap.at).toLocaleTimeString()} · figures over the last ${snap.live.windowMs / 1000} s unless marked · charts: the last ${history.limit} s, kept by this page since it opened</footer>
        `}
  `;
}

function draw() {
  render(html`<${App} />`, root);
}

draw();
