// StaticFiles over a real loopback HTTP server, and the dashboard's asset table as it
// resolves in this install: every file found, every library's ES module build served.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_CSP, DASHBOARD_HEADERS, DASHBOARD_PAGE, DASHBOARD_PREFIX, dashboardAssets } from '../../src/api/dashboard-assets.js';
import { StaticFiles } from '../../src/api/static-files.js';

const dir = mkdtempSync(join(tmpdir(), 'easyremote-static-'));
let server: Server;
let port: number;
const big = `export const lines = [\n${Array.from({ length: 400 }, (_, i) => `  'line ${i}',`).join('\n')}\n];\n`;

function get(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(dir, 'app.js'), big);
  writeFileSync(join(dir, 'style.css'), 'body { color: red }');
  writeFileSync(join(dir, 'notes.txt'), 'not served');
  const files = new StaticFiles(
    [
      { urlPath: '/', filePath: join(dir, 'index.html') },
      { urlPath: '/s/app.js', filePath: join(dir, 'app.js') },
      { urlPath: '/s/style.css', filePath: join(dir, 'style.css') },
      { urlPath: '/s/notes.txt', filePath: join(dir, 'notes.txt') },
      { urlPath: '/s/gone.js', filePath: join(dir, 'gone.js') },
      { urlPath: '/s/lib.mjs', filePath: '', problem: 'preact is not installed' },
    ],
    { 'x-test': 'yes' },
  );
  expect(files.problems()).toEqual([
    `${join(dir, 'notes.txt')}: no content type for .txt`,
    expect.stringMatching(/gone\.js: ENOENT/),
    'preact is not installed',
  ]);
  server = createServer((req, res) => {
    if (!files.serve(req, res, new URL(req.url!, 'http://x').pathname)) {
      res.writeHead(404);
      res.end('not mine');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(dir, { recursive: true, force: true });
});

describe('StaticFiles', () => {
  it('serves each file with its content type, the given headers, an ETag and no-cache', async () => {
    const page = await get('/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['x-test']).toBe('yes');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers.etag).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
    expect(page.body.toString()).toBe('<!doctype html><title>t</title>');
    expect((await get('/s/app.js')).headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect((await get('/s/style.css')).headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('answers 304 to a matching If-None-Match, 200 to a stale one', async () => {
    const { headers } = await get('/s/style.css');
    const again = await get('/s/style.css', { 'if-none-match': headers.etag! });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(headers.etag);
    expect((await get('/s/style.css', { 'if-none-match': `W/${headers.etag}, "other"` })).status).toBe(304);
    expect((await get('/s/style.css', { 'if-none-match': '"stale"' })).status).toBe(200);
  });

  it('gzips a large file for a client that accepts it, with its own ETag and Vary', async () => {
    const plain = await get('/s/app.js');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers.vary).toBe('accept-encoding');
    expect(plain.body.toString()).toBe(big);
    const gz = await get('/s/app.js', { 'accept-encoding': 'br, gzip;q=0.8' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(Number(gz.headers['content-length'])).toBe(gz.body.length);
    expect(gz.body.length).toBeLessThan(big.length / 3);
    expect(gunzipSync(gz.body).toString()).toBe(big);
    expect(gz.headers.etag).not.toBe(plain.headers.etag);
    expect((await get('/s/app.js', { 'accept-encoding': 'gzip;q=0' })).headers['content-encoding']).toBeUndefined();
    // Small files go as they are.
    expect((await get('/s/style.css', { 'accept-encoding': 'gzip' })).headers['content-encoding']).toBeUndefined();
  });

  it('answers HEAD with the headers and no body', async () => {
    const head = await get('/s/app.js', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(Buffer.byteLength(big));
    expect(head.body.length).toBe(0);
  });

  it('leaves paths not in the table, and methods other than GET and HEAD, to the caller', async () => {
    for (const path of ['/s/', '/s/APP.js', '/s/app.js/', '/s/app', '/index.html', '/s/../s/app.jsx']) {
      expect((await get(path)).body.toString(), path).toBe('not mine');
    }
    expect((await get('/s/app.js', {}, 'POST')).body.toString()).toBe('not mine');
  });

  it('answers 500 naming the problem for a file it could not load', async () => {
    const gone = await get('/s/gone.js');
    expect(gone.status).toBe(500);
    expect(gone.body.toString()).toMatch(/^cannot serve \/s\/gone\.js: .*gone\.js: ENOENT/);
    expect((await get('/s/notes.txt')).body.toString()).toContain('no content type for .txt');
    expect((await get('/s/lib.mjs')).body.toString()).toBe('cannot serve /s/lib.mjs: preact is not installed\n');
  });
});

describe('the dashboard assets', () => {
  const assets = dashboardAssets();
  const byPath = new Map(assets.map((a) => [a.urlPath, a]));

  it('are all found in this install, with a content type', () => {
    expect(assets.filter((a) => a.problem !== undefined)).toEqual([]);
    expect(new StaticFiles(assets, DASHBOARD_HEADERS).problems()).toEqual([]);
    expect([...byPath.keys()].sort()).toEqual(
      [DASHBOARD_PAGE, ...['app.js', 'chart.js', 'events.js', 'favicon.svg', 'history.js', 'style.css', 'views.js', 'vendor/htm.mjs', 'vendor/preact.mjs', 'vendor/uplot.css', 'vendor/uplot.mjs'].map((f) => `${DASHBOARD_PREFIX}${f}`)].sort(),
    );
  });

  it("serve each library's ES module build, as Node resolves it from the gateway package", () => {
    const require = createRequire(new URL('../../src/api/dashboard-assets.ts', import.meta.url));
    const moduleOf = (name: string, pkgDir: string) => join(pkgDir, (JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { module: string }).module);
    const preactDir = dirname(dirname(require.resolve('preact')));
    expect(byPath.get(`${DASHBOARD_PREFIX}vendor/preact.mjs`)!.filePath).toBe(moduleOf('preact', preactDir));
    expect(readFileSync(byPath.get(`${DASHBOARD_PREFIX}vendor/htm.mjs`)!.filePath, 'utf8')).toMatch(/export\s*\{[^}]*as default\s*\}|export default/);
    expect(readFileSync(byPath.get(`${DASHBOARD_PREFIX}vendor/uplot.mjs`)!.filePath, 'utf8')).toContain('export { uPlot as default }');
    // No library module imports another by bare name: the browser has no import map to resolve one.
    for (const lib of ['preact.mjs', 'htm.mjs', 'uplot.mjs']) {
      expect(readFileSync(byPath.get(`${DASHBOARD_PREFIX}vendor/${lib}`)!.filePath, 'utf8'), lib).not.toMatch(/(^|[;}\s])import\s*([\w*${}\s,]+from\s*)?["'](?![./])/);
    }
  });

  it("the page's modules import only relative paths, and the page has no inline script or style", () => {
    for (const a of assets.filter((x) => x.filePath.includes(`${join('gateway', 'dashboard')}`) && x.filePath.endsWith('.js'))) {
      const source = readFileSync(a.filePath, 'utf8');
      for (const m of source.matchAll(/\bfrom\s*['"]([^'"]+)['"]/g)) expect(m[1], a.filePath).toMatch(/^\.\//);
    }
    const page = readFileSync(byPath.get(DASHBOARD_PAGE)!.filePath, 'utf8');
    for (const script of page.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)) {
      expect(script[0]).toMatch(/\bsrc="/);
      expect(script[1]).toBe('');
    }
    expect(page).not.toMatch(/<style\b|\sstyle="|\son[a-z]+="/i);
    expect(DASHBOARD_CSP).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  });
});
