// The dashboard on a real gateway's HTTP port: the page and its files (content types,
// security headers, 404s, no way out of the table with `..`), and /api/events (the same
// read rules as the other /api/ documents, text/event-stream, the snapshot's content, the
// cap on open streams, streams ended by stop()).
import { readFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { connect as connectTcp } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '@easyremote/client';
import type { Gateway, GatewayOptions } from '@easyremote/gateway';
import type { ComputeNode } from '@easyremote/node';
import type { DashboardSnapshot } from '@easyremote/protocol';
import { DEFAULT_MAX_EVENT_STREAMS } from '../packages/gateway/src/api/event-stream.js';
import { ROOT, startGateway, startNode, waitFor } from './support/cluster.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const AUTH: GatewayOptions['auth'] = {
  principals: [
    { name: 'fleet', token: 'fleet-node-token', role: 'node' },
    { name: 'viewer', token: 'viewer-client-token', role: 'client' },
    { name: 'ops', token: 'ops-admin-token', role: 'admin' },
  ],
};
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

async function cluster(options: GatewayOptions = {}, token?: string): Promise<{ gw: Gateway; node: ComputeNode }> {
  const gw = await startGateway({ httpPort: 0, startupGraceMs: 0, ...options });
  const node = await startNode(gw.address, (n) => n.register('add', (a: number, b: number) => a + b, { maxConcurrent: 3 }), { nodeId: 'n1', telemetry: false, ...(token ? { token } : {}) });
  cleanups.push(() => gw.stop(), () => node.stop());
  return { gw, node };
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Sends the request line exactly as written (no client-side normalisation of the path). */
function raw(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp(port, '127.0.0.1', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

interface Stream {
  res: IncomingMessage;
  ended: Promise<unknown>;
  snapshots: (count: number) => Promise<DashboardSnapshot[]>;
  close: () => void;
}

function events(port: number, headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/events', headers }, (res) => {
      let pending = '';
      const got: DashboardSnapshot[] = [];
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        pending += d;
        for (let end = pending.indexOf('\n\n'); end >= 0; end = pending.indexOf('\n\n')) {
          const block = pending.slice(0, end);
          pending = pending.slice(end + 2);
          const data = /^data: (.*)$/m.exec(block);
          if (data && /^event: snapshot$/m.test(block)) got.push(JSON.parse(data[1]!) as DashboardSnapshot);
        }
      });
      const ended = new Promise((r) => res.on('close', r));
      resolve({
        res,
        ended,
        snapshots: async (count) => {
          await waitFor(`${count} snapshots`, () => got.length >= count, 10_000);
          return got.slice();
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the dashboard page over HTTP', () => {
  it('serves the page and its files with their content types, a strict CSP and revalidation headers', async () => {
    const { gw } = await cluster();
    const page = await get(gw.httpPort, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['x-frame-options']).toBe('DENY');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers.etag).toBeDefined();
    expect(page.body).toContain('<script type="module" src="dashboard/app.js"></script>');
    const types: Record<string, string> = {
      '/dashboard/app.js': 'text/javascript; charset=utf-8',
      '/dashboard/views.js': 'text/javascript; charset=utf-8',
      '/dashboard/style.css': 'text/css; charset=utf-8',
      '/dashboard/favicon.svg': 'image/svg+xml',
      '/dashboard/vendor/preact.mjs': 'text/javascript; charset=utf-8',
      '/dashboard/vendor/htm.mjs': 'text/javascript; charset=utf-8',
      '/dashboard/vendor/uplot.mjs': 'text/javascript; charset=utf-8',
      '/dashboard/vendor/uplot.css': 'text/css; charset=utf-8',
    };
    for (const [path, type] of Object.entries(types)) {
      const r = await get(gw.httpPort, path);
      expect([path, r.status, r.headers['content-type']]).toEqual([path, 200, type]);
    }
    // The bytes are the package's own files.
    expect((await get(gw.httpPort, '/dashboard/app.js')).body).toBe(readFileSync(join(ROOT, 'packages/gateway/dashboard/app.js'), 'utf8'));
    expect((await get(gw.httpPort, '/', { 'if-none-match': page.headers.etag! })).status).toBe(304);
  });

  it('answers 404 for files not in the dashboard, and no path with .. (plain or encoded) reaches another file', async () => {
    const { gw } = await cluster();
    for (const path of ['/dashboard/nope.js', '/dashboard/', '/dashboard', '/dashboard/vendor/', '/index.html', '/dashboard/vendor/preact.mjs.map']) {
      const r = await get(gw.httpPort, path);
      expect([path, r.status, r.headers['content-type']]).toEqual([path, 404, 'application/json']);
    }
    const secret = readFileSync(join(ROOT, 'packages/gateway/package.json'), 'utf8');
    for (const path of [
      '/dashboard/../package.json',
      '/dashboard/../../package.json',
      '/dashboard/%2e%2e/%2e%2e/package.json',
      '/dashboard/..%2f..%2fpackage.json',
      '/dashboard/vendor/..%2F..%2F..%2Fpackage.json',
      '/dashboard/..%5c..%5cpackage.json',
      '/dashboard/app.js%00.json',
      '//etc/passwd',
      '/dashboard/vendor/../../../../../../etc/passwd',
    ]) {
      const answer = await raw(gw.httpPort, path);
      expect(answer.split('\r\n')[0], path).toMatch(/^HTTP\/1\.1 (404|400) /);
      expect(answer).not.toContain('"name": "@easyremote/gateway"');
      expect(answer).not.toContain('root:x:0:0');
      expect(answer.length).toBeLessThan(secret.length + 600);
    }
  });

  it('is served without a token on a gateway with principals (it holds no data), while the API wants one', async () => {
    const { gw } = await cluster({ auth: AUTH }, 'fleet-node-token');
    expect((await get(gw.httpPort, '/')).status).toBe(200);
    expect((await get(gw.httpPort, '/dashboard/app.js')).status).toBe(200);
    expect((await get(gw.httpPort, '/api/nodes')).status).toBe(401);
    // A file name that is not the dashboard's is no way around the token.
    expect((await get(gw.httpPort, '/dashboard/../api/nodes')).status).toBe(401);
  });
});

describe('GET /api/events', () => {
  it('streams text/event-stream snapshots of nodes, functions, live figures, alerts and recommendations, once a second', async () => {
    const { gw } = await cluster();
    const client = connect(gw.address);
    cleanups.push(() => client.close());
    for (let i = 0; i < 5; i++) expect(await client.call('add', [i, 1])).toBe(i + 1);
    const s = await events(gw.httpPort);
    cleanups.push(() => s.close());
    expect(s.res.statusCode).toBe(200);
    expect(s.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(s.res.headers['cache-control']).toBe('no-store');
    const [first] = await s.snapshots(1);
    expect(first!.nodes.map((n) => [n.nodeId, n.state, n.healthy, n.slots, n.inFlight])).toEqual([['n1', 'active', true, 3, 0]]);
    expect(first!.functions).toEqual([{ name: 'add', strategy: 'round_robin', kind: 'unary', providers: 1, inFlight: 0, queued: 0 }]);
    expect(first!.live.functions).toEqual([expect.objectContaining({ functionName: 'add', calls: 5, errors: 0 })]);
    expect(first!.live.distribution).toEqual([{ nodeId: 'n1', calls: 5, errors: 0, share: 1 }]);
    expect(first!.alerts).toMatchObject({ active: [], recent: [] });
    expect(first!.recommendations).toMatchObject({ healthyNodes: 1, unhealthyNodes: 0 });
    expect(first!.bucket).toMatchObject({ seconds: 1 });
    expect(Math.abs(first!.at - Date.now())).toBeLessThan(5_000);
    // The next one about a second later, with the calls made meanwhile.
    for (let i = 0; i < 3; i++) await client.call('add', [1, 1]);
    const later = await s.snapshots(2);
    expect(later[1]!.at - later[0]!.at).toBeGreaterThanOrEqual(900);
    expect(later[1]!.live.distribution[0]!.calls).toBe(8);
  });

  it('follows the read rules of the other /api/ documents: no token 401, a node token 403, client and admin tokens stream', async () => {
    const { gw } = await cluster({ auth: AUTH }, 'fleet-node-token');
    const none = await get(gw.httpPort, '/api/events');
    expect(none.status).toBe(401);
    expect(none.headers['content-type']).toBe('application/json');
    expect(JSON.parse(none.body)).toMatchObject({ error: 'UNAUTHENTICATED' });
    expect((await get(gw.httpPort, '/api/events', bearer('wrong-token-value'))).status).toBe(401);
    const node = await get(gw.httpPort, '/api/events', bearer('fleet-node-token'));
    expect(node.status).toBe(403);
    expect(JSON.parse(node.body)).toMatchObject({ error: 'PERMISSION_DENIED' });
    for (const token of ['viewer-client-token', 'ops-admin-token']) {
      const s = await events(gw.httpPort, bearer(token));
      cleanups.push(() => s.close());
      expect(s.res.statusCode).toBe(200);
      expect((await s.snapshots(1))[0]!.nodes.map((n) => n.nodeId)).toEqual(['n1']);
    }
  });

  it(`refuses stream ${DEFAULT_MAX_EVENT_STREAMS + 1} with 503 while ${DEFAULT_MAX_EVENT_STREAMS} are open, and takes it once one closes`, async () => {
    const { gw } = await cluster();
    const open: Stream[] = [];
    for (let i = 0; i < DEFAULT_MAX_EVENT_STREAMS; i++) {
      const s = await events(gw.httpPort);
      cleanups.push(() => s.close());
      expect(s.res.statusCode).toBe(200);
      open.push(s);
    }
    const refused = await get(gw.httpPort, '/api/events');
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(JSON.parse(refused.body)).toEqual({ error: 'RESOURCE_EXHAUSTED', message: `at most ${DEFAULT_MAX_EVENT_STREAMS} event streams may be open at once; try again later` });
    // Other documents are not affected by the cap.
    expect((await get(gw.httpPort, '/api/nodes')).status).toBe(200);
    open[0]!.close();
    let again: Stream | undefined;
    await waitFor('a freed place', async () => {
      again?.close();
      again = await events(gw.httpPort);
      return again.res.statusCode === 200;
    });
    cleanups.push(() => again?.close());
  });

  it('ends open streams when the gateway stops', async () => {
    const { gw } = await cluster();
    const s = await events(gw.httpPort);
    await s.snapshots(1);
    await gw.stop();
    await s.ended;
  });
});
