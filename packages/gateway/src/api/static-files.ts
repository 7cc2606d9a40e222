// Files served as they are, from memory: the dashboard's page, its modules and the
// front-end libraries it uses. Only the URL paths in the table exist. A request's path is
// looked up whole, never joined to a directory, so no path (with `..`, encoded or not)
// can reach any other file.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname } from 'node:path';
import { gzipSync } from 'node:zlib';

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** Files smaller than this are sent as they are: gzip would save less than its headers cost. */
export const GZIP_MIN_BYTES = 1_024;

export interface StaticEntry {
  /** The exact path it is served at, e.g. /dashboard/app.js. */
  urlPath: string;
  filePath: string;
  /** Set when the file could not even be located: the path answers 500 with this. */
  problem?: string;
}

type Loaded =
  | { ok: true; type: string; body: Buffer; etag: string; gzip?: Buffer; gzipEtag?: string }
  | { ok: false; problem: string };

function load(entry: StaticEntry): Loaded {
  if (entry.problem !== undefined) return { ok: false, problem: entry.problem };
  const type = CONTENT_TYPES[extname(entry.filePath)];
  if (type === undefined) return { ok: false, problem: `${entry.filePath}: no content type for ${extname(entry.filePath) || 'files without an extension'}` };
  let body: Buffer;
  try {
    body = readFileSync(entry.filePath);
  } catch (err) {
    return { ok: false, problem: `${entry.filePath}: ${(err as Error).message}` };
  }
  const hash = createHash('sha256').update(body).digest('base64url').slice(0, 22);
  const loaded: Loaded = { ok: true, type, body, etag: `"${hash}"` };
  if (body.length >= GZIP_MIN_BYTES) {
    const gz = gzipSync(body);
    if (gz.length < body.length) {
      loaded.gzip = gz;
      loaded.gzipEtag = `"${hash}-gz"`;
    }
  }
  return loaded;
}

/** Whether Accept-Encoding lists gzip with a q-value above 0. */
function acceptsGzip(req: IncomingMessage): boolean {
  const header = req.headers['accept-encoding'];
  if (typeof header !== 'string') return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.split(';').map((x) => x.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return coding === 'gzip' && (q === undefined || Number(q.slice(2)) > 0);
  });
}

export class StaticFiles {
  private readonly files = new Map<string, Loaded>();

  /**
   * Reads every file now. A file that cannot be read does not stop the gateway: its path
   * answers 500 with the reason (the dashboard is not worth an outage).
   */
  constructor(
    entries: readonly StaticEntry[],
    private readonly headers: Readonly<Record<string, string>>,
  ) {
    for (const entry of entries) this.files.set(entry.urlPath, load(entry));
  }

  /** Files that could not be loaded, with the reason. */
  problems(): string[] {
    return [...this.files.values()].flatMap((f) => (f.ok ? [] : [f.problem]));
  }

  /** Answers GET and HEAD for a path in the table (true); anything else is left to the caller (false). */
  serve(req: IncomingMessage, res: ServerResponse, pathname: string): boolean {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const file = this.files.get(pathname);
    if (file === undefined) return false;
    if (!file.ok) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
      res.end(`cannot serve ${pathname}: ${file.problem}\n`);
      return true;
    }
    const gzip = file.gzip !== undefined && acceptsGzip(req);
    const body = gzip ? file.gzip! : file.body;
    const etag = gzip ? file.gzipEtag! : file.etag;
    const headers: Record<string, string | number> = {
      ...this.headers,
      'content-type': file.type,
      etag,
      // Revalidated on every load (a 304 costs a round trip): the URLs carry no version, so a
      // cached copy must never outlive an upgrade of the gateway.
      'cache-control': 'no-cache',
      ...(file.gzip !== undefined ? { vary: 'accept-encoding' } : {}),
    };
    const known = req.headers['if-none-match'];
    if (typeof known === 'string' && known.split(',').some((t) => t.trim().replace(/^W\//, '') === etag || t.trim() === '*')) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    if (gzip) headers['content-encoding'] = 'gzip';
    headers['content-length'] = body.length;
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }
}
