// The dashboard on the HTTP API: the page and its files at / and /dashboard/..., served
// to anyone (a browser cannot put a token on a page load, and the files hold no data),
// and the live snapshots at /api/events, which read like every other /api/ document.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../clock.js';
import type { AdminApi } from './admin-api.js';
import { dashboardAssets, DASHBOARD_HEADERS } from './dashboard-assets.js';
import { EventStream, type EventStreamOptions } from './event-stream.js';
import { StaticFiles } from './static-files.js';

export const EVENTS_PATH = '/api/events';

export class DashboardRoutes {
  readonly files: StaticFiles;
  readonly events: EventStream;

  constructor(api: Pick<AdminApi, 'dashboard'>, clock: Clock, options: EventStreamOptions = {}) {
    this.files = new StaticFiles(dashboardAssets(), DASHBOARD_HEADERS);
    this.events = new EventStream(() => api.dashboard(), clock, options);
  }

  /** Before authorisation: the page and its files. True when it answered. */
  servePage(req: IncomingMessage, res: ServerResponse, pathname: string): boolean {
    return this.files.serve(req, res, pathname);
  }

  /** After authorisation: the event stream. True when it answered. */
  serveEvents(req: IncomingMessage, res: ServerResponse, pathname: string): boolean {
    if (req.method !== 'GET' || pathname !== EVENTS_PATH) return false;
    this.events.accept(res);
    return true;
  }

  close(): void {
    this.events.close();
  }
}
