// The gateway's HTTP face for operators: JSON under /api/, Prometheus text at /metrics,
// the probes /healthz and /readyz (no token: orchestrators and load balancers carry none)
// and the live dashboard at / (dashboard-routes.ts), over HTTPS when the gateway has a
// certificate.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { EasyRemoteError, toEasyRemoteError, type HealthDocument, type ReadinessDocument } from '@easyremote/protocol';
import type { Principal } from '../auth/principals.js';
import type { Clock } from '../clock.js';
import type { AdminApi } from './admin-api.js';
import { DashboardRoutes } from './dashboard-routes.js';
import type { PrometheusMetrics } from '../metrics/prometheus.js';
import { listenFailure } from './listen-failure.js';

const HTTP_STATUS: Record<string, number> = { FUNCTION_NOT_FOUND: 404, NODE_NOT_FOUND: 404, INVALID_ARGUMENT: 400, UNAUTHENTICATED: 401, PERMISSION_DENIED: 403 };

/**
 * A browser sends Origin with every cross-site POST: a page elsewhere must not be able
 * to make an operator's browser drain nodes. Requests without Origin (curl, scripts) and
 * same-origin ones pass.
 */
function crossOrigin(req: IncomingMessage): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== req.headers.host;
  } catch {
    return true;
  }
}

/** A certificate and its key, PEM. */
export interface HttpCertificate {
  cert: Buffer;
  key: Buffer;
}

export class HttpApi {
  private readonly server: Server | HttpsServer;
  private readonly dashboard: DashboardRoutes;

  /** With `tls`, HTTPS; `setCertificate` replaces it for new connections. */
  constructor(
    private readonly api: AdminApi,
    private readonly prometheus: PrometheusMetrics,
    private readonly authorize: (header: string | undefined) => Principal | EasyRemoteError,
    private readonly readiness: () => ReadinessDocument,
    clock: Clock,
    tls?: HttpCertificate,
  ) {
    this.dashboard = new DashboardRoutes(api, clock);
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = tls === undefined ? createServer(handler) : createHttpsServer({ cert: tls.cert, key: tls.key }, handler);
  }

  /** Serves new HTTPS connections with this certificate (connections open keep theirs). */
  setCertificate(tls: HttpCertificate): void {
    if ('setSecureContext' in this.server) this.server.setSecureContext({ cert: tls.cert, key: tls.key });
  }

  /** Resolves with the port bound, or fails with one line naming the port (and who holds it). */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', (err) => reject(listenFailure(err, port, host, 'HTTP')));
      this.server.listen(port, host, () => resolve((this.server.address() as { port: number }).port));
    });
  }

  close(): Promise<void> {
    this.dashboard.close();
    return new Promise((resolve) => {
      this.server.closeAllConnections();
      this.server.close(() => resolve());
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://gateway');
      if (this.probe(req, res, url.pathname.replace(/\/+$/, ''))) return;
      if (this.dashboard.servePage(req, res, url.pathname)) return;
      const who = this.authorize(req.headers.authorization);
      if (who instanceof EasyRemoteError) return this.send(res, HTTP_STATUS[who.code] ?? 401, { error: who.code, message: who.message });
      if (req.method !== 'GET' && crossOrigin(req)) {
        return this.send(res, 403, { error: 'PERMISSION_DENIED', message: `cross-origin ${req.method} from ${req.headers.origin} refused` });
      }
      if (url.pathname === '/metrics' && req.method === 'GET') {
        res.writeHead(200, { 'content-type': this.prometheus.registry.contentType });
        res.end(await this.prometheus.text());
        return;
      }
      if (this.dashboard.serveEvents(req, res, url.pathname.replace(/\/+$/, ''))) return;
      const body = this.route(req.method ?? 'GET', url, who);
      if (body === undefined) return this.send(res, 404, { error: 'NOT_FOUND', message: `no route ${req.method} ${url.pathname}` });
      this.send(res, 200, body);
    } catch (err) {
      const e = toEasyRemoteError(err);
      this.send(res, HTTP_STATUS[e.code] ?? 500, { error: e.code, message: e.message });
    }
  }

  /** /healthz and /readyz for GET and HEAD; true when it answered. */
  private probe(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    let status: number;
    let body: HealthDocument | ReadinessDocument;
    if (path === '/healthz') {
      status = 200;
      body = { alive: true };
    } else if (path === '/readyz') {
      body = this.readiness();
      status = body.ready ? 200 : 503;
    } else {
      return false;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
    res.end(req.method === 'HEAD' ? undefined : text);
    return true;
  }

  private route(method: string, url: URL, by: Principal): unknown {
    const window = url.searchParams.has('window_ms') ? Number(url.searchParams.get('window_ms')) : undefined;
    const p = url.pathname.replace(/\/+$/, '');
    if (method === 'GET') {
      if (p === '/api/nodes') return this.api.nodes();
      const node = /^\/api\/nodes\/([^/]+)$/.exec(p);
      if (node) return this.api.node(decodeURIComponent(node[1]!));
      if (p === '/api/functions') return this.api.functions();
      if (p === '/api/metrics') return this.api.metrics(window);
      if (p === '/api/stats/nodes') return this.api.nodeStats(window);
      if (p === '/api/stats/functions') return this.api.functionStats(window);
      if (p === '/api/recommendations') return this.api.recommendations(window);
      if (p === '/api/alerts') return this.api.alerts();
      if (p === '/api/peers') return this.api.peers();
      if (p === '/api/backends') return this.api.backends();
    }
    if (method === 'POST') {
      const drain = /^\/api\/nodes\/([^/]+)\/drain$/.exec(p);
      if (drain) return this.api.drain(decodeURIComponent(drain[1]!), by);
      if (p === '/api/cache/invalidate') return this.api.invalidateCache(url.searchParams.get('function') ?? '', by);
    }
    return undefined;
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)));
  }
}
